"""The operations slice: notifications of run successes and failures."""

import dagster as dg

from batch_assets.defs.operations.sensors import build_notification_sensors
from batch_assets.lib.settings import load_settings


@dg.definitions
def operations() -> dg.Definitions:
    return dg.Definitions(sensors=build_notification_sensors(load_settings()))
