"""Where and when each market trades: currency, regular hours, and which session a moment falls in.

The session lists come from ``calendars.exchange_sessions``; this module adds what trading needs
on top: the currency PnL is kept in and the regular opening and closing times. Early closes (the
NYSE's 13:00 days) are not modelled: a session counts as completed at its regular close, so on an
early-close day work waits up to three hours longer than it has to, never starts too early.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from batch_assets.lib.markets.calendars import as_date, exchange_sessions, get_exchange


@dataclass(frozen=True)
class Venue:
    code: str  # 'krx', 'us': the exchange code of asset keys and store keys
    currency: str  # every amount of this market's orders, positions and PnL is in it
    opens: time  # regular hours, local time
    closes: time

    @property
    def timezone(self) -> str:
        return get_exchange(self.code).timezone

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_at(self, session: date) -> datetime:
        return datetime.combine(session, self.opens, tzinfo=self.tz)

    def close_at(self, session: date) -> datetime:
        return datetime.combine(session, self.closes, tzinfo=self.tz)


VENUES: dict[str, Venue] = {
    "krx": Venue("krx", "KRW", time(9, 0), time(15, 30)),
    "us": Venue("us", "USD", time(9, 30), time(16, 0)),
}


# When a session's fills are due after its close: the paper broker fills from the session's bar,
# which the collectors bring at 16:00 KST (KRX, 30 min after its close) and at 17:00 KST (US,
# 11-12 hours after the New York close); an hour of margin each. An order still open later is late.
FILLS_DUE_AFTER_CLOSE: dict[str, timedelta] = {"krx": timedelta(hours=1), "us": timedelta(hours=13)}


def get_venue(code: str) -> Venue:
    try:
        return VENUES[code]
    except KeyError:
        raise ValueError(f"unknown market {code!r}; known: {', '.join(sorted(VENUES))}") from None


def sessions_around(code: str, moment: datetime, days: int = 20) -> list[date]:
    """The market's sessions within ``days`` calendar days either side of ``moment``'s local date."""
    local = moment.astimezone(get_venue(code).tz).date()
    return exchange_sessions(code, local - timedelta(days=days), local + timedelta(days=days))


def latest_completed_session(venue: Venue, sessions: Sequence[date], now: datetime) -> date | None:
    """The last session whose regular close is at or before ``now`` (None if there is none in ``sessions``)."""
    done = [s for s in sessions if venue.close_at(s) <= now]
    return max(done) if done else None


def current_or_next_session(venue: Venue, sessions: Sequence[date], now: datetime) -> date | None:
    """The session trading at ``now``, else the next one to open: orders placed now are for it."""
    pending = [s for s in sessions if venue.close_at(s) > now]
    return min(pending) if pending else None


def session_of_local_day(venue: Venue, sessions: Sequence[date], now: datetime) -> date | None:
    """``now``'s local date in the market's timezone if that date is a session, else None."""
    local = now.astimezone(venue.tz).date()
    return local if local in set(sessions) else None


def is_trading(venue: Venue, sessions: Sequence[date], now: datetime) -> bool:
    """Whether ``now`` is within the regular hours of a session."""
    day = session_of_local_day(venue, sessions, now)
    return day is not None and venue.open_at(day) <= now < venue.close_at(day)


def previous_in(sessions: Sequence[date | str], session: date | str) -> date | None:
    """The element of the sorted ``sessions`` just before ``session`` (None for the first or an earlier one)."""
    days = [as_date(s) for s in sessions]
    index = bisect.bisect_left(days, as_date(session))
    return days[index - 1] if index > 0 else None


def first_session_from(code: str, day: date | str) -> date:
    """The market's first session on or after ``day``: where its trading partitions start."""
    day = as_date(day)
    sessions = exchange_sessions(code, day, day + timedelta(days=30))
    if not sessions:
        raise ValueError(f"no {code} session within 30 days of {day}")
    return sessions[0]
