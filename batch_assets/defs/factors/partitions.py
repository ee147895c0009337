"""Factors are partitioned like the bars they come from: one partition per exchange session."""

import dagster as dg

from batch_assets.lib.markets.calendars import session_partition_args
from batch_assets.lib.settings import Settings


def factor_partitions(exchange: str, settings: Settings) -> dg.PartitionsDefinition:
    # Built from the same plain arguments as market/partitions.py, so the two definitions are
    # equal and a factor partition maps to the bar partition of the same session.
    return dg.DailyPartitionsDefinition(**session_partition_args(exchange, settings.markets_start))
