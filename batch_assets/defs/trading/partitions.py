"""Trading is partitioned by the market's sessions, from the first session on or after the trading start.

Built from the same plain arguments as the bar and factor partitions (``session_partition_args``),
so a trading partition maps to the bar and factor partitions of the same session; it starts
later (``BATCH_ASSETS_TRADING_START``) because the book starts flat on its first partition.
"""

import dagster as dg

from batch_assets.lib.markets.calendars import session_partition_args
from batch_assets.lib.markets.venues import first_session_from
from batch_assets.lib.settings import Settings


def trading_session_partitions(market: str, settings: Settings) -> dg.DailyPartitionsDefinition:
    start = first_session_from(market, settings.trading_start)
    return dg.DailyPartitionsDefinition(**session_partition_args(market, start))


# The previous session's partition (a session-partitioned definition excludes non-sessions, so
# offset -1 from Monday is the Friday before, or the last session before a holiday). The first
# partition has none: the book starts flat there.
PREVIOUS_SESSION = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
