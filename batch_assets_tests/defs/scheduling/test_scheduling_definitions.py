"""The scheduling slice in the whole code location: its names pinned, and a user schedule on a real
vendor job dispatched by the loaded sensor."""

import datetime as dt

import dagster as dg
import pytest

from batch_assets.defs.scheduling.resources import UserScheduleStoreResource
from batch_assets.lib.cron_ticks import cursor_for
from batch_assets.lib.user_schedules import SqlUserScheduleStore, UserSchedule
from batch_assets_tests.conftest import HASH_KEY, VENDORS_DIR


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("scheduling_defs")


@pytest.fixture(scope="module")
def defs(home) -> dg.Definitions:
    """The whole code location, loaded once for this module (a load costs seconds)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
        env.setenv("BATCH_ASSETS_HASH_KEY", HASH_KEY)  # module scope: before the autouse fixture sets it
        env.setenv("BATCH_ASSETS_DATA_DIR", str(home / "data"))
        env.setenv("DAGSTER_HOME", str(home / "home"))
        env.delenv("BATCH_ASSETS_USER_SCHEDULES_URL", raising=False)
        from batch_assets.definitions import defs as load

        return load()


def test_the_dispatcher_sensor_and_its_store_are_pinned(defs: dg.Definitions, home) -> None:
    """Operators find the dispatcher by name; it runs from the first deploy, on a table under DAGSTER_HOME."""
    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs if "schedule" in s.name}
    assert set(sensors) == {"user_schedule_dispatcher_sensor"}
    sensor = sensors["user_schedule_dispatcher_sensor"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    store = defs.resources["user_schedule_store"]
    assert store.url == f"sqlite:///{home / 'home' / 'user_schedules.sqlite'}"


def test_a_url_from_the_environment_stays_out_of_the_resource_config(monkeypatch, tmp_path) -> None:
    """A PostgreSQL URL carries a password: the resource reads it from the environment at run time."""
    from batch_assets.defs.scheduling.definitions import build_scheduling
    from batch_assets.lib.settings import Settings

    monkeypatch.setenv("BATCH_ASSETS_USER_SCHEDULES_URL", "postgresql+psycopg2://ops:secret@db/dagster")
    resource = build_scheduling(Settings(data_dir=tmp_path)).resources["user_schedule_store"]
    assert isinstance(resource.url, dg.EnvVar)
    assert "secret" not in repr(resource.url)


def test_a_schedule_on_a_vendor_job_requests_that_job_s_assets_for_the_tick_s_day(
    defs: dg.Definitions, tmp_path
) -> None:
    url = f"sqlite:///{tmp_path / 'schedules.sqlite'}"
    with SqlUserScheduleStore(url) as store:
        store.add(
            UserSchedule(
                id="inbound-every-minute",
                target="job:process_vendor_inbound_job",
                cron="* * * * *",
                timezone="UTC",
                partition="last",
                tags={"priority": "LOW"},
                active_since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )
        )
    resources = {"user_schedule_store": UserScheduleStoreResource(url=url)}
    now = dt.datetime.now(dt.UTC)
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor_for(now - dt.timedelta(seconds=61)),
        definitions=defs,
        resources=resources,
    )
    result = defs.resolve_sensor_def("user_schedule_dispatcher_sensor")(context)
    assert result.run_requests, result.skip_reason
    run = result.run_requests[-1]
    assert {k.to_user_string() for k in run.asset_selection} == {
        f"vendor/{v}/{stage}"
        for v in ("acme_retail", "globex_logistics", "hooli_ads", "initech_payroll", "umbrella_health")
        for stage in ("staged", "rejects")
    }
    # Vendor days exist while they run: 'last' is the tick's own day.
    assert run.partition_key == run.tags["batch_assets/scheduled_time"][:10]
    assert run.tags["dagster/priority"] == "-10"
