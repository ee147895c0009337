"""Seed 004's cron table as schedules: the seed's ticks, the right partition, and no run without work."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from croniter import croniter

from batch_assets.defs.trading.definitions import CRON_TABLE
from batch_assets.defs.trading.schedules import TOKEN_TAG
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.crons import load_cron_table
from batch_assets_tests.defs.trading.helpers import (
    MON,
    TUE,
    book_directly,
    factor_row,
    run_job,
    slice_defs,
    store_of,
    trade_directly,
    trading_settings,
    write_bars,
    write_factors,
)
from batch_assets_tests.lib.markets.seed_004 import SEED_JOBS

SEOUL = ZoneInfo("Asia/Seoul")


def kst(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SEOUL)


@pytest.fixture
def settings(tmp_path):
    return trading_settings(tmp_path)


@pytest.fixture(scope="module")
def instance():
    """One instance for the module: the tokens tests leave behind name their own files, so they never meet."""
    with dg.instance_for_test() as instance:
        yield instance


def queue(settings, instance, job_name: str, request: dg.RunRequest) -> None:
    """Record the requested run, as launching it would (later ticks see its token)."""
    job = slice_defs(settings).resolve_job_def(job_name)
    instance.create_run_for_job(job, tags=request.tags)


def monday_booked_with_signals(settings) -> None:
    """Monday (the first traded session) booked flat; its factors pick A for Tuesday."""
    store = store_of(settings)
    write_bars(store, "krx", MON, {"A": (10_000, 10_000, 10_000, 10_000)})
    book_directly(settings, "krx", MON)
    write_factors(store, "krx", MON, [factor_row("A", MON, mom_20=0.05)])


def tick(settings, instance, name: str, when: dt.datetime):
    """Evaluate the schedule ``name`` as the daemon would at ``when``."""
    defs = slice_defs(settings)
    schedule = defs.get_schedule_def(name)
    resources = defs.get_repository_def().get_top_level_resources()
    # As a context manager, as the daemon does: the instance the context opens is closed again.
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources={k: resources[k] for k in ("file_store", "broker")},
        repository_def=defs.get_repository_def(),
    ) as context:
        return schedule.evaluate_tick(context)


def only_request(result) -> dg.RunRequest:
    assert result.skip_message is None, result.skip_message
    (request,) = result.run_requests
    return request


def test_the_table_is_the_seeds_table() -> None:
    """Every job of the seed, with its name and cron, scheduled or manual as the seed says."""
    table = load_cron_table(CRON_TABLE)
    assert [(r.id, r.name, r.cron) for r in table.jobs] == SEED_JOBS
    assert all((r.mode == "manual") == (r.cron is None) for r in table.jobs)


def test_every_schedule_ticks_at_the_seeds_instants_in_seoul(settings) -> None:
    """For each schedule, the next ticks of its 5-field cron in Asia/Seoul equal croniter's reading of
    the seed's Spring cron (seconds first), from several starting points (month end, weekend)."""
    seed = {job_id: cron for job_id, _, cron in SEED_JOBS}
    repo = slice_defs(settings).get_repository_def()
    table = load_cron_table(CRON_TABLE)
    checked = 0
    for row in table.scheduled():
        for market in row.markets or [None]:
            schedule = repo.get_schedule_def(row.schedule_name(market))
            assert schedule.execution_timezone == "Asia/Seoul"
            assert schedule.job_name == row.job_name(market)
            for start in (kst(11, 27, 15, 52), kst(11, 28, 23, 59), kst(12, 31, 8, 0)):
                ours = croniter(schedule.cron_schedule, start)
                seeds = croniter(seed[row.id], start, second_at_beginning=True)
                assert [ours.get_next(dt.datetime) for _ in range(12)] == [
                    seeds.get_next(dt.datetime) for _ in range(12)
                ], row.id
            checked += 1
    assert checked == len(repo.schedule_defs) == 25


def test_a_few_ticks_written_out_by_hand(settings) -> None:
    repo = slice_defs(settings).get_repository_def()

    def next_ticks(name: str, start: dt.datetime, n: int) -> list[dt.datetime]:
        it = croniter(repo.get_schedule_def(name).cron_schedule, start)
        return [it.get_next(dt.datetime) for _ in range(n)]

    # pipeline-exit: every 5 minutes 09:00-15:55 on weekdays; Friday's last, then Monday's first.
    assert next_ticks("evaluate_krx_position_exits_schedule", kst(11, 27, 15, 52), 3) == [
        kst(11, 27, 15, 55),
        kst(11, 30, 9, 0),
        kst(11, 30, 9, 5),
    ]
    # medium-term-rebalance: 08:30 on the 1st of each month.
    assert next_ticks("rebalance_krx_medium_term_schedule", kst(11, 22, 0), 2) == [
        kst(12, 1, 8, 30),
        dt.datetime(2027, 1, 1, 8, 30, tzinfo=SEOUL),
    ]
    # long-term-strategy-executor: Mondays at 09:00.
    assert next_ticks("execute_us_long_term_strategy_schedule", kst(11, 22, 0), 2) == [kst(11, 23, 9), kst(11, 30, 9)]


@pytest.mark.parametrize(
    ("when", "session"),
    [
        (kst(11, 25, 17), "2026-11-24"),  # Wednesday 17:00 KST = 03:00 New York: Tuesday's session
        (kst(11, 27, 17), "2026-11-25"),  # across Thanksgiving (Thursday 26)
        (kst(11, 28, 17), "2026-11-27"),  # Saturday
        (kst(11, 29, 17), "2026-11-27"),  # Sunday
        (kst(11, 30, 17), "2026-11-27"),  # Monday: New York has not opened yet
    ],
)
def test_the_1700_kst_us_collection_targets_the_latest_completed_us_session(settings, instance, when, session) -> None:
    request = only_request(tick(settings, instance, "collect_us_daily_bars_schedule", when))
    assert request.partition_key == session


def test_the_1600_kst_krx_collection_targets_today_or_skips_a_day_without_a_session(settings, instance) -> None:
    assert only_request(tick(settings, instance, "collect_krx_daily_bars_schedule", kst(11, 20, 16))).partition_key == (
        "2026-11-20"
    )
    skipped = tick(settings, instance, "collect_krx_daily_bars_schedule", kst(11, 21, 16))
    assert skipped.run_requests == []
    assert skipped.skip_message == "2026-11-21 (Saturday) is not a KRX session: nothing to collect"


def test_a_strategy_executor_waits_for_its_inputs_runs_once_and_then_skips(settings, instance) -> None:
    store = store_of(settings)
    name = "execute_krx_short_term_strategy_schedule"
    # Monday is the first traded session: no inputs needed, it runs and writes the (empty) target.
    assert only_request(tick(settings, instance, name, kst(11, 16, 9))).partition_key == "2026-11-16"
    write_bars(store, "krx", MON, {"A": (10, 10, 10, 10)})
    book_directly(settings, "krx", MON)
    # Tuesday 09:00: Monday's factors are not in yet.
    waiting = tick(settings, instance, name, kst(11, 17, 9))
    assert waiting.skip_message == "KRX 2026-11-17: waiting for factors/krx/daily/2026-11-16.parquet"
    write_factors(store, "krx", MON, [factor_row("A", MON, mom_20=0.05)])
    request = only_request(tick(settings, instance, name, kst(11, 17, 10)))
    assert request.partition_key == "2026-11-17"
    trade_directly(settings, "krx", TUE)
    done = tick(settings, instance, name, kst(11, 17, 11))
    assert done.skip_message == "KRX 2026-11-17: short_term already executed (its target is written)"


def test_fill_confirmation_skips_without_open_orders_and_runs_once_per_broker_news(settings, instance) -> None:
    """Every minute would be 1,440 runs a day: a tick starts a run only when orders are open and the
    broker has something new about them."""
    store = store_of(settings)
    name = "confirm_krx_fills_schedule"
    idle = tick(settings, instance, name, kst(11, 17, 10, 1))
    assert idle.skip_message == "no open KRX orders in the last 5 session(s)"

    monday_booked_with_signals(settings)
    trade_directly(settings, "krx", TUE)

    request = only_request(tick(settings, instance, name, kst(11, 17, 10, 2)))
    assert request.partition_key == "2026-11-17"
    queue(settings, instance, "confirm_krx_fills_job", request)
    # Orders still open (no bar yet), but nothing new from the broker: no second run.
    quiet = tick(settings, instance, name, kst(11, 17, 10, 3))
    assert quiet.run_requests == []
    assert quiet.skip_message.startswith("KRX 2026-11-17: nothing new since run ")

    write_bars(store, "krx", TUE, {"A": (11_000, 11_000, 11_000, 11_000)})
    news = only_request(tick(settings, instance, name, kst(11, 17, 16, 1)))
    assert news.tags[TOKEN_TAG] != request.tags[TOKEN_TAG]
    assert run_job(settings, "confirm_krx_fills_job", session=TUE, tags=news.tags, instance=instance).success
    assert {f["status"] for f in tl.read_rows(store, tl.fills_key("krx", TUE))} == {"filled"}
    assert (
        tick(settings, instance, name, kst(11, 17, 16, 2)).skip_message == "no open KRX orders in the last 5 session(s)"
    )


def test_unfilled_orders_are_checked_once_their_fills_are_due(settings, instance) -> None:
    name = "check_krx_unfilled_orders_schedule"
    monday_booked_with_signals(settings)
    trade_directly(settings, "krx", TUE)

    before = tick(settings, instance, name, kst(11, 17, 16, 29))  # fills are due an hour after the 15:30 close
    assert before.skip_message == "no unfilled KRX orders after a close in the last 5 session(s)"
    request = only_request(tick(settings, instance, name, kst(11, 17, 16, 30)))
    assert request.partition_key is None
    assert request.tags[tl.SESSION_TAG] == "2026-11-17"
    result = run_job(settings, "check_krx_unfilled_orders_job", tags=request.tags, instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description.startswith("1 open after the close")
    assert tick(settings, instance, name, kst(11, 17, 16, 31)).run_requests == []


def test_risk_alerts_run_only_while_krx_trades_with_open_positions(settings, instance) -> None:
    store = store_of(settings)
    name = "check_krx_risk_limits_schedule"
    assert tick(settings, instance, name, kst(11, 21, 10)).skip_message == "KRX is not trading at 2026-11-21 10:00 KST"
    monday_booked_with_signals(settings)
    flat = tick(settings, instance, name, kst(11, 17, 10))
    assert flat.skip_message == "no open KRX positions after 2026-11-16"

    write_bars(store, "krx", TUE, {"A": (10_000, 10_000, 10_000, 10_000)})
    trade_directly(settings, "krx", TUE)
    book_directly(settings, "krx", TUE)
    request = only_request(tick(settings, instance, name, kst(11, 18, 10)))
    assert request.tags[tl.SESSION_TAG] == "2026-11-17"
    result = run_job(settings, "check_krx_risk_limits_job", tags=request.tags, instance=instance)
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        "drawdown_within_limit",
        "concentration_within_limit",
        "exposure_within_limit",
    }
    assert tick(settings, instance, name, kst(11, 18, 10, 10)).skip_message.startswith("KRX 2026-11-17: nothing new")


def test_daily_pnl_books_every_unbooked_session_in_one_run(settings, instance) -> None:
    store = store_of(settings)
    write_bars(store, "krx", MON, {"A": (10, 10, 10, 10)})
    write_bars(store, "krx", TUE, {"A": (10, 10, 10, 10)})
    request = only_request(tick(settings, instance, "record_krx_daily_pnl_schedule", kst(11, 18, 16, 5)))
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2026-11-16",
        "2026-11-17",
    )
    queue(settings, instance, "record_krx_daily_pnl_job", request)
    again = tick(settings, instance, "record_krx_daily_pnl_schedule", kst(11, 18, 16, 6))
    assert again.skip_message.startswith("KRX 2026-11-16..2026-11-17: nothing new since run ")
    book_directly(settings, "krx", MON)
    book_directly(settings, "krx", TUE)
    waiting = tick(settings, instance, "record_krx_daily_pnl_schedule", kst(11, 18, 16, 5))
    assert waiting.skip_message == "KRX 2026-11-18: waiting for market/krx/daily_bars/2026-11-18.parquet"


def test_the_governance_check_reviews_the_previous_month(settings, instance) -> None:
    request = only_request(tick(settings, instance, "check_strategy_governance_schedule", kst(12, 1, 2)))
    assert request.partition_key == "2026-11-01"


def test_daily_pnl_does_not_book_past_a_gap_in_the_book(tmp_path, instance) -> None:
    """Booking Wednesday on an unbooked Tuesday would start from an empty book: skip, say what to do."""
    settings = trading_settings(tmp_path).model_copy(update={"trading_lookback_sessions": 1})
    write_bars(store_of(settings), "krx", dt.date(2026, 11, 18), {"A": (10, 10, 10, 10)})
    skipped = tick(settings, instance, "record_krx_daily_pnl_schedule", kst(11, 18, 16, 5))
    assert skipped.skip_message == (
        "KRX 2026-11-18: its previous session 2026-11-17 is not booked; book the sessions in order from the "
        "first unbooked one (a backfill of record_krx_daily_pnl_job)"
    )
