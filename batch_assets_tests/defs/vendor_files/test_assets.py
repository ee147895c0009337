"""Materializing a vendor's day: real local storage, real outputs read back, checks evaluated."""

import json

import dagster as dg
import pyarrow.parquet as pq
import pytest

from batch_assets.lib.engine import DEMO_HASH_KEY, layout
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.defs.vendor_files.helpers import DAY, drop_file, slice_defs


def materialize_vendor(settings: Settings, vendor_id: str, day: str = DAY) -> dg.ExecuteInProcessResult:
    defs = slice_defs(settings)
    job = defs.resolve_job_def("process_vendor_files_job")
    selection = [dg.AssetKey(["vendor", vendor_id, s]) for s in ("staged", "rejects", "outbound", "daily_report")]
    return job.execute_in_process(
        partition_key=day, asset_selection=selection, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize(
    "vendor_id", ["acme_retail", "globex_logistics", "hooli_ads", "initech_payroll", "umbrella_health"]
)
def test_a_vendor_day_goes_from_inbound_files_to_outbound_files(local_settings, demo_specs, vendor_id) -> None:
    """The core promise: every record in is written out or rejected, and the vendor gets its file."""
    spec = demo_specs[vendor_id]
    store = LocalFolderStore(local_settings.data_dir)
    made = [drop_file(store, spec, n=n, records=150)[1] for n in (1, 2)]
    result = materialize_vendor(local_settings, vendor_id)
    assert result.success

    records = sum(m.records for m in made)
    invalid = sum(m.invalid for m in made)
    staged = result.asset_materializations_for_node(f"stage_{vendor_id}")
    meta = {m.asset_key.path[-1]: m.metadata for m in staged}
    assert meta["staged"]["rows_in"].value == records
    assert meta["staged"]["rows_rejected"].value == invalid
    assert meta["staged"]["rows_out"].value == records - invalid
    assert meta["rejects"]["rows_rejected"].value == invalid

    staged_rows = sum(
        pq.ParquetFile(store.root / o.key).metadata.num_rows for o in store.list(f"staged/{vendor_id}/{DAY}/")
    )
    reject_lines = [
        json.loads(line)
        for o in store.list(f"rejects/{vendor_id}/{DAY}/")
        for line in store.read_bytes(o.key).decode().splitlines()
    ]
    assert staged_rows == records - invalid
    assert len(reject_lines) == invalid
    assert all(r["_reject_rule"] and r["_reject_reason"] for r in reject_lines)

    outbound = [o for o in store.list(f"outbound/{vendor_id}/{DAY}/") if not layout.is_report(o.key)]
    assert len(outbound) == (2 if spec.output.granularity == "per_file" else 1)
    assert all(o.size > 0 for o in outbound)
    report = store.stat(layout.report_key(vendor_id, DAY))
    assert report is not None and report.size > 0

    checks = checks_of(result)
    assert checks["records_conserved"].passed
    assert checks["inbound_files_readable"].passed
    assert checks["inbound_files_arrived"].passed


def test_rematerializing_a_partition_replaces_its_outputs_and_never_duplicates(local_settings, demo_specs) -> None:
    spec = demo_specs["acme_retail"]
    store = LocalFolderStore(local_settings.data_dir)
    drop_file(store, spec)
    assert materialize_vendor(local_settings, "acme_retail").success
    first = {o.key: store.read_bytes(o.key) for o in store.list("outbound/")}
    assert materialize_vendor(local_settings, "acme_retail").success
    second = {o.key: store.read_bytes(o.key) for o in store.list("outbound/")}
    assert first == second
    assert len(list(store.list("staged/"))) == 1


def test_a_high_reject_rate_warns_without_stopping_the_day(local_settings, demo_specs) -> None:
    """A vendor sending mostly bad records should be visible in the UI, yet the good records still go out."""
    spec = demo_specs["acme_retail"]
    store = LocalFolderStore(local_settings.data_dir)
    drop_file(store, spec, invalid_share=0.5)
    result = materialize_vendor(local_settings, "acme_retail")
    assert result.success
    check = checks_of(result)["reject_rate_within_threshold"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert list(store.list(f"outbound/acme_retail/{DAY}/"))


def test_an_unreadable_file_is_quarantined_its_check_fails_and_the_other_files_still_go_out(
    local_settings, demo_specs
) -> None:
    spec = demo_specs["globex_logistics"]
    store = LocalFolderStore(local_settings.data_dir)
    drop_file(store, spec, n=1)
    broken = f"inbound/globex_logistics/{DAY}/shipments_{DAY}_002.json"
    with store.publish(broken) as path:
        path.write_text('[{"shipment_id": "SH0000001", "carrier": ')
    result = materialize_vendor(local_settings, "globex_logistics")
    assert result.success
    check = checks_of(result)["inbound_files_readable"]
    assert not check.passed
    assert broken in check.description
    assert store.stat(broken) is None
    quarantined = f"quarantine/globex_logistics/{DAY}/shipments_{DAY}_002.json"
    assert store.stat(quarantined) is not None
    assert quarantined in check.description
    assert [o.key for o in store.list(f"staged/globex_logistics/{DAY}/")] == [
        layout.staged_key("globex_logistics", DAY, f"shipments_{DAY}_001.json")
    ]


def test_a_masking_key_missing_at_run_time_fails_the_run_with_a_clear_message(
    local_settings, demo_specs, monkeypatch
) -> None:
    """The code location loaded with its key, but the run's process lacks it (a run launcher that does not
    pass the secret on): hashing without it would silently produce different pseudonyms, so refuse instead."""
    store = LocalFolderStore(local_settings.data_dir)
    drop_file(store, demo_specs["acme_retail"])
    job = slice_defs(local_settings).resolve_job_def("process_vendor_files_job")
    monkeypatch.delenv("BATCH_ASSETS_HASH_KEY")
    result = job.execute_in_process(
        partition_key=DAY,
        asset_selection=[dg.AssetKey(["vendor", "acme_retail", s]) for s in ("staged", "rejects", "outbound")],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "BATCH_ASSETS_HASH_KEY" in str(failure.step_failure_data.error)
    assert not list(store.list("staged/"))


def test_the_demo_profile_hashes_with_the_public_demo_key_when_none_is_set(
    tmp_path, local_settings, demo_specs, monkeypatch
) -> None:
    """The demo must run on a fresh checkout without a secret, and its run log must say its pseudonyms are public."""
    keyed = local_settings.model_copy(update={"data_dir": tmp_path / "keyed"})
    demo = local_settings.model_copy(update={"profile": "demo"})
    stores = LocalFolderStore(keyed.data_dir), LocalFolderStore(demo.data_dir)
    for store in stores:
        drop_file(store, demo_specs["acme_retail"])
    monkeypatch.setenv("BATCH_ASSETS_HASH_KEY", DEMO_HASH_KEY.decode())
    assert materialize_vendor(keyed, "acme_retail").success

    monkeypatch.delenv("BATCH_ASSETS_HASH_KEY")
    instance = dg.DagsterInstance.ephemeral()
    job = slice_defs(demo).resolve_job_def("process_vendor_files_job")
    selection = [dg.AssetKey(["vendor", "acme_retail", s]) for s in ("staged", "rejects", "outbound")]
    result = job.execute_in_process(partition_key=DAY, asset_selection=selection, instance=instance)

    assert result.success
    assert any("public demo key" in entry.user_message for entry in instance.all_logs(result.run_id))
    outbound = f"outbound/acme_retail/{DAY}/"
    want, got = ({o.key: s.read_bytes(o.key) for o in s.list(outbound) if o.key.endswith(".csv")} for s in stores)
    assert got and got == want


def test_a_day_with_no_files_warns_that_nothing_arrived(local_settings) -> None:
    result = materialize_vendor(local_settings, "hooli_ads")
    assert result.success
    assert not checks_of(result)["inbound_files_arrived"].passed
