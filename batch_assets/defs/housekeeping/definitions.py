"""The housekeeping slice: retention of run history and derived files."""

import dagster as dg

from batch_assets.defs.housekeeping.jobs import build_prune_job
from batch_assets.defs.housekeeping.schedules import build_prune_schedule
from batch_assets.lib.settings import Settings, load_settings


def build_housekeeping(settings: Settings) -> dg.Definitions:
    job = build_prune_job(settings)
    return dg.Definitions(jobs=[job], schedules=[build_prune_schedule(job, settings)])


@dg.definitions
def housekeeping() -> dg.Definitions:
    return build_housekeeping(load_settings())
