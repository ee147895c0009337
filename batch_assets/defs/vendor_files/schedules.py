"""The fixed windows of the exchange, in the exchange's timezone (the partitions' timezone)."""

from typing import Any

import dagster as dg


def build_vendor_schedules(jobs: dict[str, Any]) -> list:
    running = dg.DefaultScheduleStatus.RUNNING
    return [
        # Every day at 06:00: sweep the day's inbound files for every vendor.
        dg.build_schedule_from_partitioned_job(
            jobs["process_vendor_inbound_job"],
            name="process_vendor_inbound_schedule",
            hour_of_day=6,
            default_status=running,
        ),
        # Every day at 22:00: write the day's outbound files for every vendor.
        dg.build_schedule_from_partitioned_job(
            jobs["deliver_vendor_outbound_job"],
            name="deliver_vendor_outbound_schedule",
            hour_of_day=22,
            default_status=running,
        ),
    ]
