"""The trading slice: strategies' targets, orders, fills and positions per market, and seed 004's cron table."""

from pathlib import Path

import dagster as dg

from batch_assets.defs.trading.assets import build_trading_assets
from batch_assets.defs.trading.checks import build_trading_checks
from batch_assets.defs.trading.jobs import build_cron_jobs
from batch_assets.defs.trading.partitions import trading_session_partitions
from batch_assets.defs.trading.resources import build_broker_resource
from batch_assets.defs.trading.schedules import build_cron_schedules
from batch_assets.lib.markets.crons import load_cron_table
from batch_assets.lib.markets.risk import RiskLimits
from batch_assets.lib.settings import Settings, load_settings

CRON_TABLE = Path(__file__).with_name("cron_table.yaml")
MARKETS = ("krx", "us")


def build_trading(settings: Settings) -> dg.Definitions:
    table = load_cron_table(CRON_TABLE)
    jobs = build_cron_jobs(table)
    return dg.Definitions(
        assets=[a for m in MARKETS for a in build_trading_assets(m, trading_session_partitions(m, settings), settings)],
        asset_checks=[c for m in MARKETS for c in build_trading_checks(m, RiskLimits())],
        jobs=list(jobs.values()),
        schedules=build_cron_schedules(table, jobs, settings),
        resources={"broker": build_broker_resource(settings)},
    )


@dg.definitions
def trading() -> dg.Definitions:
    return build_trading(load_settings())
