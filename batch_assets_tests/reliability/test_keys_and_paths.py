"""Keys and paths: hostile names dropped into inbound are refused with a reason, never followed.

A vendor controls the names of the files it drops (and, over SFTP, folders and links). Names with
``..``, empty or absolute segments, control characters, invisible Unicode (bidi overrides,
zero-width marks, line separators), bytes that are not UTF-8, and vendor folders without a spec
must be passed over by the arrival sensor and by the vendor day with the reason shown, and no
output may ever be written outside ``<area>/<vendor>/<day>/`` of a vendor that has a spec. After
processing, the whole store (every file on disk, every object in the bucket) is checked.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from pathlib import Path

import dagster as dg
import pytest

from batch_assets.defs.resources import build_resources
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.vendor_day import EngineOptions, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore, LocalFolderStore, S3Store, UnsafeKeyError, safe_key
from batch_assets_tests.conftest import VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import slice_defs
from batch_assets_tests.reliability.support import AREAS, record_figures
from batch_assets_tests.s3_server import S3Bucket

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
KEYS = {"BATCH_ASSETS_HASH_KEY": b"keys-and-paths"}
OPTIONS = EngineOptions(chunk_size=50, threads=1)
DAY_FOLDER = f"inbound/acme_retail/{TODAY}/"

# Names a vendor can give a file in its day folder, and what the refusal says.
HOSTILE_NAMES: dict[str, str] = {
    "orders_a\nb.csv": "control character",
    "orders_\r.csv": "control character",
    "orders_\x01.csv": "control character",
    "orders_\x1b[31mred.csv": "control character",
    "orders_\x7f.csv": "control character",
    "orders_1\u202evsc.csv": "invisible formatting character U+202E",
    "orders_\u200b1.csv": "invisible formatting character U+200B",
    "orders_\ufeff1.csv": "invisible formatting character U+FEFF",
    "orders_\u20281.csv": "line separator U+2028",
    "orders_\u20291.csv": "paragraph separator U+2029",
    "orders_a\\b.csv": "backslash",
}
# Keys that only an object store can hold (a file system has no such names).
S3_ONLY: dict[str, str] = {
    f"{DAY_FOLDER}orders_\x00.csv": "control character",
    f"{DAY_FOLDER}../../../outbound/acme_retail/{TODAY}/orders_x.csv": "'..' segment",
    f"{DAY_FOLDER}./orders_x.csv": "'.' segment",
    f"{DAY_FOLDER}/etc/passwd": "empty segment",
    f"{DAY_FOLDER}orders_x.csv/": "",  # a console's folder marker: not a file at all
}
# Vendor folders with no spec: reported as strays, never processed.
STRAY_VENDORS = ["nobody", "ACME_RETAIL", "acme_retail\u202e", ".acme_retail"]


def hostile_keys() -> dict[str, str]:
    return {f"{DAY_FOLDER}{name}": why for name, why in HOSTILE_NAMES.items()}


def tick(settings: Settings, cursor: str | None = None) -> dg.SensorResult:
    defs = slice_defs(settings)
    sensor = defs.resolve_sensor_def("vendor_inbound_arrival_sensor")
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), cursor=cursor, resources=build_resources(settings), definitions=defs
    )
    return sensor(context)


def legit_file(spec: VendorSpec, folder: Path) -> tuple[str, bytes]:
    name = file_name_for(spec, TODAY, 1)
    write_vendor_file(spec, folder / name, 30, invalid_share=0.1, seed=3)
    return f"{DAY_FOLDER}{name}", (folder / name).read_bytes()


def process_every_vendor(store: FileStore, specs: dict[str, VendorSpec]) -> dict[str, dict[str, str]]:
    """Stage and deliver TODAY for every vendor with a spec; return what each passed over."""
    skipped = {}
    for spec in specs.values():
        stage = stage_vendor_day(store, spec, TODAY, keys=KEYS, options=OPTIONS)
        assert stage.failed == {}, stage.failed
        deliver_vendor_day(store, spec, TODAY)
        skipped[spec.vendor_id] = stage.skipped
    return skipped


def assert_outputs_stay_in_their_vendor_prefix(written: list[str], specs: dict[str, VendorSpec]) -> int:
    """Every key that the pipeline wrote is a safe key under ``<area>/<known vendor>/TODAY/``."""
    for key in written:
        assert safe_key(key) == key
        area, vendor, day, _name = key.split("/")
        assert area in AREAS and area != layout.INBOUND, key
        assert vendor in specs and day == TODAY, key
    return len(written)


def expected_outputs(specs: dict[str, VendorSpec]) -> int:
    """The legit file's staged, rejects and outbound files, and the (empty) day file of each per-day vendor."""
    return 3 + sum(spec.output.granularity == "per_day" for spec in specs.values() if spec.vendor_id != "acme_retail")


def visible(text: str) -> bool:
    """No control or invisible character: what a log line or a UI shows is what is there."""
    return not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in text)


def refuse_everywhere(store: FileStore, key: str, scratch: Path) -> None:
    with pytest.raises(UnsafeKeyError), store.publish(key) as path:
        path.write_bytes(b"x")
    for call in (store.download, store.stat, store.read_bytes, store.delete):
        with pytest.raises(UnsafeKeyError):
            call(key, scratch / "copy") if call == store.download else call(key)


def test_the_store_refuses_a_hostile_key_in_every_method(tmp_path: Path) -> None:
    """The storage layer is the last line: whatever reaches it with a hostile key is refused."""
    store = LocalFolderStore(tmp_path / "store")
    keys = [*hostile_keys(), *(k for k in S3_ONLY if not k.endswith("/")), "/etc/passwd", "../outside.csv"]
    for key in keys:
        refuse_everywhere(store, key, tmp_path)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*"))
    assert not (tmp_path / "outside.csv").exists()


def test_hostile_names_in_a_local_inbound_folder_are_passed_over_with_reasons_and_nothing_escapes(
    tmp_path: Path, local_settings: Settings, demo_specs: dict[str, VendorSpec], record_property
) -> None:
    """File names are vendor input: '..', absolute paths, control characters, unknown vendors must not steer a write."""
    root = local_settings.data_dir
    day_folder = root / DAY_FOLDER
    day_folder.mkdir(parents=True)
    for name in HOSTILE_NAMES:
        (day_folder / name).write_bytes(b"order_id\nORD-00000001\n")
    with open(os.path.join(os.fsencode(day_folder), b"orders_\xff.csv"), "wb") as f:
        f.write(b"order_id\nORD-00000002\n")

    first = tick(local_settings)
    assert first.run_requests == []
    message = first.skip_reason.skip_message
    assert f"Passed over {len(HOSTILE_NAMES) + 1}:" in message
    assert visible(message), message

    # Links a vendor can make over SFTP, to a file and to a day folder outside the store; vendor
    # folders without a spec.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "orders_secret.csv").write_text("order_id\nORD-66666666\n")
    (day_folder / "orders_link.csv").symlink_to(outside / "orders_secret.csv")
    yesterday = (dt.date.fromisoformat(TODAY) - dt.timedelta(days=1)).isoformat()
    (root / "inbound" / "acme_retail" / yesterday).symlink_to(outside, target_is_directory=True)
    for vendor in STRAY_VENDORS:
        (root / "inbound" / vendor / TODAY).mkdir(parents=True)
        (root / "inbound" / vendor / TODAY / "orders_1.csv").write_bytes(b"order_id\nORD-00000003\n")
    outside_before = {p: p.read_bytes() for p in outside.rglob("*")}

    second = tick(local_settings, first.cursor)
    assert second.run_requests == []
    # Links out of the store are not listed at all; a hidden folder is the local store's own.
    strays = [v for v in STRAY_VENDORS if not v.startswith(".")]
    assert f"Passed over {len(HOSTILE_NAMES) + 1 + len(strays)}:" in second.skip_reason.skip_message
    for vendor in strays:
        assert f"no spec for vendor '{vendor}'" in second.skip_reason.skip_message

    spec = demo_specs["acme_retail"]
    legit_key, data = legit_file(spec, tmp_path)
    (root / legit_key).write_bytes(data)
    third = tick(local_settings, second.cursor)
    (request,) = third.run_requests
    assert request.tags["vendor"] == "acme_retail"
    (reported,) = [e for e in third.asset_events if e.asset_key.path[1] == "acme_retail"]
    assert reported.metadata["new_files"].data == [legit_key]

    store = LocalFolderStore(root)
    skipped = process_every_vendor(store, demo_specs)
    for key, why in hostile_keys().items():
        assert why in skipped["acme_retail"][layout.printable(key)], key
    assert "not valid UTF-8" in skipped["acme_retail"][ascii(f"{DAY_FOLDER}orders_\udcff.csv")]
    assert all(visible(key) and visible(why) for key, why in skipped["acme_retail"].items())

    on_disk = []
    for folder, _dirs, files in os.walk(root):
        on_disk += [Path(folder, f).relative_to(root).as_posix() for f in files]
    assert not [p for p in on_disk if p.rsplit("/", 1)[-1].startswith(".")], "temp files left behind"
    written = [p for p in on_disk if not p.startswith(f"{layout.INBOUND}/")]
    assert assert_outputs_stay_in_their_vendor_prefix(written, demo_specs) == expected_outputs(demo_specs)
    assert not any(b"66666666" in (root / p).read_bytes() for p in written)
    assert {p: p.read_bytes() for p in outside.rglob("*")} == outside_before
    record_figures(
        record_property, "keys local", hostile_names=len(HOSTILE_NAMES) + 3 + len(STRAY_VENDORS), outputs=len(written)
    )


@pytest.mark.s3
def test_hostile_keys_in_an_s3_inbound_prefix_are_passed_over_with_reasons_and_nothing_escapes(
    tmp_path: Path, s3_bucket: S3Bucket, demo_specs: dict[str, VendorSpec], record_property
) -> None:
    """S3 keys may hold anything a local name cannot ('//', '..' segments, NUL): the same refusal, on the real API."""
    settings = Settings(
        vendors_dir=VENDORS_DIR,
        storage="s3",
        s3_bucket=s3_bucket.name,
        s3_prefix="exchange",
        s3_endpoint_url=s3_bucket.endpoint_url,
        arrival_settle_seconds=0,
    )
    client, bucket = s3_bucket.client, s3_bucket.name
    try:
        check_hostile_s3_keys(settings, client, bucket, tmp_path, demo_specs, record_property)
    finally:
        # One DELETE per key: a batch delete cannot carry a NUL in its XML body (the fixture's cleanup).
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])


def check_hostile_s3_keys(
    settings: Settings, client, bucket: str, tmp_path: Path, demo_specs: dict[str, VendorSpec], record_property
) -> None:
    reasons = {**hostile_keys(), **S3_ONLY}
    reasons.pop(f"{DAY_FOLDER}orders_a\nb.csv")  # the S3 API (moto) refuses a newline in a key
    for key in reasons:
        client.put_object(Bucket=bucket, Key=f"exchange/{key}", Body=b"order_id\nORD-00000001\n")
    in_day = [k for k in reasons if not k.endswith("/")]  # a key ending in '/' is a console's folder marker

    first = tick(settings)
    assert first.run_requests == []
    assert f"Passed over {len(in_day)}:" in first.skip_reason.skip_message
    assert visible(first.skip_reason.skip_message), first.skip_reason.skip_message

    for vendor in STRAY_VENDORS:
        client.put_object(Bucket=bucket, Key=f"exchange/inbound/{vendor}/{TODAY}/orders_1.csv", Body=b"x\n")
    # Outside the store's prefix altogether: never listed, never touched.
    outside = {f"/exchange/{DAY_FOLDER}orders_abs.csv", f"exchange//{DAY_FOLDER}orders_x.csv", "other/orders_1.csv"}
    for key in outside:
        client.put_object(Bucket=bucket, Key=key, Body=b"order_id\nORD-66666666\n")
    second = tick(settings, first.cursor)
    assert f"Passed over {len(in_day) + len(STRAY_VENDORS)}:" in second.skip_reason.skip_message

    spec = demo_specs["acme_retail"]
    legit_key, data = legit_file(spec, tmp_path)
    client.put_object(Bucket=bucket, Key=f"exchange/{legit_key}", Body=data)
    third = tick(settings, second.cursor)
    (request,) = third.run_requests
    (reported,) = [e for e in third.asset_events if e.asset_key.path[1] == "acme_retail"]
    assert reported.metadata["new_files"].data == [legit_key]

    store = S3Store(client, bucket, "exchange")
    skipped = process_every_vendor(store, demo_specs)
    for key in in_day:
        assert reasons[key] in skipped["acme_retail"][layout.printable(key)], key
    assert all(visible(key) and visible(why) for key, why in skipped["acme_retail"].items())

    every_key = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    ]
    dropped = {f"exchange/{k}" for k in [*reasons, legit_key]} | outside
    dropped |= {f"exchange/inbound/{vendor}/{TODAY}/orders_1.csv" for vendor in STRAY_VENDORS}
    assert dropped <= set(every_key)
    written = [k for k in every_key if k not in dropped]
    assert all(k.startswith("exchange/") for k in written)
    written = [k.removeprefix("exchange/") for k in written]
    assert assert_outputs_stay_in_their_vendor_prefix(written, demo_specs) == expected_outputs(demo_specs)
    assert not any(b"66666666" in store.read_bytes(k) for k in written)
    record_figures(
        record_property, "keys s3", hostile_keys=len(reasons) + len(outside) + len(STRAY_VENDORS), outputs=len(written)
    )
