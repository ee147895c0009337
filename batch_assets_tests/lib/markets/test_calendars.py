"""Exchange sessions: holidays and weekends are not sessions, and the snapshot is exchange_calendars'."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from arch.data import sp500

from batch_assets.lib.markets.calendars import (
    SNAPSHOT_END,
    CalendarRangeError,
    closed_weekdays,
    compute_closed_weekdays,
    exchange_sessions,
    is_session,
    previous_session,
    session_partition_args,
    sessions_before,
)


def test_chuseok_2026_is_not_a_krx_session() -> None:
    """Chuseok 2026 is 24-26 September (the 26th a Saturday): no bars, no partitions."""
    sessions = exchange_sessions("krx", "2026-09-21", "2026-09-30")
    assert sessions == [date(2026, 9, d) for d in (21, 22, 23, 28, 29, 30)]


def test_the_2026_local_election_day_is_not_a_krx_session_though_exchange_calendars_lacks_it() -> None:
    """KRX closed on 3 June 2026 (local elections); exchange_calendars 4.13.2 has it as a session,
    so KNOWN_CLOSURES adds it: no bars, no partition, no trading that day."""
    assert not is_session("krx", "2026-06-03")
    assert is_session("us", "2026-06-03")
    assert date(2026, 6, 3) in closed_weekdays("krx")


def test_us_holidays_are_not_sessions_but_are_on_krx() -> None:
    for holiday in (date(2026, 11, 26), date(2026, 7, 3), date(2026, 1, 19)):  # Thanksgiving, July 4th observed, MLK
        assert not is_session("us", holiday)
        assert is_session("krx", holiday)


def test_weekends_are_not_sessions_and_the_krx_year_end_closure_is_not_either() -> None:
    assert not is_session("krx", "2026-11-21") and not is_session("us", "2026-11-22")
    assert not is_session("krx", "2026-12-31")
    assert is_session("us", "2026-12-31")


def test_previous_sessions_skip_weekends_and_holidays() -> None:
    assert previous_session("krx", date(2026, 9, 28)) == date(2026, 9, 23)
    assert previous_session("us", date(2026, 11, 27)) == date(2026, 11, 25)
    assert sessions_before("us", date(2026, 11, 30), 3) == [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]
    assert len(sessions_before("krx", date(2026, 11, 20), 250)) == 250


def test_twenty_years_of_real_sp500_dates_are_exactly_the_nyse_sessions() -> None:
    """The arch package's S&P 500 history is real NYSE data: its dates must be the XNYS sessions
    (9/11, Hurricane Sandy and the presidents' funerals included)."""
    dates = [d.date() for d in sp500.load().index if d.year >= 2000]
    assert dates == exchange_sessions("us", dates[0], dates[-1])


def test_dates_outside_the_snapshot_are_refused_not_guessed() -> None:
    with pytest.raises(CalendarRangeError):
        exchange_sessions("us", "1999-12-01", "2000-01-10")
    with pytest.raises(CalendarRangeError):
        is_session("krx", SNAPSHOT_END + timedelta(days=1))


def test_the_snapshot_covers_more_than_a_year_ahead() -> None:
    """The partitions' exclusions end with the snapshot: extend it before it runs out."""
    assert SNAPSHOT_END - date.today() > timedelta(days=366)


def test_partition_args_start_on_a_session() -> None:
    args = session_partition_args("krx", "2015-01-02")
    assert args["timezone"] == "Asia/Seoul" and args["start_date"] == "2015-01-02"
    with pytest.raises(ValueError, match="not a Korea Exchange session"):
        session_partition_args("krx", "2015-01-03")


@pytest.mark.parametrize("exchange", ["krx", "us"])
def test_the_snapshot_equals_exchange_calendars(exchange: str) -> None:
    """The snapshot is a cache of exchange_calendars (plus KNOWN_CLOSURES); after an upgrade of the
    package this fails until `python -m batch_assets.lib.markets.calendars --write` regenerates it."""
    assert list(closed_weekdays(exchange)) == compute_closed_weekdays(exchange)
