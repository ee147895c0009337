"""The vendor day: every vendor's assets share one daily partitioning in the exchange's timezone."""

import dagster as dg

from batch_assets.lib.settings import Settings


def vendor_day_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists while today's files arrive.
    return dg.DailyPartitionsDefinition(start_date=settings.partitions_start, timezone=settings.timezone, end_offset=1)
