"""Arrivals in odd orders, through the real sensor and real runs on a real Dagster instance.

The harness does what the daemon does: evaluate the arrival sensor with the stored cursor, skip a
run request whose run key already has a run on the instance, execute the others
(``process_vendor_files_job`` in-process, with the request's partition, selection and tags), and
store the cursor only once the tick is done. Around it, files land in the same second, many at
once, twice with the same bytes, are replaced, deleted before their run, or uploaded with an old
modification time; the sensor is restarted mid-tick. Every file version must start exactly one run
(counted by run keys and by the versions each run reports), none is missed, and the day's staged
outputs hold exactly the records of the files as they are (counted per file).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from batch_assets.defs.resources import FileStoreResource, build_resources
from batch_assets.defs.vendor_files.definitions import build_vendor_exchange
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.vendor_day import stage_vendor_day
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore, LocalFolderStore, ObjectInfo, S3Store
from batch_assets_tests.reliability.support import record_figures
from batch_assets_tests.s3_server import S3Bucket

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
SENSOR = "vendor_inbound_arrival_sensor"
EXCHANGE = (layout.STAGED, layout.REJECTS, layout.OUTBOUND)
VERSION_LOG = re.compile(r"^(?P<name>\S+): [\d,]+ bytes, version (?P<version>\S+)$")


@dataclass
class Run:
    run_key: str
    vendor: str
    versions: dict[str, str]  # inbound file name -> version, as the run's log reports them


@dataclass
class Daemon:
    """The sensor daemon's loop, in-process: tick, deduplicate run keys, run, then store the cursor."""

    settings: Settings
    instance: dg.DagsterInstance
    file_store: FileStoreResource | None = None  # default: the one the settings pick
    cursor: str | None = None
    runs: list[Run] = field(default_factory=list)
    requests: int = 0
    deduplicated: int = 0

    def __post_init__(self) -> None:
        self.resources = build_resources(self.settings)
        if self.file_store is not None:
            self.resources["file_store"] = self.file_store
        self.defs = dg.Definitions.merge(build_vendor_exchange(self.settings), dg.Definitions(resources=self.resources))
        self.sensor = self.defs.resolve_sensor_def(SENSOR)
        self.job = self.defs.resolve_job_def("process_vendor_files_job")

    def evaluate(self, cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=self.resources, definitions=self.defs
        )
        return self.sensor(context)

    def launch(self, result: dg.SensorResult, before_each_run=lambda request: None) -> list[Run]:
        launched = []
        for request in result.run_requests:
            self.requests += 1
            tags = {"dagster/run_key": request.run_key, "dagster/sensor_name": SENSOR}
            if self.instance.get_runs(filters=dg.RunsFilter(tags=tags)):
                self.deduplicated += 1
                continue
            before_each_run(request)
            # The exchange assets of the request; the daily PDF report downstream is not under test here.
            selection = [k for k in request.asset_selection if k.path[-1] in EXCHANGE]
            outcome = self.job.execute_in_process(
                partition_key=request.partition_key,
                asset_selection=selection,
                instance=self.instance,
                tags={**request.tags, **tags},
            )
            assert outcome.success
            versions = {}
            for entry in self.instance.all_logs(outcome.run_id):
                if match := VERSION_LOG.match(entry.user_message or ""):
                    versions[match["name"]] = match["version"]
            launched.append(Run(request.run_key, request.tags["vendor"], versions))
        self.runs += launched
        return launched

    def tick(self, before_each_run=lambda request: None) -> list[Run]:
        result = self.evaluate(self.cursor)
        launched = self.launch(result, before_each_run)
        self.cursor = result.cursor  # stored once the tick's runs are launched, as the daemon does
        return launched


class CoarseClockStore(LocalFolderStore):
    """A local store whose listing has a coarse clock, like S3's whole-second LastModified; here whole
    hours, so that every file of a test lands in the same "second" whatever the machine's speed."""

    def __init__(self, root: Path, seconds: int) -> None:
        super().__init__(root)
        self.seconds = seconds

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        for info in super().list(prefix, start_after=start_after):
            stamp = info.modified.timestamp()
            yield replace(info, modified=dt.datetime.fromtimestamp(stamp - stamp % self.seconds, tz=dt.UTC))


class CoarseClockFileStore(FileStoreResource):
    clock_seconds: int = 3600

    def store(self) -> FileStore:
        return CoarseClockStore(Path(self.root), self.clock_seconds)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real instance (run and event storage in memory): runs, tags and run keys as the daemon sees them."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def settings(local_settings: Settings) -> Settings:
    return local_settings


def drop(store: FileStore, spec: VendorSpec, n: int, records: int = 20, seed: int | None = None) -> str:
    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, TODAY)}{file_name_for(spec, TODAY, n)}"
    with store.publish(key) as path:
        write_vendor_file(spec, path, records, invalid_share=0.1, seed=n if seed is None else seed)
    return key


def set_mtime(store: LocalFolderStore, key: str, ns: int) -> None:
    os.utime(store.root / key, ns=(ns, ns))


def staged_rows(store: FileStore, spec: VendorSpec, scratch: Path) -> dict[str, int]:
    """Records staged per inbound file name."""
    found = {}
    for obj in store.list(layout.day_prefix(layout.STAGED, spec.vendor_id, TODAY)):
        local = scratch / "staged.parquet"
        store.download(obj.key, local)
        found[obj.key.rsplit("/", 1)[-1].removesuffix(".parquet")] = pq.ParquetFile(local).metadata.num_rows
    return found


def valid_rows(store: FileStore, spec: VendorSpec, scratch: Path) -> dict[str, int]:
    """What staging the day's inbound files as they are now yields, per file (a reference run)."""
    reference = LocalFolderStore(scratch / f"reference-{time.monotonic_ns()}")
    for obj in store.list(layout.day_prefix(layout.INBOUND, spec.vendor_id, TODAY)):
        with reference.publish(obj.key) as path:
            store.download(obj.key, path)
    stage = stage_vendor_day(reference, spec, TODAY, keys={"BATCH_ASSETS_HASH_KEY": b"x"})
    return {f.file_name: f.rows_out for f in stage.files}


def versions_now(store: FileStore, spec: VendorSpec) -> dict[str, str]:
    return {
        o.key.rsplit("/", 1)[-1]: o.version
        for o in store.list(layout.day_prefix(layout.INBOUND, spec.vendor_id, TODAY))
    }


def idle_runs(daemon: Daemon) -> int:
    """Runs that read no (file, version) an earlier run had not read already: duplicated work."""
    seen: set[tuple[str, str, str]] = set()
    idle = 0
    for run in daemon.runs:
        read = {(run.vendor, *pair) for pair in run.versions.items()}
        idle += not (read - seen)
        seen |= read
    return idle


def assert_day_is_exact(store: FileStore, spec: VendorSpec, daemon: Daemon, scratch: Path) -> None:
    """None missed: every current version was read by a run; the staged files hold exactly its records."""
    current = versions_now(store, spec)
    read = {pair for run in daemon.runs if run.vendor == spec.vendor_id for pair in run.versions.items()}
    assert set(current.items()) <= read, f"never processed: {set(current.items()) - read}"
    assert staged_rows(store, spec, scratch) == valid_rows(store, spec, scratch)
    keys = [r.run_key for r in daemon.runs]
    assert len(keys) == len(set(keys)), "a run key ran twice"


@pytest.mark.parametrize("backend", ["coarse-clock", pytest.param("s3", marks=pytest.mark.s3)])
def test_many_files_in_one_tick_and_in_the_same_second_each_start_exactly_one_run(
    backend: str,
    settings: Settings,
    instance: dg.DagsterInstance,
    demo_specs: dict[str, VendorSpec],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    record_property,
) -> None:
    """Listing clocks are coarse (S3: whole seconds): files that share the watermark's second, and
    files that sort before the ones already seen, must still each be picked up exactly once."""
    settings, store, file_store = on_backend(backend, settings, request)
    daemon = Daemon(settings, instance, file_store)
    vendors = [demo_specs[v] for v in ("acme_retail", "hooli_ads")]
    keys = [drop(store, spec, n) for spec in vendors for n in (2, 3, 5)]
    first = daemon.tick()
    assert sorted(r.vendor for r in first) == sorted(s.vendor_id for s in vendors)
    assert daemon.tick() == []

    acme = demo_specs["acme_retail"]
    late = [drop(store, acme, n) for n in (1, 4)]  # same clock second (coarse clock), sorting around the others
    (second,) = daemon.tick()
    assert set(second.versions) == {k.rsplit("/", 1)[-1] for k in [*keys[:3], *late]}
    assert daemon.tick() == []
    assert idle_runs(daemon) == 0
    for spec in vendors:
        assert_day_is_exact(store, spec, daemon, tmp_path)
    ties = len(keys) + len(late) - len({o.modified for o in store.list("inbound/")})
    record_figures(
        record_property,
        f"arrivals same second {backend}",
        files=len(keys) + len(late),
        runs=len(daemon.runs),
        ties=ties,
    )


def on_backend(
    backend: str, settings: Settings, request: pytest.FixtureRequest
) -> tuple[Settings, FileStore, FileStoreResource | None]:
    if backend == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        settings = settings.model_copy(
            update={"storage": "s3", "s3_bucket": bucket.name, "s3_prefix": "x", "s3_endpoint_url": bucket.endpoint_url}
        )
        return settings, S3Store(bucket.client, bucket.name, "x"), None
    if backend == "coarse-clock":
        resource = CoarseClockFileStore(root=str(settings.data_dir))
        return settings, resource.store(), resource
    return settings, LocalFolderStore(settings.data_dir), None


def test_a_file_uploaded_with_an_old_modification_time_is_not_missed(
    settings: Settings, instance: dg.DagsterInstance, demo_specs: dict[str, VendorSpec], tmp_path: Path
) -> None:
    """``sftp put -p``, ``rsync -t`` and ``cp -p`` keep the sender's modification time, which can be
    hours older than the sensor's watermark: the file is new here all the same."""
    store = LocalFolderStore(settings.data_dir)
    daemon = Daemon(settings, instance)
    acme = demo_specs["acme_retail"]
    drop(store, acme, 1)
    assert len(daemon.tick()) == 1
    preserved = drop(store, acme, 2)
    set_mtime(store, preserved, time.time_ns() - 3 * 3600 * 10**9)
    (run,) = daemon.tick()
    assert file_name_for(acme, TODAY, 2) in run.versions
    assert daemon.tick() == []
    assert_day_is_exact(store, acme, daemon, tmp_path)


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_the_same_bytes_uploaded_twice_run_once_per_version(
    backend: str,
    settings: Settings,
    instance: dg.DagsterInstance,
    demo_specs: dict[str, VendorSpec],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    record_property,
) -> None:
    """The same bytes again with the same version (the same second on S3; a copy keeping size and
    mtime on disk) are one version: one run. The same bytes uploaded later are a new version (on
    purpose: a re-drive or a re-send is new work): one more run, outputs replaced, never doubled."""
    settings, store, file_store = on_backend(backend, settings, request)
    daemon = Daemon(settings, instance, file_store)
    acme = demo_specs["acme_retail"]
    key = drop(store, acme, 1)
    data = store.read_bytes(key)
    first_version = store.stat(key).version
    if isinstance(store, S3Store):
        store.client.put_object(Bucket=store.bucket, Key=f"x/{key}", Body=data)  # again, at once
    else:
        mtime = (store.root / key).stat().st_mtime_ns
        (store.root / key).write_bytes(data)
        set_mtime(store, key, mtime)  # cp -p of the same file
    same_version = store.stat(key).version == first_version
    assert same_version or isinstance(store, S3Store)  # on S3 the second upload may fall in the next second
    assert len(daemon.tick()) == 1
    assert daemon.tick() == []

    time.sleep(1.1)  # the same bytes, a while later
    with store.publish(key) as path:
        path.write_bytes(data)
    assert store.stat(key).version != first_version
    assert len(daemon.tick()) == 1
    assert daemon.tick() == []
    assert len(daemon.runs) == 2
    assert_day_is_exact(store, acme, daemon, tmp_path)
    record_figures(
        record_property, f"arrivals duplicate upload {backend}", runs=len(daemon.runs), same_second=same_version
    )


def test_a_replaced_file_is_processed_in_its_new_version_and_its_outputs_replaced(
    settings: Settings, instance: dg.DagsterInstance, demo_specs: dict[str, VendorSpec], tmp_path: Path, record_property
) -> None:
    """Vendors resend a corrected file under its old name: the new version runs once and its outputs replace the old."""
    store = LocalFolderStore(settings.data_dir)
    daemon = Daemon(settings, instance)
    acme = demo_specs["acme_retail"]
    key = drop(store, acme, 1, records=30)
    name = key.rsplit("/", 1)[-1]
    drop(store, acme, 2)
    assert len(daemon.tick()) == 1
    drop(store, acme, 1, records=12, seed=99)  # the vendor sends a corrected file under the same name
    (run,) = daemon.tick()
    assert run.versions[name] == store.stat(key).version
    assert_day_is_exact(store, acme, daemon, tmp_path)
    assert idle_runs(daemon) == 0

    # Replaced again between the tick that saw it and its run: the run reads what is there, and the
    # replacement, a version the sensor has not seen, starts one more run that finds nothing new.
    drop(store, acme, 3)
    assert len(daemon.tick(before_each_run=lambda _request: drop(store, acme, 1, records=7, seed=98))) == 1
    assert len(daemon.tick()) == 1
    assert daemon.tick() == []
    assert idle_runs(daemon) == 1
    assert_day_is_exact(store, acme, daemon, tmp_path)
    assert staged_rows(store, acme, tmp_path)[name] == valid_rows(store, acme, tmp_path)[name]
    record_figures(record_property, "arrivals replaced file", runs=len(daemon.runs), idle_runs=idle_runs(daemon))


def test_a_file_deleted_before_its_run_is_not_processed_and_leaves_no_output(
    settings: Settings, instance: dg.DagsterInstance, demo_specs: dict[str, VendorSpec], tmp_path: Path
) -> None:
    """A vendor may withdraw a file before its run starts: nothing may be published from bytes that are gone."""
    store = LocalFolderStore(settings.data_dir)
    daemon = Daemon(settings, instance)
    acme = demo_specs["acme_retail"]
    kept = drop(store, acme, 1)
    gone = drop(store, acme, 2)
    (run,) = daemon.tick(before_each_run=lambda _request: store.delete(gone))
    assert list(run.versions) == [kept.rsplit("/", 1)[-1]]
    assert daemon.tick() == []
    assert_day_is_exact(store, acme, daemon, tmp_path)
    assert [o.key.rsplit("/", 1)[-1] for o in store.list(f"{layout.OUTBOUND}/") if not layout.is_report(o.key)] == [
        layout.outbound_key(acme, TODAY, kept.rsplit("/", 1)[-1]).rsplit("/", 1)[-1]
    ]


class VanishingStore(LocalFolderStore):
    """A file deleted by the vendor between the day's listing and its download."""

    def __init__(self, root: Path, vanishing: str) -> None:
        super().__init__(root)
        self.vanishing = vanishing

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        listed = list(super().list(prefix, start_after=start_after))
        if any(o.key == self.vanishing for o in listed):
            self.delete(self.vanishing)
        yield from listed


def test_a_file_deleted_between_listing_and_download_is_passed_over_and_its_old_outputs_removed(
    tmp_path: Path, demo_specs: dict[str, VendorSpec]
) -> None:
    """The listing and the download are not atomic: a file gone in between is no error, and its old outputs go too."""
    acme = demo_specs["acme_retail"]
    plain = LocalFolderStore(tmp_path / "store")
    kept = drop(plain, acme, 1)
    gone = drop(plain, acme, 2)
    keys = {"BATCH_ASSETS_HASH_KEY": b"x"}
    stage_vendor_day(plain, acme, TODAY, keys=keys)
    stage = stage_vendor_day(VanishingStore(tmp_path / "store", gone), acme, TODAY, keys=keys)
    assert [f.source_key for f in stage.files] == [kept]
    assert "deleted" in stage.skipped[gone]
    assert stage.failed == {}
    assert [o.key for o in plain.list(f"{layout.STAGED}/")] == [
        layout.staged_key("acme_retail", TODAY, kept.rsplit("/", 1)[-1])
    ]


def test_a_sensor_restarted_mid_tick_starts_no_run_twice(
    settings: Settings, instance: dg.DagsterInstance, demo_specs: dict[str, VendorSpec], tmp_path: Path, record_property
) -> None:
    """The daemon stores the cursor after the tick's runs are launched: a crash in between makes the
    next tick see the same files with the old cursor. Same versions, same run keys: the instance
    already has those runs, so nothing runs twice."""
    store = LocalFolderStore(settings.data_dir)
    daemon = Daemon(settings, instance)
    for spec in (demo_specs["acme_retail"], demo_specs["hooli_ads"]):
        drop(store, spec, 1)
        drop(store, spec, 2)
    old_cursor = daemon.cursor
    result = daemon.evaluate(old_cursor)
    assert len(daemon.launch(result)) == 2  # ...and the process dies before storing result.cursor
    for _restart in range(3):
        again = daemon.evaluate(old_cursor)
        assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in result.run_requests)
        assert daemon.launch(again) == []
    daemon.cursor = again.cursor
    assert daemon.tick() == []
    assert daemon.deduplicated == 6

    # A file that lands while the daemon is down joins its vendor's batch: that batch is new work
    # (a new run key), so the vendor day runs again with all its files; the other vendor stays put.
    daemon.cursor = old_cursor
    drop(store, demo_specs["acme_retail"], 3)
    (rerun,) = daemon.tick()
    assert rerun.vendor == "acme_retail" and len(rerun.versions) == 3
    assert daemon.tick() == []
    assert idle_runs(daemon) == 0
    for spec in (demo_specs["acme_retail"], demo_specs["hooli_ads"]):
        assert_day_is_exact(store, spec, daemon, tmp_path)
    record_figures(record_property, "arrivals sensor restart", runs=len(daemon.runs), deduplicated=daemon.deduplicated)
