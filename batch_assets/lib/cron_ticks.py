"""Cron ticks in a timezone, with Dagster's daylight-saving rules, and the sensor's watermark.

A cron expression names wall-clock times; a tick is the instant (UTC) such a time happens in the
schedule's timezone. Around DST transitions we follow Dagster's own schedules, so that a user
schedule and a code schedule with the same cron fire at the same instants:

- a wall time that does not exist (spring forward, e.g. 02:30): schedules that name their hours
  fire at the end of the gap (03:00 local) so the day is not lost; hourly schedules skip it;
- a wall time that happens twice (fall back, e.g. 01:30): schedules that name their hours fire
  once, at the second occurrence; hourly schedules fire at both.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

UTC = dt.UTC
_MAX_SHIFT = dt.timedelta(hours=3)


class InvalidCron(ValueError):
    """A cron expression this platform does not accept."""


def check_cron(expression: str) -> str:
    """The expression, if it is a standard 5-field cron (minute hour day month weekday) or an
    @-alias (@hourly, @daily, @weekly, @monthly, @yearly); else InvalidCron saying why."""
    text = " ".join(expression.split())
    if not text:
        raise InvalidCron("empty cron expression")
    if text.startswith("@"):
        if text not in {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}:
            raise InvalidCron(f"unknown cron alias '{text}' (use @hourly, @daily, @weekly, @monthly or @yearly)")
        return text
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidCron(f"'{text}' has {len(fields)} fields; expected 5: minute hour day-of-month month day-of-week")
    if not croniter.is_valid(text):
        raise InvalidCron(f"'{text}' is not a valid cron expression (minute hour day-of-month month day-of-week)")
    try:
        croniter(text, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except CroniterError:
        raise InvalidCron(f"'{text}' never fires (e.g. a day that no month has)") from None
    return text


def _every_hour(expression: str) -> bool:
    hours = croniter.expand(expression)[0][1]
    return len(hours) == 1 and hours[0] == "*"


def _exists(local: dt.datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def _ambiguous(local: dt.datetime, tz: ZoneInfo) -> bool:
    return local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset()


def _end_of_gap(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first existing wall time after ``local`` (which falls in a spring-forward gap)."""
    probe = local.replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        probe += dt.timedelta(minutes=1)
        if _exists(probe, tz):
            return probe
    raise ValueError(f"{local} in {tz.key}: no existing time within a day")  # no real zone does this


def _instants(local: dt.datetime, tz: ZoneInfo, hourly: bool) -> list[dt.datetime]:
    """The UTC instants of one wall-clock cron match, by the DST rules above."""
    if not _exists(local, tz):
        return [] if hourly else [_end_of_gap(local, tz).replace(tzinfo=tz).astimezone(UTC)]
    if _ambiguous(local, tz):
        folds = (0, 1) if hourly else (1,)
        return [local.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in folds]
    return [local.replace(tzinfo=tz).astimezone(UTC)]


def latest_ticks(
    expression: str, timezone: str, after: dt.datetime, until: dt.datetime, limit: int | None = None
) -> tuple[list[dt.datetime], bool]:
    """The ticks in ``(after, until]`` (UTC, aware), oldest first; with ``limit``, only the most
    recent ``limit`` of them, and whether older ones were left out.

    The wall clock is walked backwards from ``until``, so keeping the latest N costs the same
    whatever the gap since ``after``.
    """
    tz = ZoneInfo(timezone)
    hourly = _every_hour(expression)
    # Wall clocks are naive; one hour of margin each side covers a repeated or skipped hour.
    walk = croniter(expression, until.astimezone(tz).replace(tzinfo=None) + dt.timedelta(hours=1))
    floor = after.astimezone(tz).replace(tzinfo=None) - dt.timedelta(hours=1)
    found: set[dt.datetime] = set()
    while True:
        local = walk.get_prev(dt.datetime)
        if local < floor:
            break
        found.update(t for t in _instants(local, tz, hourly) if after < t <= until)
        if limit is not None and len(found) > limit:
            newest = sorted(found, reverse=True)[: limit + 1]
            found = set(newest)
            # An earlier wall time lands at most a DST shift (< 3 h) later than this one: once
            # that bound is below the (limit+1)-th newest tick, nothing walked later can enter.
            if local.replace(tzinfo=tz).astimezone(UTC) + _MAX_SHIFT < newest[-1]:
                break
    ticks = sorted(found)
    if limit is None or len(ticks) <= limit:
        return ticks, False
    return ticks[-limit:], True


def next_tick(expression: str, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first tick strictly after ``after`` (for listings)."""
    tz = ZoneInfo(timezone)
    hourly = _every_hour(expression)
    walk = croniter(expression, after.astimezone(tz).replace(tzinfo=None) - dt.timedelta(hours=1))
    while True:
        candidates = [t for t in _instants(walk.get_next(dt.datetime), tz, hourly) if t > after]
        if candidates:
            return min(candidates)


def utc_text(moment: dt.datetime) -> str:
    """'2026-03-08T07:00:00Z': the stable spelling used in run keys and cursors."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def watermark_from_cursor(cursor: str | None) -> dt.datetime | None:
    """The last evaluated time saved by the dispatcher, or None for a first tick or an unreadable
    cursor (the dispatcher then starts from now, as on a first tick)."""
    if not cursor:
        return None
    try:
        value = json.loads(cursor)["watermark"]
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def cursor_for(watermark: dt.datetime) -> str:
    return json.dumps({"watermark": watermark.astimezone(UTC).isoformat(timespec="microseconds")})
