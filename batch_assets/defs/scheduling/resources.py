"""The user schedule table, as a resource: tests and deployments point it at their own database."""

import os

import dagster as dg

from batch_assets.lib.settings import Settings
from batch_assets.lib.user_schedules import SqlUserScheduleStore, default_store_url

URL_ENV = "BATCH_ASSETS_USER_SCHEDULES_URL"


class UserScheduleStoreResource(dg.ConfigurableResource):
    """Where user-defined schedules are stored: a SQLAlchemy URL (PostgreSQL or a SQLite file)."""

    url: str

    def store(self) -> SqlUserScheduleStore:
        return SqlUserScheduleStore(self.url)


def build_user_schedule_store(settings: Settings) -> UserScheduleStoreResource:
    # A URL from the environment may carry a password: as an EnvVar it is read when the sensor
    # runs and never shown in the UI's resource config.
    if settings.user_schedules_url and os.environ.get(URL_ENV) == settings.user_schedules_url:
        return UserScheduleStoreResource(url=dg.EnvVar(URL_ENV))
    return UserScheduleStoreResource(url=default_store_url(settings))
