"""The trading and PnL slices' names in the whole code location, pinned so a rename is a visible diff."""

import dagster as dg
import pytest

from batch_assets_tests.conftest import HASH_KEY, VENDORS_DIR

MARKETS = ("krx", "us")
STRATEGIES = ("short_term", "medium_term", "long_term", "robo", "intraday_breakout")
JOBS = {
    "generate_{m}_target_portfolio_job",
    "execute_{m}_short_term_strategy_job",
    "execute_{m}_medium_term_strategy_job",
    "execute_{m}_long_term_strategy_job",
    "place_{m}_orders_job",
    "run_{m}_trading_pipeline_job",
    "confirm_{m}_fills_job",
    "check_{m}_unfilled_orders_job",
    "rebalance_{m}_medium_term_job",
    "record_{m}_daily_pnl_job",
    "rebalance_{m}_robo_portfolio_job",
}
KRX_ONLY_JOBS = {
    "collect_krx_daily_bars_job",
    "backfill_krx_daily_bars_job",
    "calculate_krx_factors_job",
    "evaluate_krx_position_exits_job",
    "check_krx_risk_limits_job",
    "execute_krx_intraday_breakout_job",
}
OTHER_JOBS = {"collect_us_daily_bars_job", "backfill_us_daily_bars_job", "check_strategy_governance_job"}
MANUAL_JOBS = {"backfill_krx_daily_bars_job", "backfill_us_daily_bars_job"} | {
    f"{job}".format(m=m)
    for m in MARKETS
    for job in ("run_{m}_trading_pipeline_job", "rebalance_{m}_robo_portfolio_job")
}


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
        patch.setenv("BATCH_ASSETS_HASH_KEY", HASH_KEY)  # module scope: before the autouse fixture sets it
        patch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        from batch_assets.definitions import defs as load

        loaded = load()
        loaded.get_repository_def()
        return loaded


def cron_jobs() -> set[str]:
    return {j.format(m=m) for m in MARKETS for j in JOBS} | KRX_ONLY_JOBS | OTHER_JOBS


def test_the_trading_and_pnl_asset_keys_are_pinned(defs: dg.Definitions) -> None:
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    ours = {k for k in keys if k.split("/")[0] in ("trading", "pnl")}
    expected = {"pnl/strategy_governance"}
    for m in MARKETS:
        expected |= {f"trading/{m}/target_portfolio/{s}" for s in STRATEGIES}
        expected |= {f"trading/{m}/orders", f"trading/{m}/fills", f"trading/{m}/positions", f"pnl/{m}/daily"}
    assert ours == expected


def test_the_trading_and_pnl_checks_are_pinned(defs: dg.Definitions) -> None:
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in defs.resolve_asset_graph().asset_check_keys}
    ours = {c for c in checks if c.split("/")[0] in ("trading", "pnl")}
    expected = {"pnl/strategy_governance:strategies_within_mandate"}
    for m in MARKETS:
        expected |= {
            f"trading/{m}/fills:orders_filled_by_close",
            f"trading/{m}/positions:positions_within_stop_loss",
            f"pnl/{m}/daily:drawdown_within_limit",
            f"pnl/{m}/daily:concentration_within_limit",
            f"pnl/{m}/daily:exposure_within_limit",
        }
    assert ours == expected


def test_every_seed_job_is_a_job_and_every_scheduled_one_a_schedule_in_seoul(defs: dg.Definitions) -> None:
    """Manual seed jobs exist as jobs without a schedule; the others have one schedule per job."""
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    assert cron_jobs() <= jobs
    schedules = {s.name: s for s in repo.schedule_defs if s.job_name in cron_jobs()}
    assert set(schedules) == {j.removesuffix("_job") + "_schedule" for j in cron_jobs() - MANUAL_JOBS}
    assert len(schedules) == 25
    assert {s.execution_timezone for s in schedules.values()} == {"Asia/Seoul"}
    assert {s.job_name for s in schedules.values()} == cron_jobs() - MANUAL_JOBS


def test_every_partition_mapping_of_the_asset_graph_is_valid(defs: dg.Definitions) -> None:
    """What `dagster definitions validate` checks: e.g. no time-window mapping across timezones."""
    defs.resolve_asset_graph().validate_partitions()


def test_no_trading_or_pnl_asset_depends_on_its_own_previous_session(defs: dg.Definitions) -> None:
    """With a self-dependency the backfill daemon splits a range: it launched targets, orders and
    fills for the whole range without positions, and that run failed on the second session's book.
    Without one, a range backfill from the UI or the CLI is one run that books sessions in order."""
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        if key.path[0] in ("trading", "pnl"):
            assert key not in graph.get(key).parent_keys, f"{key.to_user_string()} depends on itself"


def test_the_broker_resource_is_the_paper_broker_by_default(defs: dg.Definitions) -> None:
    broker = defs.resources["broker"]
    assert (broker.kind, broker.fill_at) == ("paper", "close")
