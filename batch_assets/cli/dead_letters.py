"""``batch-assets dead-letters list|redrive``: files in quarantine, and sending them back."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from batch_assets.lib.engine import dead_letters
from batch_assets.lib.settings import load_settings


def _store():
    from batch_assets.defs.resources import build_resources

    return build_resources(load_settings())["file_store"].store()


def list_letters(args: argparse.Namespace) -> int:
    """List quarantined files with their errors."""
    letters = dead_letters.list_dead_letters(_store(), args.vendor)
    if args.json:
        print(json.dumps([asdict(letter) for letter in letters], indent=2))
    else:
        for letter in letters:
            print(f"{letter.key}\t{letter.quarantined_at}\t{letter.error}")
        print(f"{len(letters)} file(s) in quarantine")
    return 0


def redrive(args: argparse.Namespace) -> int:
    """Move quarantined files back to inbound; the arrival sensor runs them again."""
    store = _store()
    letters = dead_letters.list_dead_letters(store, args.vendor)
    if args.keys:
        wanted = set(args.keys)
        unknown = wanted - {letter.key for letter in letters}
        if unknown:
            print(f"error: not in quarantine: {', '.join(sorted(unknown))}")
            return 2
        letters = [letter for letter in letters if letter.key in wanted]
    elif not args.vendor:
        print("error: name quarantined keys, or --vendor (with --day) to re-drive a vendor's files")
        return 2
    if args.day:
        letters = [letter for letter in letters if f"/{args.day}/" in letter.key]
    for letter in letters:
        print(f"re-driven {letter.key} -> {dead_letters.redrive(store, letter)}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("dead-letters", help="files in quarantine").add_subparsers(dest="action", required=True)
    listing = group.add_parser("list", help=list_letters.__doc__)
    listing.add_argument("--vendor")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=list_letters)
    again = group.add_parser("redrive", help=redrive.__doc__)
    again.add_argument("keys", nargs="*", help="quarantine keys (default: all of --vendor)")
    again.add_argument("--vendor")
    again.add_argument("--day", help="YYYY-MM-DD, with --vendor")
    again.set_defaults(handler=redrive)
