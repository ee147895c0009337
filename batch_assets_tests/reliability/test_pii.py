"""PII: no clear value of a masked field, and not the hashing secret, appears in anything produced.

The demo vendors' day (files from ``demo_data.write_vendor_file``, some records invalid, plus a
broken file per format that ends in quarantine) runs through the real assets, one in-process run of
``process_vendor_files_job`` per vendor as the sensor would start it, on one Dagster instance. Then
every output is scanned for every clear value of every masked field of the input: outbound files,
staged Parquet (values and raw bytes), rejects, quarantine error records, the whole event log of
each run (messages, metadata, materialization previews, check results), the notification each run
sends (the operations slice's JSON-lines log), the sensor's answer and everything the runs printed.
The keyed-hash secret is scanned for too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

import dagster as dg
import pytest

from batch_assets.defs.operations.sensors import build_notification_sensors
from batch_assets.defs.resources import build_resources
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.formats import PARSE_ERROR, read_batches
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.specs.model import FieldType
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import slice_defs
from batch_assets_tests.reliability.support import parquet_rows, record_figures

DAY = dt.datetime.now(dt.UTC).date().isoformat()  # a day the arrival sensor watches
# Fixed, so hashes (and the test) are the same every run; distinctive, so a hit is a leak.
SECRET = "pii-scan-secret-4f1e9b27"
WORD = re.compile(r"[0-9A-Za-z]")
MIN_LENGTH = 4  # shorter values cannot be told from other text; the demo's masked values are longer


def clear_values(spec: VendorSpec, data: bytes) -> set[str]:
    """The clear text of every masked field in a raw input file (and ISO forms of dates)."""
    by_output = {m.output_name: m.source for m in spec.mappings} or {f.name: f.name for f in spec.schema_}
    fields = {f.name: f for f in spec.schema_}
    masked = [fields[by_output[name]] for name in spec.masking if name in by_output]
    values: set[str] = set()
    source_fields = [f.source_name for f in spec.schema_]
    for batch in read_batches(spec.input, io.BytesIO(data), source_fields, 10_000):
        for row in batch.to_pylist():
            if row[PARSE_ERROR] is not None:
                continue
            for field in masked:
                value = (row[field.source_name] or "").strip()
                if len(value) < MIN_LENGTH:
                    continue
                values.add(value)
                if field.type == FieldType.DATE and field.format:
                    with contextlib.suppress(ValueError):
                        values.add(dt.datetime.strptime(value, field.format).date().isoformat())
    return values


def strings_of(value: object) -> list[str]:
    """Every string (keys too) inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_of(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_of(v)]
    return []


def leaks(values: set[str], texts: dict[str, str]) -> list[tuple[str, str]]:
    """(where, value) for each clear value found as a whole token (not inside a longer word) in a text."""
    names = list(texts)
    combined = "\x00".join(texts.values())
    ends = list(accumulate(len(t) + 1 for t in texts.values()))
    found = []
    for value in values:
        at = combined.find(value)
        while at >= 0:
            before, after = combined[at - 1 : at] if at else "", combined[at + len(value) : at + len(value) + 1]
            if not WORD.match(before) and not WORD.match(after):
                found.append((names[bisect_right(ends, at)], value))
                break
            at = combined.find(value, at + 1)
    return found


def broken_copy(spec: VendorSpec, data: bytes) -> bytes:
    """The file cut short in a way its format cannot read past: it ends in quarantine."""
    kind = spec.input.kind
    if kind == "csv":
        return data + b'ORD-1,"C0000'  # a quote never closed
    if kind in ("json", "xml"):
        return data[: len(data) * 2 // 3]  # truncated inside a record
    return b"\x00" * 3 + data[: len(data) // 2]  # line formats read on: nothing to quarantine


def test_no_masked_value_and_no_secret_appears_in_any_output_or_log(
    tmp_path: Path,
    demo_specs: dict[str, VendorSpec],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    record_property,
) -> None:
    """Masking is only as good as the leakiest place a value lands: outputs, rejects, quarantine notes, run logs,
    metadata previews, sensor results and stdout/stderr are scanned for every clear value and the hash key."""
    monkeypatch.setenv("BATCH_ASSETS_HASH_KEY", SECRET)
    settings = Settings(vendors_dir=VENDORS_DIR, data_dir=tmp_path / "data", arrival_settle_seconds=0)
    store = LocalFolderStore(settings.data_dir)
    values: dict[str, set[str]] = {}
    for vendor_id, spec in demo_specs.items():
        values[vendor_id] = set()
        for n in (1, 2, 3):
            key = f"{layout.day_prefix(layout.INBOUND, vendor_id, DAY)}{file_name_for(spec, DAY, n)}"
            with store.publish(key) as path:
                write_vendor_file(spec, path, 150, invalid_share=0.15, seed=n)
            data = store.read_bytes(key)
            values[vendor_id] |= clear_values(spec, data)
            if n == 3:
                with store.publish(key) as path:
                    path.write_bytes(broken_copy(spec, data))
        assert len(values[vendor_id]) > 100, vendor_id

    defs = slice_defs(settings)
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("vendor_inbound_arrival_sensor")
    ticked = sensor(dg.build_sensor_context(instance=instance, resources=build_resources(settings), definitions=defs))
    job = defs.resolve_job_def("process_vendor_files_job")
    runs = {}
    # Notifications go to their JSON-lines log (no webhook) in a folder of their own, outside the store.
    notify_settings = settings.model_copy(update={"data_dir": tmp_path / "notifications"})
    notified = {s.name: s for s in build_notification_sensors(notify_settings)}["run_success_notification_sensor"]
    for vendor_id in demo_specs:
        selection = [dg.AssetKey(["vendor", vendor_id, s]) for s in ("staged", "rejects", "outbound")]
        result = job.execute_in_process(partition_key=DAY, asset_selection=selection, instance=instance)
        assert result.success
        runs[vendor_id] = result.run_id
        notified(
            dg.build_run_status_sensor_context(
                sensor_name=notified.name,
                dagster_event=result.get_run_success_event(),
                dagster_instance=instance,
                dagster_run=result.dagster_run,
            )
        )
    printed = capfd.readouterr()
    notifications = {
        f"notification {path.name}": path.read_text()
        for path in (tmp_path / "notifications").rglob("*")
        if path.is_file()
    }

    texts: dict[str, dict[str, str]] = {vendor_id: {} for vendor_id in demo_specs}
    scanned_bytes = 0
    for obj in store.list():
        vendor_id = obj.key.split("/")[1]
        spec = demo_specs[vendor_id]
        data = store.read_bytes(obj.key)
        if obj.key.startswith(f"{layout.INBOUND}/") or (
            obj.key.startswith(f"{layout.QUARANTINE}/") and not obj.key.endswith(".error.json")
        ):
            continue  # the vendor's own files, kept as sent (quarantine: until re-driven)
        scanned_bytes += len(data)
        text = data.decode("latin-1")
        if obj.key.startswith(f"{layout.STAGED}/"):
            text += "\n" + json.dumps(parquet_rows(data), default=str, ensure_ascii=False)
        elif obj.key.startswith(f"{layout.OUTBOUND}/"):
            text += "\n" + data.decode(getattr(spec.output.format, "encoding", "utf-8").replace("-sig", ""))
        else:
            text += "\n" + data.decode("utf-8")
        texts[vendor_id][obj.key] = text
    previews = 0
    for vendor_id, run_id in runs.items():
        for i, entry in enumerate(instance.all_logs(run_id)):
            serialized = dg.serialize_value(entry)
            # Every string of the event, unescaped: message, metadata (previews too), errors, tags.
            texts[vendor_id][f"run {run_id} event {i}"] = "\n".join(strings_of(json.loads(serialized)))
            scanned_bytes += len(serialized)
            previews += '"preview"' in serialized
    everything = {
        "sensor": dg.serialize_value(ticked.skip_reason) + repr(ticked.run_requests) + repr(ticked.asset_events),
        "stdout": printed.out,
        "stderr": printed.err,
        **notifications,
    }
    quarantined = [k for area in texts.values() for k in area if k.endswith(".error.json")]

    found = [(vendor_id, *hit) for vendor_id, v in values.items() for hit in leaks(v, texts[vendor_id] | everything)]
    secret_hits = [where for t in texts.values() for where, text in (t | everything).items() if SECRET in text]
    assert found == [], found[:10]
    assert secret_hits == []
    # The scan looked where the values would be: previews rendered, rejects written, files quarantined.
    assert previews >= len(demo_specs)
    assert any("*" in text for where, text in texts["umbrella_health"].items() if "preview" in text)
    assert len(quarantined) == 3  # the broken CSV, JSON and XML files
    assert sum(text.count('"run_id"') for text in notifications.values()) >= len(demo_specs), notifications
    assert any(k.startswith(f"{layout.REJECTS}/") for k in texts["acme_retail"])
    record_figures(
        record_property,
        "pii scan",
        clear_values=sum(len(v) for v in values.values()),
        places_scanned=sum(len(t) for t in texts.values()) + len(everything),
        bytes_scanned=scanned_bytes,
        hits=len(found) + len(secret_hits),
    )
