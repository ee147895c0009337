"""The arrival sensor against real stores: runs requested, cursors moved, reasons shown."""

import datetime as dt
import os

import dagster as dg
import pytest

from batch_assets.defs.resources import build_resources
from batch_assets.lib.engine.arrivals import ArrivalCursor
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import FileStore, LocalFolderStore
from batch_assets_tests.defs.vendor_files.helpers import drop_file, slice_defs

TODAY = dt.datetime.now(dt.UTC).date().isoformat()


def tick(settings: Settings, cursor: str | None = None) -> dg.SensorResult:
    defs = slice_defs(settings)
    sensor = defs.resolve_sensor_def("vendor_inbound_arrival_sensor")
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), cursor=cursor, resources=build_resources(settings), definitions=defs
    )
    return sensor(context)


@pytest.fixture
def store(local_settings: Settings) -> FileStore:
    return LocalFolderStore(local_settings.data_dir)


def test_the_first_tick_on_an_empty_inbound_area_skips_and_says_why(local_settings) -> None:
    result = tick(local_settings)
    assert result.run_requests == []
    assert "No new inbound files" in result.skip_reason.skip_message


def test_new_files_become_one_run_per_vendor_and_day_with_the_vendor_priority(
    local_settings, store, demo_specs
) -> None:
    drop_file(store, demo_specs["acme_retail"], day=TODAY, n=1)
    drop_file(store, demo_specs["acme_retail"], day=TODAY, n=2)
    drop_file(store, demo_specs["hooli_ads"], day=TODAY, n=1)
    result = tick(local_settings)
    runs = {r.tags["vendor"]: r for r in result.run_requests}
    assert set(runs) == {"acme_retail", "hooli_ads"}
    assert runs["hooli_ads"].tags["vendor_lane"] == "hooli_ads"  # one vendor per run: its own lane
    assert runs["acme_retail"].partition_key == TODAY
    assert runs["acme_retail"].tags["dagster/priority"] == "10"
    assert runs["hooli_ads"].tags["dagster/priority"] == "-10"
    assert {k.to_user_string() for k in runs["acme_retail"].asset_selection} == {
        "vendor/acme_retail/staged",
        "vendor/acme_retail/rejects",
        "vendor/acme_retail/outbound",
        "vendor/acme_retail/daily_report",
    }
    assert len(ArrivalCursor.from_json(result.cursor).recent) == 3
    reported = {(e.asset_key.to_user_string(), e.partition) for e in result.asset_events}
    assert ("vendor/acme_retail/inbound", TODAY) in reported


def test_vendors_ready_in_one_tick_share_runs_by_priority_when_asked(local_settings, store, demo_specs) -> None:
    """arrival_vendors_per_run > 1: one run per priority and lane holds the vendors that arrived together."""
    settings = local_settings.model_copy(update={"arrival_vendors_per_run": 10, "arrival_lanes": 1})
    for vendor in ("acme_retail", "initech_payroll", "hooli_ads", "umbrella_health", "globex_logistics"):
        drop_file(store, demo_specs[vendor], day=TODAY, n=1)
    result = tick(settings)
    runs = {r.tags["priority"]: r for r in result.run_requests}
    assert {p: r.tags.get("vendors", r.tags.get("vendor")) for p, r in runs.items()} == {
        "HIGH": "acme_retail,initech_payroll",
        "MEDIUM": "globex_logistics",
        "LOW": "hooli_ads,umbrella_health",
    }
    assert {r.tags["vendor_lane"] for r in result.run_requests} == {"lane-0"}
    assert runs["HIGH"].tags["dagster/priority"] == "10"
    assert {k.to_user_string() for k in runs["HIGH"].asset_selection} >= {
        "vendor/acme_retail/staged",
        "vendor/initech_payroll/outbound",
    }
    again = tick(settings)  # a fresh cursor: the shared run's key alone must prevent a second run
    assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in result.run_requests)


def test_the_next_tick_with_nothing_new_requests_nothing(local_settings, store, demo_specs) -> None:
    drop_file(store, demo_specs["acme_retail"], day=TODAY)
    first = tick(local_settings)
    second = tick(local_settings, first.cursor)
    assert len(first.run_requests) == 1
    assert second.run_requests == []


def test_the_same_file_again_is_not_processed_twice_but_a_new_version_is(local_settings, store, demo_specs) -> None:
    """Run keys follow file versions: a re-upload with new content is new work, the same bytes are not."""
    key, _ = drop_file(store, demo_specs["acme_retail"], day=TODAY, records=50)
    first = tick(local_settings)
    again = tick(local_settings)  # a fresh cursor: the run key alone must prevent a second run
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]

    path = store.root / key
    stat = path.stat()
    path.write_bytes(path.read_bytes() + b"ORD-99999999,C000001,a@example.com,SKU1,1,1.00,2026-11-20,web\n")
    # A later mtime than the first version's, but in the past: a future one would still be settling.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    newer = tick(local_settings, first.cursor)
    assert len(newer.run_requests) == 1
    assert newer.run_requests[0].run_key != first.run_requests[0].run_key


def test_files_of_unknown_vendors_and_malformed_keys_are_passed_over_with_a_reason(local_settings, store) -> None:
    with store.publish(f"inbound/nobody/{TODAY}/x.csv") as p:
        p.write_text("a\n1\n")
    with store.publish("inbound/acme_retail/not-a-day/orders_1.csv") as p:
        p.write_text("a\n1\n")
    with store.publish(f"inbound/acme_retail/{TODAY}/orders_1.csv.part") as p:
        p.write_text("a\n1\n")
    with store.publish(f"inbound/acme_retail/{TODAY}/readme.txt") as p:
        p.write_text("hello\n")
    result = tick(local_settings)
    assert result.run_requests == []
    reason = result.skip_reason.skip_message
    assert "no spec for vendor 'nobody'" in reason
    assert "upload still in progress" in reason
    assert "does not match the vendor's pattern" in reason


def test_a_file_still_being_written_waits_for_the_next_tick(local_settings, store, demo_specs) -> None:
    settings = local_settings.model_copy(update={"arrival_settle_seconds": 3600})
    drop_file(store, demo_specs["acme_retail"], day=TODAY)
    waiting = tick(settings)
    assert waiting.run_requests == []
    assert "waiting" in waiting.skip_reason.skip_message
    assert len(tick(local_settings, waiting.cursor).run_requests) == 1


def test_files_landing_in_the_same_second_as_the_watermark_are_not_lost(local_settings, store, demo_specs) -> None:
    """LastModified has 1-second resolution on S3: a key-ordered cursor would skip these."""
    spec = demo_specs["acme_retail"]
    first_key, _ = drop_file(store, spec, day=TODAY, n=5)
    stamp = (store.root / first_key).stat().st_mtime_ns
    first = tick(local_settings)
    later_key, _ = drop_file(store, spec, day=TODAY, n=1)  # sorts before n=5 and has the same mtime
    os.utime(store.root / later_key, ns=(stamp, stamp))
    second = tick(local_settings, first.cursor)
    assert len(second.run_requests) == 1
