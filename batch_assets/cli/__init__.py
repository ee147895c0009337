"""The operators' command line: ``batch-assets <command>``.

Each module of this package adds its commands with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ["demo", "dead_letters", "schedules", "vendors", "runs"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batch-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"batch_assets.cli.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
