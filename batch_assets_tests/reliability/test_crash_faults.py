"""Crash faults: a vendor day SIGKILLed anywhere, then retried, ends exactly like a clean run.

The day (two vendors, several files, one broken file that goes to quarantine, a small chunk size so
a run is dozens of chunks) runs in a child process (crash_child.py) on a local folder store and on
the S3 store of the moto server. Each chain kills the child at a point drawn from a seeded RNG
(after the k-th chunk or publish it reports, plus a random delay), sometimes kills the retry too,
then lets a retry finish. Its outputs must equal a clean run's: the same keys, the same bytes, the
same parsed records (none lost, none duplicated). Throughout, a watcher thread reads every visible
output and fails the test if one is partial or differs from the clean run's. The same is then done to a
real Dagster run worker: a ``dagster asset materialize`` process (in-process executor) SIGKILLed while a
stage step writes chunks and while an outbound step publishes, then the partition rerun as a fresh run.

The instance database is the other thing a run can lose: a daemon run on a throwaway PostgreSQL
cluster started by the test, which the test crashes and restarts mid-run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy.exc

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.dead_letters import ERROR_SUFFIX
from batch_assets.lib.engine.vendor_day import EngineOptions, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore, LocalFolderStore, S3Store
from batch_assets_tests.conftest import HASH_KEY, REPO_ROOT, VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import slice_defs
from batch_assets_tests.reliability.support import (
    outbound_rows,
    parquet_rows,
    record_figures,
    rejects_rows,
    scaled,
)
from batch_assets_tests.reliability.throwaway_postgres import throwaway_postgres
from batch_assets_tests.s3_server import DUMMY_ENV, S3Bucket

DAY = "2026-03-02"
VENDORS = ["acme_retail", "globex_logistics"]
CHUNK = 25
RECORDS = scaled(250, 1500)  # per file: ten chunks and more
SMALL_RECORDS = 12  # per small file: two of them share one query (TransformSession.transform_files)
KILLS = scaled(7, 60)  # per store
SEED = int(os.environ.get("BATCH_ASSETS_CRASH_SEED", "20261122"))
KEYS = {"BATCH_ASSETS_HASH_KEY": HASH_KEY.encode()}
OUTPUT_AREAS = (layout.STAGED, layout.REJECTS, layout.OUTBOUND, layout.QUARANTINE)


# ------------------------------------------------------------------------------------------------ the day


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory, demo_specs: dict[str, VendorSpec]) -> dict[str, bytes]:
    """The day's inbound files, key -> bytes: per vendor two files of many chunks and two small ones
    that share a query, and a truncated one for quarantine."""
    folder = tmp_path_factory.mktemp("crash_inbound")
    files = {}
    for vendor_id in VENDORS:
        spec = demo_specs[vendor_id]
        for n, records in ((1, RECORDS), (2, RECORDS), (4, SMALL_RECORDS), (5, SMALL_RECORDS)):
            path = folder / file_name_for(spec, DAY, n)
            write_vendor_file(spec, path, records, invalid_share=0.1, seed=n)
            files[f"{layout.day_prefix(layout.INBOUND, vendor_id, DAY)}{path.name}"] = path.read_bytes()
    globex = demo_specs["globex_logistics"]
    broken = f"{layout.day_prefix(layout.INBOUND, globex.vendor_id, DAY)}{file_name_for(globex, DAY, 3)}"
    files[broken] = next(v for k, v in files.items() if "globex" in k)[:5000]  # truncated: quarantined
    return files


def seed_inbound(store: FileStore, inbound: dict[str, bytes]) -> None:
    for key, data in inbound.items():
        with store.publish(key) as path:
            path.write_bytes(data)


def normalized(key: str, data: bytes) -> bytes:
    """A quarantine error record without its time and input version (each chain uploads anew)."""
    if key.endswith(ERROR_SUFFIX):
        record = json.loads(data)
        record.pop("quarantined_at")
        record.pop("source_version")
        return json.dumps(record, sort_keys=True).encode()
    return data


def outputs(store: FileStore) -> dict[str, bytes]:
    return {o.key: normalized(o.key, store.read_bytes(o.key)) for area in OUTPUT_AREAS for o in store.list(f"{area}/")}


@dataclass
class Reference:
    files: dict[str, bytes]  # every output of a clean run, normalized
    events: list[str]  # the phases of the log lines a clean run prints, in order


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, inbound: dict[str, bytes], demo_specs) -> Reference:
    """A clean run, in this process: what every crashed-and-retried run must end as."""
    store = LocalFolderStore(tmp_path_factory.mktemp("crash_reference"))
    seed_inbound(store, inbound)
    events: list[str] = []
    options = EngineOptions(chunk_size=CHUNK, threads=1, progress_every=0.0)
    for vendor_id in VENDORS:
        spec = demo_specs[vendor_id]
        stage_vendor_day(store, spec, DAY, keys=KEYS, options=options, log=lambda _m: events.append("stage"))
        deliver_vendor_day(store, spec, DAY, batch_size=CHUNK, log=lambda _m: events.append("deliver"))
    files = outputs(store)
    assert any(k.startswith(f"{layout.QUARANTINE}/") for k in files)
    assert len(events) > 30
    return Reference(files, events)


# ------------------------------------------------------------------------------------------------ checks


def records(spec: VendorSpec, key: str, data: bytes) -> list[str]:
    """The records of an output file, each as one canonical string (for counting)."""
    if key.startswith(f"{layout.STAGED}/"):
        rows = parquet_rows(data)
    elif key.startswith(f"{layout.REJECTS}/"):
        rows = rejects_rows(data)
    elif key.startswith(f"{layout.OUTBOUND}/"):
        rows = outbound_rows(spec, data)
    else:
        return [key]
    return [json.dumps(row, sort_keys=True, default=str) for row in rows]


def compare(got: dict[str, bytes], want: dict[str, bytes], specs: dict[str, VendorSpec]) -> tuple[int, int]:
    """(records lost, records duplicated) of ``got`` against ``want``, file by file."""
    lost = duplicated = 0
    for key in got.keys() | want.keys():
        spec = specs[key.split("/")[1]]
        have = Counter(records(spec, key, got[key]) if key in got else [])
        should = Counter(records(spec, key, want[key]) if key in want else [])
        lost += (should - have).total()
        duplicated += (have - should).total()
    return lost, duplicated


@dataclass
class Watcher:
    """Reads every visible output, over and over, while runs are killed and retried."""

    open_store: Callable[[], FileStore]
    reference: Reference
    specs: dict[str, VendorSpec]
    pause: float = 0.0  # between sweeps: a busy watcher steals a core from a run worker that imports Dagster
    reads: int = 0
    problems: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self._watch, name="crash-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _watch(self) -> None:
        store = self.open_store()
        while not self._stop.is_set():
            for area in OUTPUT_AREAS:
                for obj in list(store.list(f"{area}/")):
                    try:
                        data = store.read_bytes(obj.key)
                    except FileNotFoundError:
                        continue  # replaced or removed between the listing and the read
                    self.reads += 1
                    try:
                        records(self.specs[obj.key.split("/")[1]], obj.key, data)  # parses completely, or raises
                        if normalized(obj.key, data) != self.reference.files.get(obj.key):
                            self.problems.append(f"{obj.key}: visible, but not the complete file of a clean run")
                    except Exception as exc:
                        self.problems.append(f"{obj.key}: visible but unreadable: {type(exc).__name__}: {exc}")
            self._stop.wait(self.pause)


# ------------------------------------------------------------------------------------------------ the child


def kill_unless_ended(process: subprocess.Popen, delay: float, kill: Callable[[], None]) -> bool:
    """``kill`` the process ``delay`` seconds from now and reap it; False if it had ended by then."""
    time.sleep(delay)
    if process.poll() is not None:
        return False
    kill()
    process.wait()
    return True


class Child:
    """crash_child.py running the day; its event lines are counted as they come."""

    def __init__(self, config: dict, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batch_assets_tests.reliability.crash_child", json.dumps(config)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[str] = []
        self.ready = threading.Event()
        self.finished = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("ready"):
                self.ready.set()
            elif line.startswith("event "):
                self.events.append(line.split(" ", 2)[1])
            elif line.startswith("done"):
                self.finished = True

    def kill_after(self, events: int, delay: float, timeout: float = 120) -> bool:
        """SIGKILL once ``events`` event lines are out, ``delay`` seconds later; False if it had ended."""
        deadline = time.monotonic() + timeout
        while len(self.events) < events and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        return kill_unless_ended(self.process, delay, lambda: self.process.send_signal(signal.SIGKILL))

    def finish(self, timeout: float = 300) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(timeout=10)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        assert self.process.returncode == 0 and self.finished, stderr[-3000:]


@dataclass
class Store:
    """Where a chain runs: the child's store config, and how the test opens the same store."""

    config: dict
    open: Callable[[], FileStore]
    clear: Callable[[], None]
    orphans: Callable[[], int]  # temp files a kill left behind (invisible to readers)


def child_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "BATCH_ASSETS_HASH_KEY": HASH_KEY,
        **DUMMY_ENV,
    }


def crash_chains(store: Store, inbound, reference: Reference, specs, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    env = child_env()
    config = {
        "store": store.config,
        "vendors": VENDORS,
        "day": DAY,
        "chunk_size": CHUNK,
        "vendors_dir": str(VENDORS_DIR),
    }
    kills: list[str] = []
    lost = duplicated = chains = orphans = late = 0
    with Watcher(store.open, reference, specs) as watcher:
        while len(kills) < KILLS:
            store.clear()
            seed_inbound(store.open(), inbound)
            chains += 1
            for _ in range(min(rng.choice([1, 1, 2, 3]), KILLS - len(kills))):
                child = Child(config, env)
                assert child.ready.wait(120), "the child did not start"
                # Kills alternate between staging and writing outbound files (a coin per kill left one
                # phase with a single kill in CI): after the event before a random event of the
                # phase, plus up to 150 ms (chunks take ~50 ms).
                phase = ("stage", "deliver")[(len(kills) + late) % 2]
                at = rng.choice([i for i, p in enumerate(reference.events) if p == phase])
                if child.kill_after(at, rng.uniform(0, 0.15)):
                    kills.append(phase)
                else:
                    late += 1  # the run was over: no fault, not counted
            retry = Child(config, env)
            retry.finish()
            got = outputs(store.open())
            more_lost, more_duplicated = compare(got, reference.files, specs)
            assert got.keys() == reference.files.keys()
            differ = [k for k in got if got[k] != reference.files[k]]
            assert differ == [], f"{more_lost} records lost, {more_duplicated} duplicated after {kills}: {differ}"
            lost += more_lost
            duplicated += more_duplicated
            orphans += store.orphans()
        time.sleep(0.2)
    assert watcher.problems == [], watcher.problems[:5]
    assert watcher.reads > 0
    assert lost == 0 and duplicated == 0
    landed = Counter(kills)
    assert landed["stage"] > 0 and landed["deliver"] > 0, kills
    return {
        "kills": len(kills),
        "kills_while_staging": landed["stage"],
        "kills_while_delivering": landed["deliver"],
        "kill_points_after_the_end": late,
        "chains": chains,
        "records_lost": lost,
        "records_duplicated": duplicated,
        "watcher_reads": watcher.reads,
        "orphan_temp_files": orphans,
        "seed": seed,
    }


def test_a_local_vendor_day_killed_anywhere_and_retried_ends_as_a_clean_run(
    tmp_path: Path, inbound, reference: Reference, demo_specs, record_property
) -> None:
    """A worker can die at any instruction (OOM killer, node loss): a retry must end exactly like a clean run,
    and no reader may ever see a half-written file."""
    root = tmp_path / "store"

    def clear() -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()

    def orphans() -> int:
        return sum(1 for p in root.rglob(".*") if p.is_file())

    store = Store({"kind": "local", "root": str(root)}, lambda: LocalFolderStore(root), clear, orphans)
    clear()
    figures = crash_chains(store, inbound, reference, demo_specs, SEED)
    record_figures(record_property, "crash local", **figures)


@pytest.mark.s3
def test_an_s3_vendor_day_killed_anywhere_and_retried_ends_as_a_clean_run(
    s3_bucket: S3Bucket, inbound, reference: Reference, demo_specs, record_property
) -> None:
    """S3 has no rename: an object appears only when its upload completes, so a kill mid-upload must leave nothing."""

    def clear() -> None:
        for page in s3_bucket.client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.name):
            if objects := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
                s3_bucket.client.delete_objects(Bucket=s3_bucket.name, Delete={"Objects": objects, "Quiet": True})

    config = {"kind": "s3", "endpoint": s3_bucket.endpoint_url, "bucket": s3_bucket.name, "prefix": "exchange"}
    store = Store(config, lambda: S3Store(s3_bucket.client, s3_bucket.name, "exchange"), clear, lambda: 0)
    figures = crash_chains(store, inbound, reference, demo_specs, SEED + 1)
    record_figures(record_property, "crash s3", **figures)


# ------------------------------------------------------------------------------------------------ the database

PG_RECORDS = scaled(4000, 20000)
OUTAGE_SECONDS = 8  # longer than dagster-postgres's own reconnect attempts (5 x 0.2 s)
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@contextmanager
def running_daemon(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the repo's workspace, as deployed; stopped when the block ends."""
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield daemon
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def patiently(read: Callable[[], object], deadline: float) -> object:
    """``read()`` against the instance, waiting out the database while it is down."""
    while True:
        try:
            return read()
        except (sqlalchemy.exc.DBAPIError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.postgres
def test_losing_the_instance_database_mid_run_fails_clearly_or_retries_and_loses_no_data(
    tmp_path: Path, demo_specs: dict[str, VendorSpec], monkeypatch: pytest.MonkeyPatch, record_property
) -> None:
    """PostgreSQL holds the runs and their events. Crash it while a daemon-launched run is staging,
    bring it back: the run either rides it out, fails with an error that says the database went
    away (and may be retried by the daemon), or is rerun; the vendor's outputs end complete, and
    nothing is quarantined (losing the database is not the file's fault)."""
    spec = demo_specs["acme_retail"]
    day = dt.datetime.now(dt.UTC).date().isoformat()
    data = tmp_path / "data"
    name = file_name_for(spec, day, 1)
    store = LocalFolderStore(data)
    with store.publish(f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, day)}{name}") as path:
        made = write_vendor_file(spec, path, PG_RECORDS, invalid_share=0.05, seed=4)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")

    with throwaway_postgres() as pg:
        admin = pg.connect()
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE dagster")
        admin.close()
        env = {
            **child_env(),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_MAX_CONCURRENT_RUNS": "2",
            "BATCH_ASSETS_VENDORS_DIR": str(VENDORS_DIR),
            "BATCH_ASSETS_STORAGE": "local",
            "BATCH_ASSETS_DATA_DIR": str(data),
            "BATCH_ASSETS_SENSOR_INTERVAL_SECONDS": "1",
            "BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS": "0",
            "BATCH_ASSETS_CHUNK_SIZE": "100",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        log_path = tmp_path / "daemon.log"
        with running_daemon(env, log_path) as daemon:
            instance = dg.DagsterInstance.get()
            deadline = time.monotonic() + 240
            stage_step = f"stage_{spec.vendor_id}"
            run = None
            while run is None:
                assert daemon.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no run started staging"
                for candidate in instance.get_runs(filters=dg.RunsFilter(tags={"vendor": spec.vendor_id})):
                    events = instance.all_logs(candidate.run_id, of_type=dg.DagsterEventType.STEP_START)
                    if any(e.step_key == stage_step for e in events):
                        run = candidate
                time.sleep(0.2)
            time.sleep(1.0)  # a few chunks in
            pg.crash()
            crashed_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            pg.start()

            def settled() -> list[dg.DagsterRun]:
                runs = instance.get_runs(filters=dg.RunsFilter(tags={"vendor": spec.vendor_id}))
                return runs if runs and all(r.status.value in FINISHED for r in runs) else []

            runs: list[dg.DagsterRun] = []
            while not runs:
                assert time.monotonic() < deadline + 240, "the runs did not finish after the database came back"
                runs = patiently(settled, deadline + 240)
                time.sleep(1)
            time.sleep(3)  # a run retry the daemon may still queue
            runs = patiently(settled, deadline + 300) or runs

        first = next(r for r in runs if r.run_id == run.run_id)
        statuses = {r.run_id: r.status.value for r in runs}
        failure_messages = [
            (e.message or "") + " " + str(e.dagster_event.event_specific_data)
            for r in runs
            for e in instance.all_logs(r.run_id)
            if e.dagster_event is not None and e.dagster_event.is_failure
        ]
        if first.status.value == "SUCCESS":
            outcome = "rode out the outage"
        elif any(s == "SUCCESS" for s in statuses.values()):
            outcome = "failed, then retried by the daemon"
        else:
            outcome = "failed; rerun by hand"
        if first.status.value != "SUCCESS":
            # Clear: the failure names the database, not the file.
            text = " ".join(failure_messages)
            assert any(word in text for word in ("OperationalError", "connection", "database", "server")), text[-3000:]
        if "SUCCESS" not in statuses.values():
            settings = Settings(vendors_dir=VENDORS_DIR, data_dir=data, chunk_size=100)
            job = slice_defs(settings).resolve_job_def("process_vendor_files_job")
            selection = [
                dg.AssetKey(["vendor", spec.vendor_id, s]) for s in (layout.STAGED, layout.REJECTS, layout.OUTBOUND)
            ]
            assert job.execute_in_process(partition_key=day, asset_selection=selection, instance=instance).success

    assert store.stat(f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, day)}{name}") is not None
    assert list(store.list(f"{layout.QUARANTINE}/")) == []
    staged = outputs(store)
    (staged_key,) = [k for k in staged if k.startswith(f"{layout.STAGED}/")]
    (rejects_key,) = [k for k in staged if k.startswith(f"{layout.REJECTS}/")]
    (outbound_key,) = [k for k in staged if k.startswith(f"{layout.OUTBOUND}/") and not layout.is_report(k)]
    assert len(parquet_rows(staged[staged_key])) == made.records - made.invalid
    assert len(rejects_rows(staged[rejects_key])) == made.invalid
    assert len(outbound_rows(spec, staged[outbound_key])) == made.records - made.invalid
    record_figures(
        record_property,
        "instance database lost mid-run",
        outcome=outcome,
        runs=len(runs),
        outage_s=OUTAGE_SECONDS,
        seconds_to_settle=round(time.monotonic() - crashed_at, 1),
        records_lost=0,
    )


# ------------------------------------------------------------------------------------------------ the run worker

WORKER_KILLS = scaled(3, 12)
WORKER_LOCATION = "batch_assets_tests.reliability.vendor_location"
WORKER_AREAS = (layout.STAGED, layout.REJECTS, layout.OUTBOUND)
WORKER_SELECTION = ",".join(f"vendor/{vendor}/{area}" for vendor in VENDORS for area in WORKER_AREAS)
STAGE_STEPS = [f"stage_{v}" for v in VENDORS]
OUTBOUND_STEPS = [f"vendor__{v}__outbound" for v in VENDORS]
STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def worker_settings(data: Path) -> Settings:
    return Settings(vendors_dir=VENDORS_DIR, storage="local", data_dir=data, chunk_size=CHUNK, duckdb_threads=1)


@pytest.fixture(scope="module")
def worker_reference(tmp_path_factory: pytest.TempPathFactory, inbound: dict[str, bytes], demo_specs) -> Reference:
    """A clean run of the same assets on the same settings, in this process, on a data dir of its own."""
    data = tmp_path_factory.mktemp("worker_reference")
    seed_inbound(LocalFolderStore(data), inbound)
    job = slice_defs(worker_settings(data)).resolve_job_def("process_vendor_files_job")
    selection = [dg.AssetKey(key.split("/")) for key in WORKER_SELECTION.split(",")]
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(partition_key=DAY, asset_selection=selection, instance=instance).success
    files = outputs(LocalFolderStore(data))
    assert any(k.startswith(f"{layout.QUARANTINE}/") for k in files)
    return Reference(files, [])


class RunWorker:
    """``dagster asset materialize`` of the day: with the in-process executor this process is the run worker."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", WORKER_LOCATION]
        self.process = subprocess.Popen(
            [*command, "--select", WORKER_SELECTION, "--partition", DAY],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # Dagster's event log lines: the test waits for a step's start
            text=True,
            start_new_session=True,  # its own process group, killed whole
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def kill_after_step_start(self, step: str, delay: float, timeout: float = 240) -> bool:
        """SIGKILL the worker's process group ``delay`` seconds after ``step`` starts; False if it had ended."""
        marker = f'Started execution of step "{step}"'
        deadline = time.monotonic() + timeout
        seen = 0
        while self.process.poll() is None and time.monotonic() < deadline:
            if any(marker in line for line in self.lines[seen:]):
                break
            seen = max(0, len(self.lines) - 1)
            time.sleep(0.002)
        return kill_unless_ended(self.process, delay, lambda: os.killpg(self.process.pid, signal.SIGKILL))

    def finish(self, timeout: float = 300) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self._reader.join(timeout=10)
        assert self.process.returncode == 0, "".join(self.lines)[-3000:]


def step_in_flight(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The step a killed run had started and not finished, per the run's own event log."""
    started = [e.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]
    ended = {e.step_key for e in instance.all_logs(run_id, of_type=STEP_ENDS)}
    return next((step for step in started if step not in ended), None)


def test_a_real_dagster_run_worker_killed_while_staging_or_publishing_and_rerun_ends_as_a_clean_run(
    tmp_path: Path, inbound, worker_reference: Reference, demo_specs, record_property
) -> None:
    """The tests above kill a process that calls the engine's functions; in production the process that dies is
    Dagster's run worker, with its resources, step events and instance writes. Kill that one (the CLI run worker,
    SIGKILL to its process group) while a stage step writes chunks and while an outbound step publishes: the run
    must not be left looking successful, no reader may see a partial file, and a fresh run of the partition must
    end with a clean run's records, none lost, none duplicated."""
    rng = random.Random(SEED + 2)
    root = tmp_path / "store"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **child_env(),
        "DAGSTER_HOME": str(home),
        "BATCH_ASSETS_STORAGE": "local",
        "BATCH_ASSETS_DATA_DIR": str(root),
        "BATCH_ASSETS_VENDORS_DIR": str(VENDORS_DIR),
        "BATCH_ASSETS_CHUNK_SIZE": str(CHUNK),
        "BATCH_ASSETS_DUCKDB_THREADS": "1",
    }
    instance = dg.DagsterInstance.from_config(str(home))
    landed: Counter[str] = Counter()
    late = attempts = reruns = lost = duplicated = orphans = 0
    started = time.monotonic()
    with Watcher(lambda: LocalFolderStore(root), worker_reference, demo_specs, pause=0.01) as watcher:
        while landed.total() < WORKER_KILLS or not (landed["stage"] and landed["deliver"]):
            assert attempts < 4 * WORKER_KILLS, f"kills did not land in both phases: {dict(landed)}, {late} late"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            seed_inbound(LocalFolderStore(root), inbound)
            for _ in range(rng.choice([1, 2])):
                attempts += 1
                worker = RunWorker(env)
                # Staging a vendor's files takes ~0.5-1.5 s of 25-record chunks, publishing its outbound ~60 ms.
                if landed["stage"] <= landed["deliver"]:
                    killed = worker.kill_after_step_start(rng.choice(STAGE_STEPS), rng.uniform(0, 0.8))
                else:
                    killed = worker.kill_after_step_start(rng.choice(OUTBOUND_STEPS), rng.uniform(0, 0.04))
                run = instance.get_runs(limit=1)[0]
                if not killed:
                    late += 1  # the run was over: no fault, not counted
                    continue
                assert run.status != dg.DagsterRunStatus.SUCCESS, run.run_id
                step = step_in_flight(instance, run.run_id)
                phase = "stage" if step in STAGE_STEPS else "deliver" if step in OUTBOUND_STEPS else "between steps"
                landed[phase] += 1
            rerun = RunWorker(env)
            rerun.finish()
            reruns += 1
            assert instance.get_runs(limit=1)[0].status == dg.DagsterRunStatus.SUCCESS
            got = outputs(LocalFolderStore(root))
            assert got.keys() == worker_reference.files.keys()
            more_lost, more_duplicated = compare(got, worker_reference.files, demo_specs)
            assert (more_lost, more_duplicated) == (0, 0), f"lost {more_lost}, duplicated {more_duplicated}: {landed}"
            lost += more_lost
            duplicated += more_duplicated
            orphans += sum(1 for p in root.rglob(".*") if p.is_file())
        time.sleep(0.2)
    assert watcher.problems == [], watcher.problems[:5]
    assert watcher.reads > 0
    record_figures(
        record_property,
        "crash run worker",
        kills=landed.total(),
        kills_while_staging=landed["stage"],
        kills_while_delivering=landed["deliver"],
        kills_between_steps=landed["between steps"],
        kill_points_after_the_end=late,
        worker_runs=attempts + reruns,
        records_lost=lost,
        records_duplicated=duplicated,
        watcher_reads=watcher.reads,
        orphan_temp_files=orphans,
        seconds=round(time.monotonic() - started, 1),
        seed=SEED + 2,
    )
