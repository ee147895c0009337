"""A vendor's day, end to end over a file store: stage every inbound file, then deliver outbound.

Both steps are idempotent: they recompute the whole day from its inputs, publish each output
atomically (replacing the previous one) and remove outputs whose input is gone, so a rerun
after a crash or a re-materialization leaves exactly what a clean run leaves.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from batch_assets.lib.engine import layout
from batch_assets.lib.engine.dead_letters import quarantine
from batch_assets.lib.engine.transform import (
    DEFAULT_CHUNK_SIZE,
    FileJob,
    FileResult,
    Progress,
    TransformSession,
    iter_parquet_batches,
)
from batch_assets.lib.formats import ReadLimits, open_writer
from batch_assets.lib.specs.model import VendorSpec
from batch_assets.lib.storage import FileStore, ObjectInfo

Log = Callable[[str], None]


class StageError(RuntimeError):
    """A file could not be staged for a reason other than its format."""


@dataclass
class EngineOptions:
    chunk_size: int = DEFAULT_CHUNK_SIZE
    memory_limit: str = "256MB"
    threads: int = 2
    progress_every: float = 5.0
    limits: ReadLimits = field(default_factory=ReadLimits)


@dataclass
class StagedFile:
    file_name: str
    source_key: str
    source_version: str
    rows_in: int
    rows_out: int
    rows_rejected: int
    rejects_by_rule: Counter
    bytes_in: int
    seconds: float

    @property
    def conserved(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_rejected


@dataclass
class DayStage:
    vendor_id: str
    day: str
    files: list[StagedFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # inbound key -> why it could not be processed
    quarantined: dict[str, str] = field(default_factory=dict)  # inbound key -> its quarantine key
    removed: list[str] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def rejects_by_rule(self) -> Counter:
        counts: Counter = Counter()
        for f in self.files:
            counts.update(f.rejects_by_rule)
        return counts

    @property
    def conserved(self) -> bool:
        return all(f.conserved for f in self.files)


def inbound_files(store: FileStore, spec: VendorSpec, day: str) -> tuple[list[ObjectInfo], dict[str, str]]:
    """The day's files to process, and the ones passed over with the reason why."""
    files, skipped = [], {}
    for obj in store.list(layout.day_prefix(layout.INBOUND, spec.vendor_id, day)):
        name = obj.key.rsplit("/", 1)[-1]
        try:
            layout.parse_inbound_key(obj.key)
        except layout.NotAnInboundFile as exc:
            skipped[layout.printable(obj.key)] = str(exc)
            continue
        if layout.is_in_progress(name):
            skipped[obj.key] = "upload still in progress (temporary file name)"
        elif not layout.matches_pattern(spec, name):
            skipped[obj.key] = f"file name does not match the vendor's pattern {spec.file_pattern!r}"
        else:
            files.append(obj)
    return files, skipped


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
    return count


@dataclass(eq=False)
class _InboundJob(FileJob):
    """An inbound file in the transform: its key and version, and the publish contexts of its staged
    and rejects files, open from its download until its outputs are written (a small file waits for
    the others of its query), then closed to publish them, or with its error to discard them."""

    key: str = ""
    version: str = ""
    outputs: ExitStack = field(default_factory=ExitStack)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def discard(self, error: BaseException) -> None:
        self.outputs.__exit__(type(error), error, error.__traceback__)
        self.source.unlink(missing_ok=True)


def stage_vendor_day(
    store: FileStore,
    spec: VendorSpec,
    day: str,
    *,
    keys: Mapping[str, bytes],
    options: EngineOptions | None = None,
    log: Log = lambda _msg: None,
) -> DayStage:
    """Validate, map, derive and mask every inbound file of the day into staged and rejects files."""
    options = options or EngineOptions()
    started = time.monotonic()
    result = DayStage(vendor_id=spec.vendor_id, day=day)
    files, result.skipped = inbound_files(store, spec, day)
    for key, reason in result.skipped.items():
        log(f"skipped {key}: {reason}")
    in_flight: list[_InboundJob] = []

    def jobs(workdir: Path) -> Iterator[_InboundJob]:
        for i, obj in enumerate(files):
            local = workdir / f"inbound-{i}"
            try:
                info = store.download(obj.key, local)
            except FileNotFoundError:
                # Deleted by the vendor since the listing: as if it had not been there (a failed
                # step would only be retried to the same end); its earlier outputs are removed below.
                result.skipped[obj.key] = "deleted after the day was listed"
                log(f"skipped {obj.key}: deleted after the day was listed")
                continue
            # In flight before its publish contexts open, so that a failure to open them discards it too.
            job = _InboundJob(local, local, local, key=obj.key, version=info.version)
            in_flight.append(job)
            log(f"{job.name}: {info.size:,} bytes, version {info.version}")
            job.staged = job.outputs.enter_context(store.publish(layout.staged_key(spec.vendor_id, day, job.name)))
            job.rejects = job.outputs.enter_context(store.publish(layout.rejects_key(spec.vendor_id, day, job.name)))
            yield job

    def report(job: _InboundJob, p: Progress) -> None:
        log(f"{job.name}: {p.describe()}")

    with (
        tempfile.TemporaryDirectory(prefix=f"stage-{spec.vendor_id}-") as tmp,
        # One session for the day's files: a connection and a built query per file cost more
        # than a small file's records, and the small files share queries.
        TransformSession(
            spec, keys, memory_limit=options.memory_limit, threads=options.threads, temp_dir=Path(tmp)
        ) as session,
    ):
        outcomes = session.transform_files(
            jobs(Path(tmp)),
            chunk_size=options.chunk_size,
            progress=report,
            progress_every=options.progress_every,
            limits=options.limits,
        )
        try:
            for job, outcome in outcomes:
                in_flight.remove(job)
                if isinstance(outcome, Exception):
                    # The file's own fault (unreadable, or data a business rule cannot take): nothing
                    # of it is published, it moves to quarantine with its error, the others go on.
                    job.discard(outcome)
                    error = f"{type(outcome).__name__}: {outcome}"
                    result.failed[job.key] = error
                    result.quarantined[job.key] = quarantine(store, job.key, error, job.version)
                    log(f"{job.name}: quarantined, nothing published: {error}")
                    continue
                result.files.append(_publish(job, outcome))
                if len(result.preview) < 5:
                    result.preview.extend(outcome.preview[: 5 - len(result.preview)])
        except Exception as exc:
            # Not a file's fault (storage down, a bug): stop the day with the files in hand named;
            # their earlier outputs stay as they were, the files stay in inbound.
            names = ", ".join(job.key for job in in_flight) or "no file in hand"
            raise StageError(f"{spec.vendor_id}: {names}: {type(exc).__name__}: {exc}") from exc
        finally:
            outcomes.close()
            for job in in_flight:
                job.discard(StageError("the day's staging stopped"))
    good = [o for o in files if o.key not in result.failed and o.key not in result.skipped]
    expected = {layout.staged_key(spec.vendor_id, day, o.key.rsplit("/", 1)[-1]) for o in good}
    expected |= {layout.rejects_key(spec.vendor_id, day, o.key.rsplit("/", 1)[-1]) for o in good}
    for area in (layout.STAGED, layout.REJECTS):
        for obj in store.list(layout.day_prefix(area, spec.vendor_id, day)):
            if obj.key not in expected:
                store.delete(obj.key)
                result.removed.append(obj.key)
                log(f"removed {obj.key}: its inbound file is gone or quarantined")
    result.seconds = time.monotonic() - started
    return result


def _publish(job: _InboundJob, out: FileResult) -> StagedFile:
    """Publish a transformed file's staged and rejects files, counted from the files themselves,
    not from the engine's own tally."""
    staged = StagedFile(
        file_name=job.name,
        source_key=job.key,
        source_version=job.version,
        rows_in=out.rows_in,
        rows_out=pq.ParquetFile(job.staged).metadata.num_rows,
        rows_rejected=_count_lines(job.rejects),
        rejects_by_rule=out.rejects_by_rule,
        bytes_in=out.bytes_in,
        seconds=out.seconds,
    )
    job.outputs.close()
    job.source.unlink(missing_ok=True)
    return staged


@dataclass
class DayDelivery:
    vendor_id: str
    day: str
    outbound_keys: list[str] = field(default_factory=list)
    rows: int = 0
    bytes_out: int = 0
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def deliver_vendor_day(
    store: FileStore,
    spec: VendorSpec,
    day: str,
    *,
    batch_size: int = DEFAULT_CHUNK_SIZE,
    log: Log = lambda _msg: None,
) -> DayDelivery:
    """Write the day's staged records in the vendor's output format: a file per inbound file, or one per day."""
    started = time.monotonic()
    result = DayDelivery(vendor_id=spec.vendor_id, day=day)
    staged = sorted(o.key for o in store.list(layout.day_prefix(layout.STAGED, spec.vendor_id, day)))
    per_day = spec.output.granularity == "per_day"
    groups: dict[str, list[str]] = {}
    for key in staged:
        inbound_name = key.rsplit("/", 1)[-1].removesuffix(".parquet")
        target = layout.outbound_key(spec, day, None if per_day else inbound_name)
        groups.setdefault(target, []).append(key)
    if per_day and not groups:
        groups[layout.outbound_key(spec, day, None)] = []
    with tempfile.TemporaryDirectory(prefix=f"deliver-{spec.vendor_id}-") as tmp:
        workdir = Path(tmp)
        for target, sources in groups.items():
            local_files = []
            for i, key in enumerate(sources):
                local = workdir / f"{i}.parquet"
                store.download(key, local)
                local_files.append(local)
            with store.publish(target) as out_path:
                rows = _write_outbound(spec, local_files, out_path, batch_size)
                size = out_path.stat().st_size
            for f in local_files:
                f.unlink()
            result.outbound_keys.append(target)
            result.rows += rows
            result.bytes_out += size
            log(f"delivered {target}: {rows:,} records, {size:,} bytes")
    for obj in store.list(layout.day_prefix(layout.OUTBOUND, spec.vendor_id, day)):
        if obj.key not in groups and not layout.is_report(obj.key):
            store.delete(obj.key)
            result.removed.append(obj.key)
            log(f"removed {obj.key}: no longer produced")
    result.seconds = time.monotonic() - started
    return result


def _write_outbound(spec: VendorSpec, parquet_files: list[Path], out_path: Path, batch_size: int) -> int:
    schema = pq.read_schema(parquet_files[0]) if parquet_files else None
    rows = 0
    with open(out_path, "wb") as sink:
        if schema is None:
            from batch_assets.lib.engine.transform import ChunkTransform

            with ChunkTransform(spec, {m.secret_env: b"schema" for m in spec.masking.values()}, threads=1) as t:
                schema = t.output_schema()
        writer = open_writer(spec.output.format, sink, schema)
        for path in parquet_files:
            for batch in iter_parquet_batches(path, batch_size):
                writer.write_batch(batch)
                rows += batch.num_rows
        writer.close()
    return rows
