"""Spring 6-field crons become 5-field crons that fire at exactly the same instants, or are refused."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from batch_assets.lib.markets.crons import CronConversionError, load_cron_table, spring_to_unix

SEOUL = ZoneInfo("Asia/Seoul")

# Seed 004, section 2, as written there.
SEED_CRONS = {
    "trading-portfolio-generator": ("0 0 9 * * *", "0 9 * * *"),
    "short-term-strategy-executor": ("0 0 * * * *", "0 * * * *"),
    "medium-term-strategy-executor": ("0 0 9 * * *", "0 9 * * *"),
    "long-term-strategy-executor": ("0 0 9 * * MON", "0 9 * * 1"),
    "krx-daily-collector": ("0 0 16 * * *", "0 16 * * *"),
    "us-daily-collector": ("0 0 17 * * *", "0 17 * * *"),
    "factor-calculation": ("0 0 8 * * *", "0 8 * * *"),
    "auto-buy": ("0 10 9 * * *", "10 9 * * *"),
    "pipeline-exit": ("0 */5 9-15 * * MON-FRI", "*/5 9-15 * * 1-5"),
    "fill-confirmation": ("0 * * * * *", "* * * * *"),
    "unfilled-order-check": ("0 * * * * *", "* * * * *"),
    "risk-event-alert": ("0 */10 9-15 * * MON-FRI", "*/10 9-15 * * 1-5"),
    "medium-term-rebalance": ("0 30 8 1 * *", "30 8 1 * *"),
    "daily-pnl": ("0 5 16 * * MON-FRI", "5 16 * * 1-5"),
    "intraday-breakout": ("0 10,40 9 * * MON-FRI", "10,40 9 * * 1-5"),
    "strategy-governance-check": ("0 0 2 1 * *", "0 2 1 * *"),
}


def ticks(expression: str, start: dt.datetime, n: int, *, seconds_first: bool = False) -> list[dt.datetime]:
    it = croniter(expression, start, second_at_beginning=seconds_first)
    return [it.get_next(dt.datetime) for _ in range(n)]


@pytest.mark.parametrize(("job_id", "crons"), sorted(SEED_CRONS.items()))
def test_every_seed_cron_converts_to_the_expected_five_fields(job_id, crons) -> None:
    spring, unix = crons
    assert spring_to_unix(job_id, spring) == unix


@pytest.mark.parametrize(("job_id", "crons"), sorted(SEED_CRONS.items()))
def test_the_converted_cron_fires_at_the_same_instants_as_the_spring_one(job_id, crons) -> None:
    """croniter reads the Spring expression with its seconds field first: an independent reading."""
    spring, _ = crons
    start = dt.datetime(2026, 11, 27, 15, 52, 30, tzinfo=SEOUL)  # a Friday, near the KRX close
    n = 30
    assert ticks(spring_to_unix(job_id, spring), start, n) == ticks(spring, start, n, seconds_first=True)


@pytest.mark.parametrize(
    ("spring", "unix"),
    [
        ("0 0 0 ? * 5-7", "0 0 * * 0,5,6"),  # Spring's 7 is Sunday
        ("0 5/15 * * JAN-MAR ?", "5-59/15 * * 1-3 *"),
        ("0 0 12 * JUL ?", "0 12 * 7 *"),
        ("0 0 9 ? * WED", "0 9 * * 3"),
        ("@weekly", "0 0 * * 0"),
        ("00 15 10 ? * SUN,SAT", "15 10 * * 0,6"),
    ],
)
def test_names_steps_and_sundays_convert_in_springs_numbering(spring, unix) -> None:
    assert spring_to_unix("x", spring) == unix
    start = dt.datetime(2026, 1, 1, tzinfo=SEOUL)
    expanded = {"@weekly": "0 0 0 * * SUN"}.get(spring, spring)
    assert ticks(unix, start, 40) == ticks(expanded.replace("?", "*"), start, 40, seconds_first=True)


def test_a_day_of_week_step_counts_from_springs_monday_not_from_sunday() -> None:
    """Spring reads '*/2' over MON=1..SUN=7 (Monday, Wednesday, Friday, Sunday); Unix cron and
    croniter over 0..6 (Sunday, Tuesday, Thursday, Saturday). The conversion keeps Spring's days."""
    unix = spring_to_unix("x", "0 0 0 * * */2")
    assert unix == "0 0 * * 0,1,3,5"
    days = {t.strftime("%a") for t in ticks(unix, dt.datetime(2026, 1, 1, tzinfo=SEOUL), 14)}
    assert days == {"Mon", "Wed", "Fri", "Sun"}


@pytest.mark.parametrize(
    ("spring", "why"),
    [
        ("30 * * * * *", "second"),
        ("*/10 * * * * *", "second"),
        ("0 0 0 L * ?", "'L'"),
        ("0 0 9 ? * MON#2", "'#'"),
        ("0 0 9 15W * ?", "'W'"),
        ("0 0 0 1 * MON", "both day-of-month and day-of-week"),
        ("0 60 * * * *", "minute '60'"),
        ("0 0 9 * * FUNDAY", "not a number or a known name"),
        ("0 0 * * *", "expected 6 fields"),
        ("0 0 17-9 * * *", "runs backwards"),
    ],
)
def test_a_cron_that_cannot_be_converted_is_refused_with_the_jobs_name(spring, why) -> None:
    with pytest.raises(CronConversionError, match="job 'fill-confirmation'") as raised:
        spring_to_unix("fill-confirmation", spring)
    assert why in str(raised.value)


def test_a_table_with_a_bad_cron_does_not_load_and_names_the_job(tmp_path) -> None:
    """A wrong cron must stop the code location, not fire at a different time."""
    path = tmp_path / "table.yaml"
    path.write_text(
        """
jobs:
  - id: fill-confirmation
    name: 체결 확인
    cron: "30 * * * * *"
    mode: scheduled
    job: confirm_{market}_fills_job
    markets: [krx]
    targets: ["trading/{market}/fills"]
    tick: open_orders
""",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="job 'fill-confirmation'.*second"):
        load_cron_table(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "manual"}, "manual job has no cron"),
        ({"job": "ConfirmFills"}, "<verb>_<thing>_job"),
        ({"markets": "[krx, us]", "job": "confirm_fills_job"}, "needs '{market}'"),
        ({"tick": "whenever"}, "tick"),
    ],
)
def test_a_row_that_contradicts_itself_is_refused(tmp_path, change, message) -> None:
    row = {
        "id": "fill-confirmation",
        "name": "x",
        "cron": '"0 * * * * *"',
        "mode": "scheduled",
        "job": "confirm_{market}_fills_job",
        "markets": "[krx]",
        "targets": '["trading/krx/fills"]',
        "tick": "open_orders",
    } | change
    path = tmp_path / "table.yaml"
    path.write_text("jobs:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in row.items()) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_cron_table(path)
