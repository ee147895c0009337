"""Both instance profiles load as Dagster reads them and carry the same queue, pool, retry,
monitoring and retention policy; only storage and sizes differ."""

import shutil

import dagster as dg
import pytest

from batch_assets_tests.conftest import REPO_ROOT
from batch_assets_tests.deploy.test_postgres_profile_daemon import postgres_env

PROFILES = {"embedded": REPO_ROOT / "dagster.yaml", "postgres": REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"}
VENDOR_LIMIT = {"key": "vendor", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
LANE_LIMIT = {"key": "vendor_lane", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def load(profile: str, home, monkeypatch, pg: dict | None = None) -> dg.DagsterInstance:
    home.mkdir()
    shutil.copy(PROFILES[profile], home / "dagster.yaml")
    if pg is not None:
        for key, value in postgres_env(home, pg, max_runs=12).items():
            monkeypatch.setenv(key, value)
    return dg.DagsterInstance.from_config(str(home))


def check_common_policy(instance: dg.DagsterInstance) -> None:
    concurrency = instance.get_concurrency_config()
    limits = concurrency.run_queue_config.tag_concurrency_limits
    assert VENDOR_LIMIT in limits
    assert LANE_LIMIT in limits
    # LOW work never takes every slot: a HIGH run always finds one.
    [low] = [limit for limit in limits if limit["key"] == "priority" and limit["value"] == "LOW"]
    assert low["limit"] < concurrency.run_queue_config.max_concurrent_runs
    # Pools without their own limit admit one step: safe for a single-writer resource.
    assert concurrency.pool_config.default_pool_limit == 1
    assert instance.run_coordinator.dequeue_interval_seconds == 2
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds == 7200
    assert instance.get_settings("retention")["sensor"]["purge_after_days"]["skipped"] == 7


def test_the_embedded_profile_stays_sqlite_with_the_shared_policy(tmp_path, monkeypatch) -> None:
    with load("embedded", tmp_path / "home", monkeypatch) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        check_common_policy(instance)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2


@pytest.mark.postgres
def test_the_postgres_profile_keeps_runs_events_and_schedules_in_postgres(tmp_path, monkeypatch, postgres_db) -> None:
    with load("postgres", tmp_path / "home", monkeypatch, postgres_db) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        check_common_policy(instance)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 12  # from DAGSTER_MAX_CONCURRENT_RUNS
        assert {"key": "priority", "value": "MEDIUM", "limit": 8} in queue.tag_concurrency_limits
