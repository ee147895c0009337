"""When retention runs, in the exchange's timezone."""

import dagster as dg

from batch_assets.lib.settings import Settings


def build_prune_schedule(job: dg.JobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    # Every day at 03:00: after the nightly window (22:00-02:00), before the morning one (06:00).
    return dg.ScheduleDefinition(
        name="prune_expired_data_schedule",
        job=job,
        cron_schedule="0 3 * * *",
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
