"""Exchange trading calendars: which days are sessions of KRX and of the US market (NYSE).

The truth is the ``exchange_calendars`` package (``XKRX``, ``XNYS``). Building its KRX calendar
costs seconds (its lunisolar holidays are computed on every construction), and every run worker
loads the partitions, so the weekday closures are kept as a snapshot next to this module
(``holidays/<CALENDAR>.txt``, one ISO date a line). A test compares the snapshot with
``exchange_calendars``; regenerate it after upgrading the package::

    uv run python -m batch_assets.lib.markets.calendars --write

A session is a weekday (Monday to Friday) that is not in the snapshot. Neither exchange has
traded on a weekend since the snapshot starts.
"""

from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

SNAPSHOT_DIR = Path(__file__).parent / "holidays"
SNAPSHOT_START = date(2000, 1, 1)
SNAPSHOT_END = date(2035, 12, 31)
# Dagster cron exclusion for Saturdays and Sundays, in the exchange's timezone.
WEEKEND_CRON = "0 0 * * 6,0"


@dataclass(frozen=True)
class Exchange:
    code: str  # our name, used in asset keys and store keys: 'krx', 'us'
    calendar: str  # the exchange_calendars name
    timezone: str  # where the session date is the local date
    name: str


EXCHANGES: dict[str, Exchange] = {
    "krx": Exchange("krx", "XKRX", "Asia/Seoul", "Korea Exchange"),
    "us": Exchange("us", "XNYS", "America/New_York", "New York Stock Exchange"),
}


# Closures the pinned exchange_calendars does not know yet, added to the snapshot when it is
# written; drop an entry once the package has it (the snapshot test keeps both in step).
KNOWN_CLOSURES: dict[str, dict[date, str]] = {
    "krx": {date(2026, 6, 3): "9th nationwide local elections (KRX closed)"},
}


class CalendarRangeError(ValueError):
    """A date outside the calendar snapshot: the answer would be a guess."""


def get_exchange(code: str) -> Exchange:
    try:
        return EXCHANGES[code]
    except KeyError:
        raise ValueError(f"unknown exchange {code!r}; known: {', '.join(sorted(EXCHANGES))}") from None


def as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


@cache
def closed_weekdays(code: str) -> tuple[date, ...]:
    """Weekdays on which the exchange does not trade (holidays, year-end closures), sorted."""
    path = SNAPSHOT_DIR / f"{get_exchange(code).calendar}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(date.fromisoformat(line) for line in lines if line and not line.startswith("#"))


def _check_range(start: date, end: date) -> None:
    if start < SNAPSHOT_START or end > SNAPSHOT_END:
        raise CalendarRangeError(
            f"{start}..{end} is outside the calendar snapshot {SNAPSHOT_START}..{SNAPSHOT_END}; "
            "extend SNAPSHOT_START/SNAPSHOT_END and regenerate it"
        )


def is_session(code: str, day: date | str) -> bool:
    day = as_date(day)
    _check_range(day, day)
    return day.weekday() < 5 and day not in _closed_set(code)


@cache
def _closed_set(code: str) -> frozenset[date]:
    return frozenset(closed_weekdays(code))


@cache
def _all_sessions(code: str) -> tuple[date, ...]:
    closed = _closed_set(code)
    days, day = [], SNAPSHOT_START
    while day <= SNAPSHOT_END:
        if day.weekday() < 5 and day not in closed:
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def exchange_sessions(exchange: str, start: date | str, end: date | str) -> list[date]:
    """The exchange's sessions from ``start`` to ``end``, both included, in order."""
    start, end = as_date(start), as_date(end)
    _check_range(start, end)
    sessions = _all_sessions(exchange)
    return list(sessions[bisect.bisect_left(sessions, start) : bisect.bisect_right(sessions, end)])


def sessions_before(exchange: str, session: date | str, count: int) -> list[date]:
    """Up to ``count`` sessions strictly before ``session``, oldest first (fewer at the snapshot start)."""
    session = as_date(session)
    _check_range(session, session)
    sessions = _all_sessions(exchange)
    stop = bisect.bisect_left(sessions, session)
    return list(sessions[max(0, stop - count) : stop])


def previous_session(exchange: str, session: date | str) -> date | None:
    """The session before ``session`` (which need not be a session itself), or None at the snapshot start."""
    before = sessions_before(exchange, session, 1)
    return before[0] if before else None


def session_partition_args(exchange: str, start: date | str) -> dict[str, object]:
    """Keyword arguments of a Dagster ``DailyPartitionsDefinition`` whose partitions are the sessions.

    Plain data, so both slices that partition by session (bars, factors) build the same
    definition without importing each other: weekends are excluded by a cron string, weekday
    closures by their midnight in the exchange's timezone. ``end_offset=1``: the current session
    (the next one on a closed day) is a partition, so an after-close collection can target it.
    """
    ex, start = get_exchange(exchange), as_date(start)
    if not is_session(exchange, start):
        raise ValueError(f"the partitions start {start} is not a {ex.name} session")
    closures = [datetime(d.year, d.month, d.day) for d in closed_weekdays(exchange) if d >= start]
    return {
        "start_date": start.isoformat(),
        "timezone": ex.timezone,
        "end_offset": 1,
        "exclusions": [WEEKEND_CRON, *closures],
    }


def compute_closed_weekdays(code: str, start: date = SNAPSHOT_START, end: date = SNAPSHOT_END) -> list[date]:
    """Weekday closures from exchange_calendars plus KNOWN_CLOSURES (slow: seconds for XKRX)."""
    import exchange_calendars as xcals
    import pandas as pd

    cal = xcals.get_calendar(get_exchange(code).calendar, start=start.isoformat(), end=end.isoformat())
    sessions = {ts.date() for ts in cal.sessions}
    if weekend := sorted(d for d in sessions if d.weekday() >= 5):
        raise ValueError(f"{code} has weekend sessions ({weekend[:3]}…); the weekend exclusion would drop them")
    known = {d for d in KNOWN_CLOSURES.get(code, {}) if start <= d <= end}
    return [ts.date() for ts in pd.bdate_range(start, end) if ts.date() not in sessions or ts.date() in known]


def write_snapshot(code: str) -> Path:
    import exchange_calendars as xcals

    ex = get_exchange(code)
    path = SNAPSHOT_DIR / f"{ex.calendar}.txt"
    header = (
        f"# Weekdays on which {ex.name} ({ex.calendar}) does not trade, {SNAPSHOT_START}..{SNAPSHOT_END}.\n"
        f"# Generated from exchange_calendars {xcals.__version__} by "
        "`python -m batch_assets.lib.markets.calendars --write`; do not edit by hand.\n"
    )
    path.write_text(header + "".join(f"{d.isoformat()}\n" for d in compute_closed_weekdays(code)), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the exchange calendar snapshots.")
    parser.add_argument("--write", action="store_true", help="rewrite holidays/<CALENDAR>.txt")
    args = parser.parse_args(argv)
    for code in EXCHANGES:
        if args.write:
            print(write_snapshot(code))
        else:
            print(code, len(compute_closed_weekdays(code)), "closed weekdays")


if __name__ == "__main__":
    main()
