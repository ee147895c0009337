"""A vendor's day over a real file store: stage every inbound file, deliver outbound, rerun safely."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import batch_assets.lib.formats as formats
from batch_assets.lib.demo_data import GeneratedFile, file_name_for, write_vendor_file
from batch_assets.lib.engine import check_spec_sql, dead_letters, layout
from batch_assets.lib.engine.vendor_day import EngineOptions, StageError, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore, LocalFolderStore, S3Store
from batch_assets_tests.conftest import VENDORS_DIR
from batch_assets_tests.s3_server import S3Bucket, s3_bucket, s3_endpoint  # noqa: F401

DAY = "2026-03-02"
HASH_ENV = "BATCH_ASSETS_HASH_KEY"
KEYS = {HASH_ENV: b"vendor-day-test-key"}
OPTIONS = EngineOptions(chunk_size=64, threads=1)
DEMO_VENDORS = sorted(path.stem for path in VENDORS_DIR.glob("*.yaml"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "local":
        return LocalFolderStore(tmp_path / "store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket.client, bucket.name, prefix="landing/")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "store")


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route the process's temp files to a folder of this test, so leftovers can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def drop(store: FileStore, spec: VendorSpec, name: str, data: bytes) -> str:
    """Put a file where the vendor drops it; return its key."""
    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{name}"
    with store.publish(key) as path:
        path.write_bytes(data)
    return key


Generate = Callable[[VendorSpec, int, int], tuple[GeneratedFile, bytes]]


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Generate:
    """Demo files by (vendor, number, size), generated once per module: the generator is slow."""
    made: dict[tuple[str, int, int], tuple[GeneratedFile, bytes]] = {}

    def generated(spec: VendorSpec, n: int, records: int) -> tuple[GeneratedFile, bytes]:
        if (spec.vendor_id, n, records) not in made:
            path = tmp_path_factory.mktemp("generated") / file_name_for(spec, DAY, n)
            info = write_vendor_file(spec, path, records, invalid_share=0.1, seed=n)
            made[spec.vendor_id, n, records] = info, path.read_bytes()
        return made[spec.vendor_id, n, records]

    return generated


def drop_generated(store: FileStore, spec: VendorSpec, generate: Generate, n: int, records: int = 120) -> GeneratedFile:
    generated, data = generate(spec, n, records)
    drop(store, spec, generated.file_name, data)
    return generated


def contents(store: FileStore, *areas: str, vendor_id: str) -> dict[str, bytes]:
    """Every object of the vendor's day in ``areas``, with its bytes."""
    found = {}
    for area in areas:
        for info in store.list(layout.day_prefix(area, vendor_id, DAY)):
            found[info.key] = store.read_bytes(info.key)
    return found


def outputs(store: FileStore, vendor_id: str) -> dict[str, bytes]:
    return contents(store, layout.STAGED, layout.REJECTS, layout.OUTBOUND, vendor_id=vendor_id)


def read_records(store: FileStore, key: str, fmt: formats.Format, fields: list[str], tmp_path: Path) -> list[dict]:
    local = Path(tempfile.mkdtemp(dir=tmp_path)) / key.rsplit("/", 1)[-1]
    store.download(key, local)
    with local.open("rb") as source:
        return [row for batch in formats.read_batches(fmt, source, fields, 1000) for row in batch.to_pylist()]


def read_staged(store: FileStore, key: str, tmp_path: Path) -> list[dict]:
    local = Path(tempfile.mkdtemp(dir=tmp_path)) / "staged.parquet"
    store.download(key, local)
    return pq.read_table(local).to_pylist()


def unique_output_field(spec: VendorSpec) -> str:
    """The output name of the spec's unique field: it identifies a record in every file."""
    [unique] = [f.name for f in spec.schema_ if f.unique]
    return next((m.output_name for m in spec.mappings if m.source == unique), unique)


def files_on_disk(store: LocalFolderStore) -> list[str]:
    """Everything under the store's root, hidden temp files included."""
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())


def all_objects(store: FileStore) -> list[str]:
    """Every object the store holds, as the storage itself sees it (temp names included)."""
    if isinstance(store, LocalFolderStore):
        return files_on_disk(store)
    assert isinstance(store, S3Store)
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


# --- a whole day --------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor_id", DEMO_VENDORS)
def test_a_day_of_every_demo_vendor_is_staged_and_delivered_in_its_output_format(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path, vendor_id: str
) -> None:
    """The whole path a vendor's files take; every record ends in outbound or rejects, outbound
    files are named as the vendor expects and read back in their format, in inbound order."""
    spec = demo_specs[vendor_id]
    generated = [drop_generated(store, spec, generate, n) for n in (1, 2)]

    stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    delivery = deliver_vendor_day(store, spec, DAY, batch_size=50)

    names = [g.file_name for g in generated]
    assert [f.file_name for f in stage.files] == names
    assert stage.skipped == {} and stage.failed == {} and stage.removed == []
    assert stage.conserved
    assert [f.rows_in for f in stage.files] == [g.records for g in generated]
    assert [f.rows_rejected for f in stage.files] == [g.invalid for g in generated]
    assert sorted(contents(store, layout.STAGED, layout.REJECTS, vendor_id=vendor_id)) == sorted(
        [layout.staged_key(vendor_id, DAY, name) for name in names]
        + [layout.rejects_key(vendor_id, DAY, name) for name in names]
    )

    per_day = spec.output.granularity == "per_day"
    expected_keys = [layout.outbound_key(spec, DAY, None if per_day else name) for name in names]
    assert delivery.outbound_keys == sorted(set(expected_keys))
    assert [i.key for i in store.list(layout.day_prefix(layout.OUTBOUND, vendor_id, DAY))] == sorted(set(expected_keys))
    assert delivery.rows == stage.total("rows_out")

    ident = unique_output_field(spec)
    staged_ids = {
        name: [str(r[ident]) for r in read_staged(store, layout.staged_key(vendor_id, DAY, name), tmp_path)]
        for name in names
    }
    delivered = {
        key: read_records(store, key, spec.output.format, spec.output_fields, tmp_path)
        for key in delivery.outbound_keys
    }
    assert all(r[formats.PARSE_ERROR] is None for records in delivered.values() for r in records)
    delivered_ids = {key: [r[ident].strip() for r in records] for key, records in delivered.items()}
    if per_day:
        assert delivered_ids == {expected_keys[0]: staged_ids[names[0]] + staged_ids[names[1]]}
    else:
        assert delivered_ids == {expected_keys[i]: staged_ids[name] for i, name in enumerate(names)}


@pytest.mark.parametrize("vendor_id", ["acme_retail", "umbrella_health"], ids=["per_file", "per_day"])
def test_a_rerun_publishes_byte_identical_files_and_no_duplicates(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path, vendor_id: str
) -> None:
    """Runs are retried and re-materialized; a rerun must leave exactly what a clean run leaves, or
    vendors receive a day twice."""
    spec = demo_specs[vendor_id]
    for n in (1, 2):
        drop_generated(store, spec, generate, n)
    first_stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    first_delivery = deliver_vendor_day(store, spec, DAY)
    before = outputs(store, vendor_id)

    second_stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    second_delivery = deliver_vendor_day(store, spec, DAY)

    assert outputs(store, vendor_id) == before
    assert second_stage.removed == [] and second_delivery.removed == []
    assert second_delivery.rows == first_delivery.rows == first_stage.total("rows_out")
    assert second_stage.total("rows_rejected") == first_stage.total("rows_rejected")


def test_a_removed_inbound_file_takes_its_staged_rejects_and_outbound_files_with_it_on_rerun(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path
) -> None:
    """A vendor withdrawing a wrong file expects it gone from what we send back, not kept forever."""
    spec = demo_specs["acme_retail"]
    kept, withdrawn = (drop_generated(store, spec, generate, n) for n in (1, 2))
    stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    deliver_vendor_day(store, spec, DAY)
    kept_outputs = {
        key: data for key, data in outputs(store, spec.vendor_id).items() if kept.file_name.rsplit(".")[0] in key
    }

    store.delete(f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{withdrawn.file_name}")
    stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    delivery = deliver_vendor_day(store, spec, DAY)

    withdrawn_outputs = [
        layout.staged_key(spec.vendor_id, DAY, withdrawn.file_name),
        layout.rejects_key(spec.vendor_id, DAY, withdrawn.file_name),
    ]
    assert sorted(stage.removed) == sorted(withdrawn_outputs)
    assert delivery.removed == [layout.outbound_key(spec, DAY, withdrawn.file_name)]
    assert outputs(store, spec.vendor_id) == kept_outputs
    assert len(kept_outputs) == 3


def test_a_per_day_file_shrinks_when_an_inbound_file_is_removed_and_is_empty_without_any(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path
) -> None:
    """A per-day file is the day as it stands: an empty day still gets its (empty) file, so the
    vendor can tell 'nothing today' from 'not delivered yet'."""
    spec = demo_specs["umbrella_health"]
    first, second = (drop_generated(store, spec, generate, n) for n in (1, 2))
    stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    deliver_vendor_day(store, spec, DAY)
    inbound = layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)

    store.delete(inbound + second.file_name)
    stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    one_file = deliver_vendor_day(store, spec, DAY)
    store.delete(inbound + first.file_name)
    emptied = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    no_file = deliver_vendor_day(store, spec, DAY)

    [day_key] = one_file.outbound_keys
    assert one_file.rows == stage.files[0].rows_out
    assert no_file.outbound_keys == [day_key] and no_file.rows == 0
    assert read_records(store, day_key, spec.output.format, spec.output_fields, tmp_path) == []
    assert emptied.files == [] and contents(store, layout.STAGED, layout.REJECTS, vendor_id=spec.vendor_id) == {}


# --- files that do not go through ---------------------------------------------------------------


def test_an_unreadable_file_is_reported_and_publishes_nothing_while_the_others_go_through(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path
) -> None:
    """One vendor file cut short by a failed upload must not hold back the rest of the day, nor
    publish the half it could read; it moves to quarantine with its error, ready for a re-drive."""
    spec = demo_specs["globex_logistics"]
    good = drop_generated(store, spec, generate, 1)
    truncated = drop_generated(store, spec, generate, 2, records=300)
    stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    truncated_key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{truncated.file_name}"
    whole = store.read_bytes(truncated_key)
    drop(store, spec, truncated.file_name, whole[: len(whole) * 2 // 3])

    stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    delivery = deliver_vendor_day(store, spec, DAY)

    assert list(stage.failed) == [truncated_key]
    assert "JSON file is not valid or is truncated" in stage.failed[truncated_key]
    assert [f.file_name for f in stage.files] == [good.file_name]
    assert sorted(stage.removed) == [
        layout.rejects_key(spec.vendor_id, DAY, truncated.file_name),
        layout.staged_key(spec.vendor_id, DAY, truncated.file_name),
    ]
    assert sorted(contents(store, layout.STAGED, layout.REJECTS, vendor_id=spec.vendor_id)) == [
        layout.rejects_key(spec.vendor_id, DAY, good.file_name),
        layout.staged_key(spec.vendor_id, DAY, good.file_name),
    ]
    assert delivery.rows == good.records - good.invalid
    assert store.stat(truncated_key) is None
    assert stage.quarantined == {truncated_key: dead_letters.quarantine_key(truncated_key)}
    [letter] = dead_letters.list_dead_letters(store, spec.vendor_id)
    assert letter.inbound_key == truncated_key
    assert "JSON file is not valid or is truncated" in letter.error
    assert store.read_bytes(letter.key) == whole[: len(whole) * 2 // 3]

    dead_letters.redrive(store, letter)
    assert store.read_bytes(truncated_key) == whole[: len(whole) * 2 // 3]
    assert dead_letters.list_dead_letters(store) == []
    assert list(store.list(f"{layout.QUARANTINE}/")) == []


def test_temporary_and_foreign_file_names_are_skipped_with_the_reason(
    store: FileStore, demo_specs: dict[str, VendorSpec], generate: Generate, tmp_path: Path
) -> None:
    """A file still uploading must not be read half-written, and a stray file must not be fed to
    the vendor's parser; both are reported so an operator sees why nothing happened to them."""
    spec = demo_specs["acme_retail"]
    good = drop_generated(store, spec, generate, 1)
    inbound = layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)
    strays = {
        "orders_2026-03-02_002.csv.part": "upload still in progress (temporary file name)",
        "orders_2026-03-02_003.CSV.Uploading": "upload still in progress (temporary file name)",
        "README.txt": "file name does not match the vendor's pattern 'orders_*.csv'",
        "invoices_2026-03-02.csv": "file name does not match the vendor's pattern 'orders_*.csv'",
        "archive/orders_2026-03-01_001.csv": "expected inbound/<vendor_id>/<YYYY-MM-DD>/<file>",
    }
    for name in strays:
        drop(store, spec, name, b"order_id\nORD-00000001\n")

    stage = stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)

    assert [f.file_name for f in stage.files] == [good.file_name]
    assert sorted(stage.skipped) == sorted(inbound + name for name in strays)
    for name, reason in strays.items():
        assert reason in stage.skipped[inbound + name]
    assert sorted(contents(store, layout.STAGED, vendor_id=spec.vendor_id)) == [
        layout.staged_key(spec.vendor_id, DAY, good.file_name)
    ]


# --- crashes ------------------------------------------------------------------------------------


def test_a_crash_halfway_through_a_file_keeps_the_previous_outputs_and_leaves_no_temp_files(
    store: FileStore,
    demo_specs: dict[str, VendorSpec],
    generate: Generate,
    tmp_path: Path,
    private_tempdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker dies mid-file (a lost disk, an OOM kill); readers must keep seeing the last complete
    outputs, and nothing half-written may ever be listed or left behind."""
    spec = demo_specs["acme_retail"]
    for n in (1, 2):
        drop_generated(store, spec, generate, n, records=200)
    stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    deliver_vendor_day(store, spec, DAY)
    before = outputs(store, spec.vendor_id)
    objects_before = all_objects(store)
    real_read_batches = formats.read_batches
    calls = []

    def crashing_on_the_second_file(*args, **kwargs):
        calls.append(args)
        batches = real_read_batches(*args, **kwargs)
        yield next(batches)
        if len(calls) == 2:
            raise RuntimeError("worker lost its disk")
        yield from batches

    monkeypatch.setattr(formats, "read_batches", crashing_on_the_second_file)

    with pytest.raises(RuntimeError, match="worker lost its disk"):
        stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)

    assert len(calls) == 2
    assert outputs(store, spec.vendor_id) == before
    assert all_objects(store) == objects_before
    assert list(private_tempdir.iterdir()) == []


def test_a_business_rule_failing_on_some_rows_quarantines_the_file_and_publishes_nothing_of_it(
    local_store: LocalFolderStore,
    demo_specs: dict[str, VendorSpec],
    generate: Generate,
    tmp_path: Path,
    private_tempdir: Path,
) -> None:
    """A rule that only breaks on some data passes the spec check at load time; when it breaks, the
    file goes to quarantine with the error, and no partial output of it is ever published."""
    spec = demo_specs["acme_retail"]
    made = drop_generated(local_store, spec, generate, 1, records=200)
    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{made.file_name}"
    fragile = spec.model_copy(
        update={
            "business_rules": [
                *spec.business_rules,
                # order ids are random digits: about one in ten ends in 7, and its SKU is no number
                spec.business_rules[0].model_copy(
                    update={"expression": "CASE WHEN right(order_id, 1) = '7' THEN CAST(sku AS INTEGER) END"}
                ),
            ]
        }
    )

    assert check_spec_sql(fragile) is None
    stage = stage_vendor_day(local_store, fragile, DAY, keys=KEYS, options=OPTIONS)

    assert "ConversionException" in stage.failed[key]
    assert stage.files == []
    assert outputs(local_store, spec.vendor_id) == {}
    [letter] = dead_letters.list_dead_letters(local_store)
    assert letter.inbound_key == key and "ConversionException" in letter.error
    assert list(private_tempdir.iterdir()) == []


def test_small_files_share_queries_and_a_rule_failing_in_one_quarantines_that_file_alone(
    store: FileStore,
    demo_specs: dict[str, VendorSpec],
    generate: Generate,
    tmp_path: Path,
    shared_queries: list[int],
) -> None:
    """Files smaller than a chunk are transformed several to a query. When a business rule breaks on
    one record of one of them, that file alone is quarantined; the files it shared a query with are
    published byte for byte as in a clean run."""
    spec = demo_specs["acme_retail"]
    made = [drop_generated(store, spec, generate, n, records=30) for n in range(1, 5)]
    keys = [f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{m.file_name}" for m in made]
    stage_vendor_day(store, spec, DAY, keys=KEYS, options=OPTIONS)
    clean = outputs(store, spec.vendor_id)
    third_staged = [k for k in clean if k.startswith(f"{layout.STAGED}/") and made[2].file_name in k][0]
    local = tmp_path / "third.parquet"
    store.download(third_staged, local)
    victim = pq.read_table(local).column("order_id")[3].as_py()  # an accepted record of the third file
    fragile = spec.model_copy(
        update={
            "business_rules": [
                *spec.business_rules,
                # the same SKUs, except that the victim's SKU is cast to a number, and it is none
                spec.business_rules[1].model_copy(
                    update={
                        "expression": f"CASE WHEN order_id = '{victim}' THEN CAST(CAST(sku AS INTEGER) AS VARCHAR) "
                        "ELSE sku END"
                    }
                ),
            ]
        }
    )
    stage = stage_vendor_day(store, fragile, DAY, keys=KEYS, options=OPTIONS)

    assert shared_queries[:2] == [2, 2]  # 4 files of 30 records, 64 to a chunk: two shared queries
    assert list(stage.failed) == [keys[2]] and "ConversionException" in stage.failed[keys[2]]
    assert [f.source_key for f in stage.files] == [keys[0], keys[1], keys[3]]
    after = outputs(store, spec.vendor_id)
    assert after == {k: v for k, v in clean.items() if made[2].file_name not in k}
    [letter] = dead_letters.list_dead_letters(store)
    assert letter.inbound_key == keys[2]


class FailingPublishStore(LocalFolderStore):
    """A store whose publishing of staged files fails, as a full disk or a lost bucket would."""

    def publish(self, key: str):
        if key.startswith(f"{layout.STAGED}/"):
            raise OSError("No space left on device")
        return super().publish(key)


def test_a_storage_failure_stops_the_day_naming_the_file_and_keeps_inbound_and_previous_outputs(
    tmp_path: Path, demo_specs: dict[str, VendorSpec], generate: Generate
) -> None:
    """Not the file's fault: it must not be quarantined; the run fails (and can be retried) with
    the vendor and file named, and the outputs of the last good run stay as they were."""
    spec = demo_specs["acme_retail"]
    good_store = LocalFolderStore(tmp_path / "store")
    made = drop_generated(good_store, spec, generate, 1, records=100)
    stage_vendor_day(good_store, spec, DAY, keys=KEYS, options=OPTIONS)
    before = outputs(good_store, spec.vendor_id)

    failing = FailingPublishStore(tmp_path / "store")
    with pytest.raises(StageError, match=r"acme_retail: inbound/acme_retail/.*No space left") as raised:
        stage_vendor_day(failing, spec, DAY, keys=KEYS, options=OPTIONS)
    assert isinstance(raised.value.__cause__, OSError)

    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{made.file_name}"
    assert good_store.stat(key) is not None
    assert outputs(good_store, spec.vendor_id) == before
    assert dead_letters.list_dead_letters(good_store) == []
