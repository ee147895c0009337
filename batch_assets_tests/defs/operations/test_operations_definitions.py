"""The operations slice's names are pinned: operators find these sensors by name in the UI."""

import dagster as dg
import pytest

from batch_assets_tests.conftest import VENDORS_DIR

NOTIFICATION_SENSORS = {
    "run_success_notification_sensor",
    "run_failure_notification_sensor",
    "notification_outbox_sensor",
}


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dg.Definitions:
    monkeypatch.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    from batch_assets.definitions import defs as load

    return load()


def test_the_notification_sensors_are_pinned_and_running_by_default(defs: dg.Definitions) -> None:
    """Notifications are on from the first deploy: without a webhook they go to a local log."""
    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs if "notification" in s.name}
    assert set(sensors) == NOTIFICATION_SENSORS
    for sensor in sensors.values():
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name
        assert sensor.description, sensor.name
