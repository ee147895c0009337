"""``batch-assets schedules add|list|enable|disable|remove``: user-defined schedules.

The table is the one the dispatcher sensor reads (BATCH_ASSETS_USER_SCHEDULES_URL, else SQLite
under DAGSTER_HOME or the data dir): a change is picked up on the sensor's next tick, no deploy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

from batch_assets.lib.cron_ticks import next_tick, utc_text
from batch_assets.lib.settings import load_settings
from batch_assets.lib.user_schedules import (
    PARTITION_RULES,
    InvalidSchedule,
    ScheduleExists,
    SqlUserScheduleStore,
    UserSchedule,
    default_store_url,
)


def _store(args: argparse.Namespace) -> SqlUserScheduleStore:
    return SqlUserScheduleStore(args.db_url or default_store_url(load_settings()))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def add(args: argparse.Namespace) -> int:
    """Add a schedule (enabled unless --disabled); an invalid cron, timezone or target is refused."""
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _fail(f"--tag '{item}': expected KEY=VALUE")
        tags[key] = value
    try:
        run_config = json.loads(args.run_config) if args.run_config else {}
    except ValueError as exc:
        return _fail(f"--run-config is not JSON: {exc}")
    schedule = UserSchedule(
        id=args.id,
        target=args.target,
        cron=args.cron,
        timezone=args.timezone,
        partition=args.partition,
        tags=tags,
        run_config=run_config,
        enabled=not args.disabled,
        description=args.description,
    )
    with _store(args) as store:
        try:
            stored = store.add(schedule)
        except (InvalidSchedule, ScheduleExists) as exc:
            return _fail(str(exc))
    state = "disabled" if args.disabled else f"next tick {_next(stored)}"
    print(f"added {stored.id}: {stored.cron} ({stored.timezone}) -> {stored.target}; {state}")
    return 0


def _next(schedule: UserSchedule) -> str:
    tick = next_tick(schedule.cron, schedule.timezone, dt.datetime.now(dt.UTC))
    return f"{tick.astimezone(ZoneInfo(schedule.timezone)).isoformat()} ({utc_text(tick)})"


def list_schedules(args: argparse.Namespace) -> int:
    """List every schedule with its state and next tick; a row that cannot run shows its problem."""
    with _store(args) as store:
        rows = store.rows()
    if args.json:
        print(json.dumps([{**row.raw, "problem": row.problem} for row in rows], indent=2, default=str))
        return 0
    for row in rows:
        raw = row.raw
        if row.schedule is None:
            state = f"INVALID: {row.problem}"
        elif not row.enabled:
            state = "disabled"
        else:
            state = f"next {_next(row.schedule)}"
        print(f"{raw['id']}\t{raw['cron']}\t{raw['timezone']}\t{raw['target']}\t{raw['partition_rule']}\t{state}")
    print(f"{len(rows)} schedule(s)")
    return 0


def _switch(args: argparse.Namespace, enabled: bool) -> int:
    with _store(args) as store:
        if not store.set_enabled(args.id, enabled):
            return _fail(f"no schedule '{args.id}'")
    print(f"{'enabled' if enabled else 'disabled'} {args.id}")
    return 0


def enable(args: argparse.Namespace) -> int:
    """Enable a schedule from now on (ticks missed while it was disabled do not fire)."""
    return _switch(args, True)


def disable(args: argparse.Namespace) -> int:
    """Disable a schedule; its row stays."""
    return _switch(args, False)


def remove(args: argparse.Namespace) -> int:
    """Delete a schedule."""
    with _store(args) as store:
        if not store.remove(args.id):
            return _fail(f"no schedule '{args.id}'")
    print(f"removed {args.id}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("schedules", help="user-defined schedules").add_subparsers(dest="action", required=True)

    def action(name: str, handler, with_id: bool = True) -> argparse.ArgumentParser:
        parser = group.add_parser(name, help=handler.__doc__, description=handler.__doc__)
        if with_id:
            parser.add_argument("id")
        parser.add_argument("--db-url", help="SQLAlchemy URL of the table (default: as the dispatcher)")
        parser.set_defaults(handler=handler)
        return parser

    new = action("add", add)
    new.add_argument("--target", required=True, help="job:<asset job> or assets:<asset selection>")
    new.add_argument("--cron", required=True, help="5 fields (minute hour day month weekday) or @daily etc.")
    new.add_argument("--timezone", required=True, help="IANA name, e.g. Europe/Paris")
    new.add_argument("--partition", default="none", choices=sorted(PARTITION_RULES), help="partition rule")
    new.add_argument("--tag", action="append", default=[], help="KEY=VALUE run tag (repeatable)")
    new.add_argument("--run-config", help="run config as JSON")
    new.add_argument("--description", default="")
    new.add_argument("--disabled", action="store_true", help="add it disabled")
    listing = action("list", list_schedules, with_id=False)
    listing.add_argument("--json", action="store_true")
    action("enable", enable)
    action("disable", disable)
    action("remove", remove)
