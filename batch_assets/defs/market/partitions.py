"""Bars are partitioned by the exchange's sessions: weekends and exchange holidays are not partitions."""

import dagster as dg

from batch_assets.lib.markets.calendars import session_partition_args
from batch_assets.lib.settings import Settings, load_settings


def session_partitions(exchange: str, settings: Settings | None = None) -> dg.PartitionsDefinition:
    """One partition per session of ``exchange`` ('krx': XKRX in Asia/Seoul, 'us': XNYS in America/New_York).

    Keys are the session dates (YYYY-MM-DD) from ``BATCH_ASSETS_MARKETS_START``; the current
    session (the next one on a closed day) is the last partition.
    """
    start = (settings or load_settings()).markets_start
    return dg.DailyPartitionsDefinition(**session_partition_args(exchange, start))
