"""The notification sensors on a real instance with real runs of a vendor day, delivering to a real
HTTP receiver on loopback."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from batch_assets.defs.operations.sensors import build_notification_sensors
from batch_assets.lib.notify import Notifier, WebhookTransport
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import HASH_KEY, VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import DAY, drop_file, slice_defs
from batch_assets_tests.webhook_receiver import WebhookReceiver, webhook_fixture  # noqa: F401  (fixture "webhook")

ACME = [dg.AssetKey(["vendor", "acme_retail", stage]) for stage in ("staged", "rejects", "outbound")]


@dataclass
class Runs:
    instance: dg.DagsterInstance
    success: dg.ExecuteInProcessResult
    failure: dg.ExecuteInProcessResult
    records: int


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, demo_specs) -> Iterator[Runs]:
    """One successful and one failed run of ACME's day through the vendor job, in one SQLite instance."""
    root = tmp_path_factory.mktemp("operations")
    settings = Settings(vendors_dir=VENDORS_DIR, data_dir=root / "data", arrival_settle_seconds=0)
    _, made = drop_file(LocalFolderStore(settings.data_dir), demo_specs["acme_retail"], records=120)
    with dg.instance_for_test(temp_dir=str(root)) as instance:
        with pytest.MonkeyPatch.context() as mp:  # the environment is restored before the tests run
            mp.setenv("BATCH_ASSETS_HASH_KEY", HASH_KEY)
            job = slice_defs(settings).resolve_job_def("process_vendor_files_job")
            ok = job.execute_in_process(
                instance=instance, partition_key=DAY, asset_selection=ACME, tags={"vendor": "acme_retail"}
            )
            mp.delenv("BATCH_ASSETS_HASH_KEY")  # a missing masking key fails the staging step
            failed = job.execute_in_process(
                instance=instance, partition_key=DAY, asset_selection=ACME, raise_on_error=False
            )
        assert ok.success and not failed.success
        yield Runs(instance, ok, failed, made.records)


def settings_for(tmp_path: Path, **overrides) -> Settings:
    return Settings(vendors_dir=VENDORS_DIR, data_dir=tmp_path / "data", **overrides)


def sensors(settings: Settings, notifier: Notifier | None = None) -> dict[str, dg.SensorDefinition]:
    return {s.name: s for s in build_notification_sensors(settings, notifier)}


def on_success(sensor: dg.SensorDefinition, runs: Runs) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=runs.success.get_run_success_event(),
        dagster_instance=runs.instance,
        dagster_run=runs.success.dagster_run,
    )
    sensor(context)


def on_failure(sensor: dg.SensorDefinition, runs: Runs) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=runs.failure.get_run_failure_event(),
        dagster_instance=runs.instance,
        dagster_run=runs.failure.dagster_run,
    )
    sensor(context)


def outbox_tick(sensor: dg.SensorDefinition, runs: Runs) -> str:
    result = sensor(dg.build_sensor_context(instance=runs.instance))
    assert result.run_requests == []
    return result.skip_reason.skip_message


def test_a_successful_vendor_run_is_notified_with_its_rows_partition_and_link(
    runs: Runs, webhook: WebhookReceiver, tmp_path
) -> None:
    s = sensors(settings_for(tmp_path, notify_webhook_url=webhook.url, ui_base_url="https://dagster.example/"))
    on_success(s["run_success_notification_sensor"], runs)
    [body] = webhook.accepted
    run = body["run"]
    run_id = runs.success.dagster_run.run_id
    assert body["idempotency_key"] == f"{run_id}:SUCCESS"
    assert (run["job_name"], run["status"], run["partition"]) == ("process_vendor_files_job", "SUCCESS", DAY)
    assert run["run_url"] == f"https://dagster.example/runs/{run_id}"
    rows = run["rows"]
    assert rows["rows_in"] == runs.records and rows["rows_out"] + rows["rows_rejected"] == runs.records
    assert {a["asset"] for a in run["assets"]} == {k.to_user_string() for k in ACME}
    assert run["tags"] == {"vendor": "acme_retail"}
    assert f"rows in {runs.records:,}" in body["text"]


def test_a_failed_run_is_notified_with_the_failed_steps_error(runs: Runs, webhook: WebhookReceiver, tmp_path) -> None:
    s = sensors(settings_for(tmp_path, notify_webhook_url=webhook.url))
    on_failure(s["run_failure_notification_sensor"], runs)
    [body] = webhook.accepted
    assert body["run"]["status"] == "FAILURE"
    assert "stage_acme_retail" in body["run"]["reason"]
    assert "BATCH_ASSETS_HASH_KEY" in body["text"]  # the message says what to fix


def test_runs_of_jobs_that_are_not_notified_are_passed_over(runs: Runs, webhook: WebhookReceiver, tmp_path) -> None:
    s = sensors(settings_for(tmp_path, notify_webhook_url=webhook.url, notify_jobs="deliver_vendor_outbound_job"))
    on_success(s["run_success_notification_sensor"], runs)
    on_failure(s["run_failure_notification_sensor"], runs)
    assert webhook.requests == 0


def test_a_receiver_failing_then_recovering_gets_exactly_one_message_per_run_and_status(
    runs: Runs, webhook: WebhookReceiver, tmp_path
) -> None:
    """500s while the receiver is down: retried in the tick, then kept in the outbox and sent once it
    recovers; the same run and status seen again is not sent again."""
    now = [1_800_000_000.0]
    notifier = Notifier(
        WebhookTransport(webhook.url, timeout=5),
        tmp_path / "state",
        attempts=3,
        backoff_seconds=0.01,
        outbox_backoff_seconds=30,
        clock=lambda: now[0],
    )
    s = sensors(settings_for(tmp_path), notifier)
    webhook.fail_next = 1_000
    on_success(s["run_success_notification_sensor"], runs)
    on_failure(s["run_failure_notification_sensor"], runs)
    # Three attempts inside the tick for the first; the second goes straight to the outbox while
    # the receiver is down, so a tick with many runs does not wait out every timeout.
    assert webhook.requests == 3 and webhook.accepted == []

    now[0] += 30
    assert "1 failed again" in outbox_tick(s["notification_outbox_sensor"], runs)
    on_success(s["run_success_notification_sensor"], runs)  # the same event again: already queued

    webhook.fail_next = 0
    now[0] += 60
    assert "Delivered 2 queued" in outbox_tick(s["notification_outbox_sensor"], runs)
    on_success(s["run_success_notification_sensor"], runs)
    on_failure(s["run_failure_notification_sensor"], runs)
    now[0] += 600
    assert outbox_tick(s["notification_outbox_sensor"], runs) == "Outbox empty."
    success, failure = (r.dagster_run.run_id for r in (runs.success, runs.failure))
    assert sorted(webhook.keys()) == sorted([f"{success}:SUCCESS", f"{failure}:FAILURE"])


def test_without_a_webhook_messages_go_to_a_json_lines_log_under_the_data_dir(runs: Runs, tmp_path) -> None:
    settings = settings_for(tmp_path)
    s = sensors(settings)
    on_success(s["run_success_notification_sensor"], runs)
    on_success(s["run_success_notification_sensor"], runs)
    log = settings.data_dir / "operations" / "notifications.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["key"] for line in lines] == [f"{runs.success.dagster_run.run_id}:SUCCESS"]
