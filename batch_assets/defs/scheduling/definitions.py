"""The scheduling slice: the dispatcher of user-defined schedules and the table it reads."""

import dagster as dg

from batch_assets.defs.scheduling.resources import build_user_schedule_store
from batch_assets.defs.scheduling.sensors import build_dispatcher_sensor
from batch_assets.lib.settings import Settings, load_settings


def build_scheduling(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        sensors=[build_dispatcher_sensor(settings)],
        resources={"user_schedule_store": build_user_schedule_store(settings)},
    )


@dg.definitions
def scheduling() -> dg.Definitions:
    return build_scheduling(load_settings())
