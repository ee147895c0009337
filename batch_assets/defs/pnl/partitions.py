"""PnL is partitioned by the market's sessions, from the first session on or after the trading start.

Built from the same plain arguments as the bar and factor partitions (``session_partition_args``),
so a PnL partition maps to the bar and factor partitions of the same session; it starts
later (``BATCH_ASSETS_TRADING_START``) because the book starts flat on its first partition.
"""

import dagster as dg

from batch_assets.lib.markets.calendars import session_partition_args
from batch_assets.lib.markets.venues import first_session_from
from batch_assets.lib.settings import Settings


def pnl_session_partitions(market: str, settings: Settings) -> dg.DailyPartitionsDefinition:
    start = first_session_from(market, settings.trading_start)
    return dg.DailyPartitionsDefinition(**session_partition_args(market, start))
