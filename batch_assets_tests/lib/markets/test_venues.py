"""Which session a moment belongs to, in each market's own calendar and timezone."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from batch_assets.lib.markets.venues import (
    current_or_next_session,
    first_session_from,
    get_venue,
    is_trading,
    latest_completed_session,
    session_of_local_day,
    sessions_around,
)

SEOUL = ZoneInfo("Asia/Seoul")
US, KRX = get_venue("us"), get_venue("krx")


def kst(day: int, hour: int, month: int = 11, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SEOUL)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (kst(25, 17), dt.date(2026, 11, 24)),  # Wednesday 17:00 KST is 03:00 in New York: Tuesday closed last
        (kst(27, 17), dt.date(2026, 11, 25)),  # Thanksgiving (Thursday 26) is no session
        (kst(28, 17), dt.date(2026, 11, 27)),  # Saturday: Friday's (early-close) session
        (kst(29, 17), dt.date(2026, 11, 27)),  # Sunday: still Friday
        (kst(30, 17), dt.date(2026, 11, 27)),  # Monday 17:00 KST: Monday has not opened in New York
        (kst(1, 17, month=12), dt.date(2026, 11, 30)),
    ],
)
def test_at_17_kst_the_latest_completed_us_session_is_not_the_kst_calendar_day(now, expected) -> None:
    assert latest_completed_session(US, sessions_around("us", now), now) == expected


def test_a_krx_session_is_completed_at_its_1530_close() -> None:
    sessions = sessions_around("krx", kst(20, 12))
    assert latest_completed_session(KRX, sessions, kst(20, 15, minute=29)) == dt.date(2026, 11, 19)
    assert latest_completed_session(KRX, sessions, kst(20, 15, minute=30)) == dt.date(2026, 11, 20)


def test_the_next_session_is_the_one_trading_or_next_to_open() -> None:
    sessions = sessions_around("us", kst(26, 12))
    assert current_or_next_session(US, sessions, kst(26, 12)) == dt.date(2026, 11, 27)  # after Thanksgiving
    assert current_or_next_session(KRX, sessions_around("krx", kst(21, 9)), kst(21, 9)) == dt.date(2026, 11, 23)
    assert current_or_next_session(KRX, sessions_around("krx", kst(23, 9, minute=10)), kst(23, 9, minute=10)) == (
        dt.date(2026, 11, 23)
    )


def test_a_local_day_is_a_session_only_on_a_trading_weekday() -> None:
    sessions = sessions_around("krx", kst(20, 16))
    assert session_of_local_day(KRX, sessions, kst(20, 16)) == dt.date(2026, 11, 20)
    assert session_of_local_day(KRX, sessions, kst(21, 16)) is None


def test_trading_hours_are_local_hours() -> None:
    krx = sessions_around("krx", kst(20, 10))
    assert is_trading(KRX, krx, kst(20, 10))
    assert not is_trading(KRX, krx, kst(20, 15, minute=30))
    assert not is_trading(US, sessions_around("us", kst(20, 10)), kst(20, 10))  # 20:00 in New York


def test_trading_starts_on_the_first_session_on_or_after_the_start_day() -> None:
    assert first_session_from("krx", "2026-01-01") == dt.date(2026, 1, 2)
    assert first_session_from("us", "2026-11-26") == dt.date(2026, 11, 27)
