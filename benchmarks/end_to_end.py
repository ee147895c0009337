"""End-to-end benchmark: a generated day dropped into the inbound area; the sensor and the daemon do the rest.

    uv run python -m benchmarks.end_to_end                               # scales 0.01 and 0.1, local + S3
    uv run python -m benchmarks.end_to_end --scales 0.01 --storage local  # the CI-sized run, ~2 minutes
    uv run python -m benchmarks.end_to_end --scales 1.0 --storage local --full   # the seed's day

For each scale and storage: a fresh DAGSTER_HOME (the repo's dagster.yaml), a fresh data folder or
moto S3 bucket, the generated vendors' specs, and one ``dagster-daemon run -w workspace.yaml`` on
the repo's workspace. Once the arrival sensor has ticked, every file lands in inbound/<vendor>/<today>/
(copied under a hidden name then renamed, or uploaded to a staging prefix then copied server-side,
so the whole day lands within about a second) and the clock runs until the last outbound file is
published. The process tree of the daemon (code server, run workers) is sampled for RSS and CPU.
Every figure is printed; the run fails (exit 1) only if records go missing or a run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from batch_assets.lib.settings import Settings
from benchmarks.generate import OUT, REPO, Manifest, generate_day

BIN = Path(sys.executable).parent
HASH_KEY = "benchmark-hash-key"
RUNS_AT_ONCE = 2  # the repo's dagster.yaml: max_concurrent_runs
LANES = Settings.model_fields["arrival_lanes"].default  # the product's default
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# ---------------------------------------------------------------- the process tree


def _processes() -> dict[int, tuple[int, int, float]]:
    """pid -> (parent pid, RSS bytes, CPU seconds) of every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[21]) * PAGE, (int(fields[11]) + int(fields[12])) / TICK)
    return table


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    markers = (("resource_tracker", "other"), ("spawn_main", "run worker"), ("execute_run", "run worker"))
    for marker, kind in (*markers, ("api grpc", "code server"), ("dagster-daemon", "daemon")):
        if marker in command:
            return kind
    return "other"


class TreeSampler(threading.Thread):
    """Samples the RSS and CPU time of a process and all its descendants every ``interval`` seconds."""

    def __init__(self, root: int, interval: float = 0.5, include_self: bool = False) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.include_self = root, interval, include_self
        self.peak_rss = 0
        self.peak_by_kind: Counter = Counter()
        self.cpu: dict[int, float] = {}  # last CPU time seen per process
        self.kinds: dict[int, str] = {}
        self.peak_workers = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            if pid in table:
                tree.append(pid)
                todo.extend(children.get(pid, []))
        if self.include_self:
            tree.append(os.getpid())
        total, by_kind = 0, Counter()
        for pid in tree:
            if pid not in self.kinds:
                self.kinds[pid] = "benchmark + moto" if pid == os.getpid() else _kind(pid)
            _, rss, cpu = table.get(pid, (0, 0, 0.0))
            total += rss
            by_kind[self.kinds[pid]] += rss
            self.cpu[pid] = cpu
        self.peak_rss = max(self.peak_rss, total)
        for kind, rss in by_kind.items():
            self.peak_by_kind[kind] = max(self.peak_by_kind[kind], rss)
        self.peak_workers = max(self.peak_workers, sum(1 for pid in tree if self.kinds[pid] == "run worker"))

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def cpu_by_kind(self) -> dict[str, float]:
        totals: Counter = Counter()
        for pid, seconds in self.cpu.items():
            totals[self.kinds[pid]] += seconds
        return dict(totals)


# ---------------------------------------------------------------- stores


class LocalDrop:
    name = "local"

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir

    def env(self) -> dict[str, str]:
        return {"BATCH_ASSETS_STORAGE": "local", "BATCH_ASSETS_DATA_DIR": str(self.root)}

    def drop(self, files: list[tuple[Path, str]]) -> float:
        """Copy every file under a hidden name (the sensor passes those over), then rename them all."""
        hidden = []
        for source, key in files:
            target = self.root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name("." + target.name)
            shutil.copyfile(source, temp)
            hidden.append((temp, target))
        started = time.time()
        for temp, target in hidden:
            temp.rename(target)
        return started

    def outbound(self) -> list[tuple[str, float]]:
        folder = self.root / "outbound"
        if not folder.exists():
            return []
        return [(str(p.relative_to(self.root)), p.stat().st_mtime) for p in folder.rglob("*") if p.is_file()]

    def close(self) -> None:
        pass


class S3Drop:
    """A moto server on loopback in this process, and one bucket."""

    name = "s3"

    def __init__(self) -> None:
        import logging

        import boto3
        from botocore.config import Config
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.bucket = "benchmark"
        session = boto3.session.Session(
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]
        )
        self.client = session.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
        )
        self.client.create_bucket(Bucket=self.bucket)

    def env(self) -> dict[str, str]:
        return {
            **S3_ENV,
            "BATCH_ASSETS_STORAGE": "s3",
            "BATCH_ASSETS_S3_BUCKET": self.bucket,
            "BATCH_ASSETS_S3_ENDPOINT_URL": self.endpoint,
            "BATCH_ASSETS_S3_REGION": "us-east-1",
        }

    def drop(self, files: list[tuple[Path, str]]) -> float:
        """Upload every file to staging/, then copy them into inbound/ server-side (each copy is one new object).

        Single-part uploads: a server-side copy of a multipart upload on moto 5.2.5 came back with a
        checksum that botocore's download check refused (FlexibleChecksumError, every file > 8 MB).
        """
        from boto3.s3.transfer import TransferConfig

        single_part = TransferConfig(multipart_threshold=1 << 40)
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda f: self.client.upload_file(str(f[0]), self.bucket, "staging/" + f[1], Config=single_part),
                    files,
                )
            )
            started = time.time()
            list(
                pool.map(
                    lambda f: self.client.copy_object(
                        Bucket=self.bucket, Key=f[1], CopySource={"Bucket": self.bucket, "Key": "staging/" + f[1]}
                    ),
                    files,
                )
            )
            list(pool.map(lambda f: self.client.delete_object(Bucket=self.bucket, Key="staging/" + f[1]), files))
        return started

    def outbound(self) -> list[tuple[str, float]]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="outbound/"):
            found += [(o["Key"], o["LastModified"].timestamp()) for o in page.get("Contents", [])]
        return found

    def close(self) -> None:
        self.server.stop()


# ---------------------------------------------------------------- one end-to-end run


@dataclass
class Result:
    scale: float
    storage: str
    files: int
    records: int
    invalid: int
    mb: float
    vendors: int
    runs_at_once: int
    vendors_per_run: int
    lanes: int
    wall_seconds: float = 0.0
    runs: int = 0
    runs_by_status: dict = field(default_factory=dict)
    runs_per_vendor_max: int = 0
    queue_wait_median: float = 0.0
    run_seconds_median: float = 0.0
    engine_seconds_median: float = 0.0
    overhead_seconds_median: float = 0.0
    overhead_seconds_mean: float = 0.0
    rows_in: int = 0
    rows_rejected: int = 0
    peak_rss_mb: float = 0.0
    peak_rss_mb_by_kind: dict = field(default_factory=dict)
    peak_concurrent_runs: int = 0
    cpu_seconds: float = 0.0
    cpu_seconds_by_kind: dict = field(default_factory=dict)
    load_before: list = field(default_factory=list)
    load_after: list = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.records / self.wall_seconds if self.wall_seconds else 0.0


def expected_outbound(manifest: Manifest, vendors_dir: Path, day: str) -> set[str]:
    from batch_assets.lib.engine import layout
    from batch_assets.lib.specs import load_vendor_specs

    specs = {s.vendor_id: s for s in load_vendor_specs(vendors_dir)}
    keys = set()
    for f in manifest.files:
        spec = specs[f["vendor_id"]]
        per_day = spec.output.granularity == "per_day"
        keys.add(layout.outbound_key(spec, day, None if per_day else f["file_name"]))
    return keys


def arrival_runs(instance) -> list:
    """The runs the arrival sensor started (other slices' runs are not counted)."""
    import dagster as dg

    return list(instance.get_run_records(filters=dg.RunsFilter(tags={"trigger": "arrival"})))


def wait_for(predicate, timeout: float, what: str, daemon: subprocess.Popen, log: Path, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(
                f"the daemon exited ({daemon.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        if predicate():
            return
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; daemon log: {log}")


def run_day(
    manifest: Manifest,
    day_dir: Path,
    storage: str,
    work: Path,
    *,
    sensor_interval: int,
    timeout: float,
    runs_at_once: int = RUNS_AT_ONCE,
    vendors_per_run: int = 1,
    lanes: int = LANES,
    log=print,
) -> Result:
    import dagster as dg

    day = dt.datetime.now(dt.UTC).date().isoformat()
    result = Result(
        scale=manifest.scale,
        storage=storage,
        files=len(manifest.files),
        records=manifest.records,
        invalid=manifest.invalid,
        mb=manifest.bytes / 1e6,
        vendors=manifest.vendors,
        runs_at_once=runs_at_once,
        vendors_per_run=vendors_per_run,
        lanes=lanes,
    )
    home, data = work / "dagster_home", work / "data"
    shutil.rmtree(work, ignore_errors=True)
    home.mkdir(parents=True)
    data.mkdir()
    instance_yaml = yaml.safe_load((REPO / "dagster.yaml").read_text())
    coordinator = instance_yaml["run_coordinator"]["config"]
    coordinator["max_concurrent_runs"] = runs_at_once
    # The profile's policy kept: LOW runs may take every slot but one (1 of the repo's 2).
    for limit in coordinator["tag_concurrency_limits"]:
        if limit["key"] == "priority" and limit.get("value") == "LOW":
            limit["limit"] = runs_at_once - 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    store = LocalDrop(data) if storage == "local" else S3Drop()
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "DAGSTER_HOME": str(home),
        "BATCH_ASSETS_VENDORS_DIR": str(day_dir / "vendors"),
        "BATCH_ASSETS_HASH_KEY": HASH_KEY,
        "BATCH_ASSETS_SENSOR_INTERVAL_SECONDS": str(sensor_interval),
        "BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS": "0",
        "BATCH_ASSETS_TIMEZONE": "UTC",
        "BATCH_ASSETS_ARRIVAL_VENDORS_PER_RUN": str(vendors_per_run),
        "BATCH_ASSETS_ARRIVAL_LANES": str(lanes),
        **store.env(),
    }
    daemon_log = work / "daemon.log"
    expected = expected_outbound(manifest, day_dir / "vendors", day)
    files = [
        (day_dir / "files" / f["path"], f"inbound/{f['vendor_id']}/{day}/{f['file_name']}") for f in manifest.files
    ]
    # The embedded profile's default_op_concurrency_limit (1) would serialize every vendor's transform
    # step across the concurrent runs: give their pool a slot per run, as an operator would.
    subprocess.run(
        [str(BIN / "dagster"), "instance", "concurrency", "set", "vendor_transform", str(runs_at_once)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    result.load_before = [round(x, 1) for x in os.getloadavg()]
    with open(daemon_log, "wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one at the end
        )
    sampler = TreeSampler(daemon.pid, include_self=storage == "s3")
    sampler.start()
    instance = None
    try:
        wait_for(
            lambda: b"vendor_inbound_arrival_sensor" in daemon_log.read_bytes(),
            180,
            "the arrival sensor's first tick",
            daemon,
            daemon_log,
        )
        log(f"  [{storage} {manifest.scale:g}] daemon up; dropping {len(files):,} files ({result.mb:,.0f} MB)")
        started = store.drop(files)
        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()

        def done() -> bool:
            landed = {key for key, _ in store.outbound()}
            if not expected <= landed:
                return False
            records = arrival_runs(instance)
            return bool(records) and all(r.dagster_run.is_finished for r in records)

        wait_for(done, timeout, f"{len(expected)} outbound files", daemon, daemon_log, every=1.0)
        finished = max(mtime for key, mtime in store.outbound() if key in expected)
        result.wall_seconds = finished - started
        _run_figures(instance, result)
    finally:
        sampler.sample()
        _stop_group(daemon)
        sampler.stop()
        if instance is not None:
            instance.dispose()
        store.close()
    result.load_after = [round(x, 1) for x in os.getloadavg()]
    result.peak_rss_mb = sampler.peak_rss / 1e6
    result.peak_rss_mb_by_kind = {k: round(v / 1e6) for k, v in sampler.peak_by_kind.items()}
    result.peak_concurrent_runs = sampler.peak_workers
    result.cpu_seconds_by_kind = {k: round(v, 1) for k, v in sampler.cpu_by_kind().items()}
    result.cpu_seconds = sum(sampler.cpu_by_kind().values())
    return result


def _stop_group(daemon: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (its own process group), then make sure none is left."""
    try:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    time.sleep(2)  # run workers and the code server shut down after the daemon
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait()


def _run_figures(instance, result: Result) -> None:
    """Runs, their queue wait, and Dagster's overhead: a run's duration minus the engine's own seconds."""
    import dagster as dg

    records = arrival_runs(instance)
    result.runs = len(records)
    result.runs_by_status = dict(Counter(r.dagster_run.status.value for r in records))
    per_vendor = Counter(
        vendor
        for r in records
        for vendor in r.dagster_run.tags.get("vendors", r.dagster_run.tags.get("vendor", "")).split(",")
    )
    result.runs_per_vendor_max = max(per_vendor.values())
    waits, durations, engine, overhead = [], [], [], []
    latest: dict[str, tuple[float, dict]] = {}
    for record in records:
        if not (record.start_time and record.end_time):
            continue
        waits.append(record.start_time - record.create_timestamp.timestamp())
        durations.append(record.end_time - record.start_time)
        seconds = 0.0
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.asset_materialization
            metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            seconds += float(metadata.get("duration_seconds", 0.0))
            if materialization.asset_key.path[-1] == "staged":
                vendor = materialization.asset_key.path[1]
                if vendor not in latest or entry.timestamp > latest[vendor][0]:
                    latest[vendor] = (entry.timestamp, metadata)
        engine.append(seconds)
        overhead.append(durations[-1] - seconds)
    result.queue_wait_median = statistics.median(waits) if waits else 0.0
    result.run_seconds_median = statistics.median(durations) if durations else 0.0
    result.engine_seconds_median = statistics.median(engine) if engine else 0.0
    result.overhead_seconds_median = statistics.median(overhead) if overhead else 0.0
    result.overhead_seconds_mean = statistics.mean(overhead) if overhead else 0.0
    result.rows_in = sum(int(m["rows_in"]) for _, m in latest.values())
    result.rows_rejected = sum(int(m["rows_rejected"]) for _, m in latest.values())


def print_result(r: Result) -> None:
    print(
        f"\n== scale {r.scale:g}, {r.storage}: {r.files:,} files, {r.records:,} records, {r.mb:,.0f} MB, "
        f"{r.vendors} vendors"
        f"  (load before {r.load_before}, after {r.load_after})\n"
        f"  wall, first file to last outbound file: {r.wall_seconds:,.1f} s -> {r.records_per_second:,.0f} records/s\n"
        f"  runs: {r.runs} {r.runs_by_status} (at most {r.runs_per_vendor_max} per vendor), "
        f"at most {r.peak_concurrent_runs} at once (max_concurrent_runs {r.runs_at_once}, "
        f"vendors per run {r.vendors_per_run}, lanes {r.lanes})\n"
        f"  per run (median): queued {r.queue_wait_median:.1f} s, ran {r.run_seconds_median:.1f} s, "
        f"engine {r.engine_seconds_median:.1f} s, Dagster overhead {r.overhead_seconds_median:.1f} s "
        f"(mean {r.overhead_seconds_mean:.1f} s)\n"
        f"  peak RSS of all processes: {r.peak_rss_mb:,.0f} MB; peak by kind (MB): {r.peak_rss_mb_by_kind}\n"
        f"  CPU: {r.cpu_seconds:,.0f} s in all; by kind (s): {r.cpu_seconds_by_kind}\n"
        f"  records staged (latest run per vendor): {r.rows_in:,} in, {r.rows_rejected:,} rejected"
    )


def check(r: Result) -> list[str]:
    problems = []
    if r.rows_in != r.records:
        problems.append(f"scale {r.scale:g} {r.storage}: {r.rows_in:,} records staged, {r.records:,} generated")
    if r.rows_rejected != r.invalid:
        problems.append(f"scale {r.scale:g} {r.storage}: {r.rows_rejected:,} rejected, {r.invalid:,} generated invalid")
    failed = {k: v for k, v in r.runs_by_status.items() if k != "SUCCESS"}
    if failed:
        problems.append(f"scale {r.scale:g} {r.storage}: runs not successful: {failed}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="0.01,0.1", help="comma-separated scale factors (1.0 needs --full)")
    parser.add_argument("--storage", default="local,s3", help="local, s3 or both")
    parser.add_argument("--full", action="store_true", help="allow scale 1.0 and above (2,500 files, 25M records)")
    parser.add_argument("--sensor-interval", type=int, default=5, help="seconds between sensor ticks")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating the data (first run only)")
    parser.add_argument("--timeout", type=float, help="seconds to wait for the outbound files (default: by scale)")
    parser.add_argument("--keep", action="store_true", help="keep DAGSTER_HOME and the data under benchmarks/out/e2e-*")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--runs-at-once", type=int, default=RUNS_AT_ONCE, help="max_concurrent_runs (and the transform pool)"
    )
    parser.add_argument(
        "--vendors-per-run", type=int, default=1, help="BATCH_ASSETS_ARRIVAL_VENDORS_PER_RUN: vendors sharing a run"
    )
    parser.add_argument("--lanes", type=int, default=LANES, help="BATCH_ASSETS_ARRIVAL_LANES (with shared runs)")
    parser.add_argument("--vendors", type=int, help="vendors in the day (default: 100 x scale, at least 5)")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    if any(s >= 1.0 for s in scales) and not args.full:
        parser.error("scale 1.0 and above run 25M records for 10+ minutes: add --full")
    results, problems = [], []
    for scale in scales:
        day_dir = OUT / (f"day-{scale:g}" if args.vendors is None else f"day-{scale:g}-{args.vendors}v")
        manifest = generate_day(day_dir, scale, vendors=args.vendors, jobs=args.jobs)
        for storage in args.storage.split(","):
            if storage == "s3" and scale >= 1.0:
                print("  note: moto keeps every object in memory; scale 1.0 on S3 holds ~6 GB in this process")
            work = OUT / f"e2e-{scale:g}-{storage}"
            timeout = args.timeout or 300 + 3600 * scale
            result = run_day(
                manifest,
                day_dir,
                storage,
                work,
                sensor_interval=args.sensor_interval,
                timeout=timeout,
                runs_at_once=args.runs_at_once,
                vendors_per_run=args.vendors_per_run,
                lanes=args.lanes,
            )
            print_result(result)
            problems += check(result)
            results.append(result)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "records_per_second": r.records_per_second} for r in results], indent=1)
        )
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
