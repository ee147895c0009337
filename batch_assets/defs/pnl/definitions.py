"""The PnL slice: daily PnL per market with its risk checks, and the monthly strategy governance."""

import dagster as dg

from batch_assets.defs.pnl.assets import build_governance_asset, build_pnl_asset
from batch_assets.defs.pnl.checks import build_risk_checks
from batch_assets.defs.pnl.partitions import pnl_session_partitions
from batch_assets.lib.markets.risk import RiskLimits
from batch_assets.lib.settings import Settings, load_settings

MARKETS = ("krx", "us")


def build_pnl(settings: Settings) -> dg.Definitions:
    limits = RiskLimits()
    return dg.Definitions(
        assets=[
            *(build_pnl_asset(m, pnl_session_partitions(m, settings), settings) for m in MARKETS),
            build_governance_asset(MARKETS, settings, limits),
        ],
        asset_checks=[c for m in MARKETS for c in build_risk_checks(m, limits)],
    )


@dg.definitions
def pnl() -> dg.Definitions:
    return build_pnl(load_settings())
