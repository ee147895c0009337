"""Cron ticks in a timezone: due or not, daylight-saving days, catch-up bounds, refused crons."""

import datetime as dt

import pytest

from batch_assets.lib.cron_ticks import (
    InvalidCron,
    check_cron,
    cursor_for,
    latest_ticks,
    next_tick,
    utc_text,
    watermark_from_cursor,
)

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ticks(cron: str, tz: str, after: str, until: str, limit: int | None = None) -> list[str]:
    found, _ = latest_ticks(cron, tz, at(after), at(until), limit)
    return [utc_text(t) for t in found]


def test_a_tick_is_due_once_its_time_has_come_and_not_before() -> None:
    assert ticks("0 7 * * *", "Europe/Paris", "2026-06-01T04:00:00Z", "2026-06-01T04:59:59Z") == []
    # 07:00 in Paris in summer is 05:00 UTC; the window is (after, until]: a tick at `until` is due.
    assert ticks("0 7 * * *", "Europe/Paris", "2026-06-01T04:00:00Z", "2026-06-01T05:00:00Z") == [
        "2026-06-01T05:00:00Z"
    ]
    assert ticks("0 7 * * *", "Europe/Paris", "2026-06-01T05:00:00Z", "2026-06-01T06:00:00Z") == []


def test_the_same_cron_in_two_timezones_fires_at_different_instants() -> None:
    window = ("2026-01-15T00:00:00Z", "2026-01-15T23:59:59Z")
    assert ticks("30 9 * * *", "Asia/Tokyo", *window) == ["2026-01-15T00:30:00Z"]
    assert ticks("30 9 * * *", "America/New_York", *window) == ["2026-01-15T14:30:00Z"]


def test_a_daily_time_that_does_not_exist_on_spring_forward_day_fires_at_the_end_of_the_gap() -> None:
    """02:30 does not exist in New York on 2026-03-08: the day is not lost, it fires at 03:00 EDT."""
    assert ticks("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z") == [
        "2026-03-07T07:30:00Z",  # 02:30 EST
        "2026-03-08T07:00:00Z",  # 03:00 EDT, the end of the gap
        "2026-03-09T06:30:00Z",  # 02:30 EDT
    ]


def test_an_hourly_schedule_skips_the_hour_that_does_not_exist() -> None:
    assert ticks("30 * * * *", "America/New_York", "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z") == [
        "2026-03-08T05:30:00Z",  # 00:30 EST
        "2026-03-08T06:30:00Z",  # 01:30 EST
        "2026-03-08T07:30:00Z",  # 03:30 EDT: 02:30 never happened
        "2026-03-08T08:30:00Z",
    ]


def test_a_daily_time_that_happens_twice_on_fall_back_day_fires_once_at_the_second() -> None:
    assert ticks("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z") == [
        "2026-10-31T05:30:00Z",
        "2026-11-01T06:30:00Z",  # 01:30 EST, the second 01:30 of the night
        "2026-11-02T06:30:00Z",
    ]


def test_an_hourly_schedule_fires_in_both_repeated_hours() -> None:
    """Every hour means every real hour: 01:00 EDT and 01:00 EST are an hour apart."""
    assert ticks("0 * * * *", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z") == [
        "2026-11-01T05:00:00Z",  # 01:00 EDT
        "2026-11-01T06:00:00Z",  # 01:00 EST
        "2026-11-01T07:00:00Z",  # 02:00 EST
        "2026-11-01T08:00:00Z",
    ]


def test_catch_up_keeps_the_latest_ticks_and_says_older_ones_were_left_out() -> None:
    """After months down, a per-minute schedule fires 5 runs, not 200,000, and quickly."""
    found, left_out = latest_ticks("* * * * *", "UTC", at("2026-01-01T00:00:00Z"), at("2026-06-01T12:00:30Z"), 5)
    assert [utc_text(t) for t in found] == [f"2026-06-01T11:{m}:00Z" for m in (56, 57, 58, 59)] + [
        "2026-06-01T12:00:00Z"
    ]
    assert left_out
    found, left_out = latest_ticks("0 * * * *", "UTC", at("2026-06-01T09:30:00Z"), at("2026-06-01T12:00:00Z"), 5)
    assert len(found) == 3 and not left_out


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "not a valid cron"),
        ("0 25 * * *", "not a valid cron"),
        ("* * * *", "has 4 fields; expected 5"),
        ("0 0 * * * *", "has 6 fields; expected 5"),
        ("every day", "has 2 fields"),
        ("@often", "unknown cron alias"),
        ("", "empty"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_an_invalid_cron_is_refused_with_the_reason(cron: str, message: str) -> None:
    with pytest.raises(InvalidCron, match=message):
        check_cron(cron)


def test_valid_crons_and_aliases_are_normalised() -> None:
    assert check_cron("0  7 * *   1-5") == "0 7 * * 1-5"
    assert check_cron("@daily") == "@daily"
    assert ticks("@daily", "UTC", "2026-06-01T00:00:00Z", "2026-06-03T00:00:00Z") == [
        "2026-06-02T00:00:00Z",
        "2026-06-03T00:00:00Z",
    ]


def test_next_tick_is_strictly_after_the_given_time() -> None:
    assert utc_text(next_tick("0 7 * * 1-5", "Europe/Paris", at("2026-11-20T06:00:00Z"))) == "2026-11-23T06:00:00Z"


def test_the_cursor_is_a_watermark_and_an_unreadable_one_counts_as_none() -> None:
    moment = at("2026-06-01T12:00:00.250000Z")
    assert watermark_from_cursor(cursor_for(moment)) == moment
    assert len(cursor_for(moment)) < 60
    for bad in (None, "", "not json", '{"other": 1}', '{"watermark": "yesterday"}', "[]"):
        assert watermark_from_cursor(bad) is None
