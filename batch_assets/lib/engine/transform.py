"""The chunked vendor transform: reader batches in, staged Parquet and rejects out.

Memory is bounded by the chunk size: each chunk is one Arrow batch, pushed through one DuckDB
query (validate, map, business rules, mask) and written out before the next is read.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypedDict, TypeVar, Unpack

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch_assets.lib.engine.sql import (
    FILE_NO,
    KEY_PREFIX,
    LINE_NO,
    PARSE_ERROR,
    RAW_PREFIX,
    REASON,
    RECORD_NO,
    ROW_ID,
    RULE,
    build_chunk_query,
    ident,
    prior_table,
)
from batch_assets.lib.formats.common import FormatError, ReadLimits
from batch_assets.lib.specs.model import JsonLinesFormat, VendorSpec

# 50K records: at 100K the 5M-record benchmark file peaked at ~560 MB RSS (DuckDB's and Arrow's allocators
# keep what a chunk used), at 50K under 512 MB, for ~15% more CPU (docs/performance.md).
DEFAULT_CHUNK_SIZE = 50_000
PREVIEW_ROWS = 5


class MaskingKeyError(RuntimeError):
    """A hash mask's secret is not set in the environment."""


# The demo profile's key where none is set. It is public, so pseudonyms made with it are not secret.
DEMO_HASH_KEY = b"demo-key-not-a-secret"


def missing_keys(spec: VendorSpec, environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per hash-masked field of the spec whose key variable is unset or empty."""
    return [
        f"vendor '{spec.vendor_id}' hashes field '{name}' with the key in ${mask.secret_env}, which is not set"
        for name, mask in spec.masking.items()
        if mask.method == "hash" and not environ.get(mask.secret_env)
    ]


def resolve_keys(
    spec: VendorSpec, environ: Mapping[str, str] = os.environ, *, default: bytes | None = None
) -> dict[str, bytes]:
    """The keys of the spec's hash masks, read from the environment; a missing one is ``default``, else an error."""
    missing = missing_keys(spec, environ)
    if missing and default is None:
        raise MaskingKeyError(f"{missing[0]}: set it (the same key every run, or pseudonyms change)")
    return {
        mask.secret_env: environ[mask.secret_env].encode() if environ.get(mask.secret_env) else default
        for mask in spec.masking.values()
        if mask.method == "hash"
    }


def reader_schema(spec: VendorSpec) -> pa.Schema:
    base = [pa.field(RECORD_NO, pa.int64()), pa.field(LINE_NO, pa.int64()), pa.field(PARSE_ERROR, pa.string())]
    return pa.schema(base + [pa.field(f.source_name, pa.string()) for f in spec.schema_])


def rejects_schema(spec: VendorSpec) -> pa.Schema:
    base = [
        pa.field(RECORD_NO, pa.int64()),
        pa.field(LINE_NO, pa.int64()),
        pa.field(RULE, pa.string()),
        pa.field(REASON, pa.string()),
    ]
    return pa.schema(base + [pa.field(f.name, pa.string()) for f in spec.schema_])


def record_order(row_ids: pa.ChunkedArray) -> pa.Array | None:
    """Indices that put a chunk's rows in file order, or None when they are in order already.

    The chunk query has no ORDER BY (sorting every chunk in DuckDB cost a tenth of the transform):
    with one thread its plan keeps the chunk's order; with more, its scan and the unique check's
    joins may not. Outbound files keep the inbound order, so the order is checked here, and
    repaired when needed.
    """
    if row_ids.null_count == 0:
        values = row_ids.to_numpy()
        if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
            return None
    return pc.array_sort_indices(row_ids, null_placement="at_end")


def _rows(table: pa.Table, keep: pa.ChunkedArray, order: pa.Array | None) -> pa.Table:
    """The rows of ``table`` where ``keep`` holds, in file order; only ``table``'s columns are copied.

    With ``order``, the rows are those indices of ``table``, in that order."""
    if order is None:
        return table if pc.all(keep).as_py() is not False else table.filter(keep)
    return table.take(pc.filter(order, pc.take(keep, order)))


# Record numbers of one file stay below 2**40: the file number goes above them in a row id.
FILE_SHIFT = 40


def _file_rows(table: pa.Table, keep: pa.ChunkedArray, lo: int, hi: int, order: pa.Array | None) -> pa.Table:
    """The rows ``lo``..``hi`` (in file order) of a chunk's ``table`` where ``keep`` holds: one file's."""
    if order is None:
        return _rows(table.slice(lo, hi - lo), keep.slice(lo, hi - lo), None)
    return _rows(table, keep, order.slice(lo, hi - lo))


def _with_row_ids(batch: pa.RecordBatch, file_no: int) -> pa.RecordBatch:
    """A reader batch with the columns that tell its records from another file's in the same chunk."""
    rows = batch.num_rows
    record_no = batch.column(RECORD_NO)
    row_id = pc.add(record_no, pa.scalar(file_no << FILE_SHIFT, pa.int64())) if file_no else record_no
    return batch.append_column(FILE_NO, pa.array(np.full(rows, file_no, dtype=np.int32))).append_column(ROW_ID, row_id)


@functools.cache
def _bounded_arrow_pool() -> None:
    """Arrow's buffers from jemalloc, unless the environment picked a pool.

    On the 5M-record file pyarrow's default (mimalloc) kept more of the freed chunks: 515 MB peak
    RSS against 464 MB, at the same speed (docs/performance.md).
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())


class ConnectionOptions(TypedDict, total=False):
    """ChunkTransform's DuckDB settings, passed through by the session and transform_file (defaults there)."""

    memory_limit: str
    threads: int
    temp_dir: Path | None


class ChunkTransform:
    """The chunk query on its DuckDB connection, and the unique values seen in the current file."""

    def __init__(
        self,
        spec: VendorSpec,
        keys: Mapping[str, bytes],
        *,
        memory_limit: str = "256MB",
        threads: int = 2,
        temp_dir: Path | None = None,
        database: duckdb.DuckDBPyConnection | None = None,
    ):
        config = {"memory_limit": memory_limit, "threads": threads, "preserve_insertion_order": True}
        if temp_dir is not None:
            config["temp_directory"] = str(temp_dir)
        _bounded_arrow_pool()
        self.spec = spec
        self.input_schema = reader_schema(spec)
        # A cursor of an open database (its own temp tables) is free; a new database costs ~20 ms.
        self.con = database.cursor() if database is not None else duckdb.connect(config=config)
        self.seen_tables = {f.name: f"seen_{i}" for i, f in enumerate(f for f in spec.schema_ if f.unique)}
        self._new_tables()
        self._unwritten: dict[str, pa.Table] = {}
        self._seen_any = False
        self.query = build_chunk_query(spec, dict(keys), self.seen_tables)
        self.statement = self.con.extract_statements(self.query.sql)[0]  # parsed once, run every chunk

    def _new_tables(self) -> None:
        # Replaced rather than emptied, so a big file's values do not stay allocated.
        for table in self.seen_tables.values():
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(table)} (v VARCHAR)")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(prior_table(table))} (v VARCHAR)")

    def reset(self) -> None:
        """Forget the unique values seen so far: the next chunk starts a new file."""
        if self._seen_any:
            self._new_tables()
        # The last chunk's unique values, written to the seen-tables only when the file has another
        # chunk: a small file is one chunk, and leaves the tables empty, with nothing to reset.
        self._unwritten = {}
        self._seen_any = False

    def _remember(self) -> None:
        for name, values in self._unwritten.items():
            if values.num_rows:
                self.con.register("accepted_values", values)
                self.con.execute(
                    f"INSERT INTO {ident(self.seen_tables[name])} SELECT v FROM accepted_values WHERE v IS NOT NULL"
                )
                self.con.unregister("accepted_values")
                self._seen_any = True
        self._unwritten = {}

    def apply(self, batch: pa.RecordBatch) -> tuple[pa.Table, pa.Table]:
        """Split one reader batch of the current file into (accepted output records, rejected records
        with reasons)."""
        self._remember()
        self.con.register("chunk", _with_row_ids(batch, 0))
        try:
            # Probing the chunk's values into the growing seen-table keeps each chunk's cost
            # linear; an IN over the whole seen-table would rebuild its hash table every chunk.
            # While nothing is seen in this file, the prior tables stay as reset left them: empty.
            for f in self.spec.schema_:
                if f.unique and self._seen_any:
                    seen = self.seen_tables[f.name]
                    self.con.execute(
                        f"CREATE OR REPLACE TEMP TABLE {ident(prior_table(seen))} AS SELECT s.v FROM {ident(seen)} s "
                        f"SEMI JOIN chunk c ON s.v = c.{ident(f.source_name)}"
                    )
            result = self.con.sql(self.statement, params=self.query.params).to_arrow_table()
        finally:
            self.con.unregister("chunk")
        ((output, rejects, self._unwritten),) = self._split(result, 1, remember=True)
        return output, rejects

    def apply_files(self, batches: list[pa.RecordBatch]) -> list[tuple[pa.Table, pa.Table]]:
        """Several whole files, each one reader batch, in one query: (accepted, rejected) per file.

        Each file's unique values are its own, as if it were alone. One query for many small files
        pays DuckDB's planning once, and lets it scan them on all its threads.
        """
        self.reset()
        chunk = pa.Table.from_batches([_with_row_ids(b.cast(self.input_schema), i) for i, b in enumerate(batches)])
        self.con.register("chunk", chunk)
        try:
            result = self.con.sql(self.statement, params=self.query.params).to_arrow_table()
        finally:
            self.con.unregister("chunk")
        return [(output, rejects) for output, rejects, _ in self._split(result, len(batches), remember=False)]

    def _split(
        self, result: pa.Table, files: int, *, remember: bool
    ) -> list[tuple[pa.Table, pa.Table, dict[str, pa.Table]]]:
        """The query's rows, per file and in file order: accepted records, rejects, and (when
        ``remember``) the unique values that later chunks of the file must not repeat."""
        row_ids = result.column(ROW_ID)
        order = record_order(row_ids)
        ordered_ids = row_ids if order is None else row_ids.take(order)
        bounds = np.searchsorted(ordered_ids.to_numpy(), np.arange(files + 1, dtype=np.int64) << FILE_SHIFT)
        accepted = pc.is_null(result.column(RULE))
        # A record rejected only for its output (width or characters) passed the unique check and
        # blocks its duplicates later in its chunk; remember it too, so later chunks decide the same way.
        passed_unique = pc.or_kleene(accepted, pc.starts_with(result.column(RULE), "output_")) if remember else None
        reject_cols = [RECORD_NO, LINE_NO, RULE, REASON] + [RAW_PREFIX + n for n in self.query.raw_fields]
        rejected = pc.invert(accepted)
        # Each output copies only its own columns out of the wide result.
        outputs, raws = result.select(self.query.output_fields), result.select(reject_cols)
        parts = []
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            output = _file_rows(outputs, accepted, lo, hi, order)
            rejects = _file_rows(raws, rejected, lo, hi, order).rename_columns(
                [RECORD_NO, LINE_NO, RULE, REASON, *self.query.raw_fields]
            )
            unique_values = {
                name: _file_rows(result.select([KEY_PREFIX + name]), passed_unique, lo, hi, order).rename_columns(["v"])
                for name in (self.seen_tables if remember else ())
            }
            parts.append((output, rejects, unique_values))
        return parts

    def output_schema(self) -> pa.Schema:
        output, _ = self.apply(pa.RecordBatch.from_pylist([], schema=self.input_schema))
        return output.schema

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ChunkTransform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _spec_check_database() -> duckdb.DuckDBPyConnection:
    """One database for every spec check of the process: the code location checks each vendor when it loads."""
    return duckdb.connect(config={"threads": 1})


def _compile_error(spec: VendorSpec, keys: Mapping[str, bytes]) -> duckdb.Error | None:
    try:
        with ChunkTransform(spec, keys, database=_spec_check_database()) as transform:
            transform.output_schema()
    except duckdb.Error as exc:
        return exc
    return None


def check_spec_sql(spec: VendorSpec) -> str | None:
    """Prepare the spec's query on an empty chunk; a broken business rule names its field."""
    for f in spec.schema_:
        if f.regex is not None:
            try:
                with _spec_check_database().cursor() as con:
                    con.execute("SELECT regexp_full_match('', $r)", {"r": f.regex}).fetchall()
            except duckdb.Error as exc:
                return f"schema: field '{f.name}': regex {f.regex!r} is not supported (RE2 syntax): {exc}"
    keys = {m.secret_env: b"spec-check" for m in spec.masking.values() if m.method == "hash"}
    if (error := _compile_error(spec, keys)) is None:
        return None
    i, exc = _first_failing_rules(spec, keys, error)
    if i == 0:
        return f"the spec does not compile to SQL: {exc}"
    rule = spec.business_rules[i - 1]
    return f"business_rules: field '{rule.field}': expression {rule.expression!r} is invalid: {exc}"


def _first_failing_rules(spec: VendorSpec, keys: Mapping[str, bytes], error: duckdb.Error) -> tuple[int, duckdb.Error]:
    """How many business rules the first failing prefix of the spec has (0: none, the spec itself
    fails), and its error: the spec without rules, then one rule more at a time. When every shorter
    prefix compiles, the whole spec's ``error`` belongs to its last rule."""
    rules = spec.business_rules
    for i in range(len(rules)):
        if (exc := _compile_error(spec.model_copy(update={"business_rules": rules[:i]}), keys)) is not None:
            return i, exc
    return len(rules), error


@dataclass
class Progress:
    records: int
    bytes_read: int
    bytes_total: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def estimated_total(self) -> int:
        """Records in the whole file, extrapolated from the bytes read so far."""
        if self.bytes_read <= 0:
            return self.records
        return max(self.records, round(self.records * self.bytes_total / self.bytes_read))

    def describe(self) -> str:
        share = 100.0 * self.bytes_read / self.bytes_total if self.bytes_total else 100.0
        return (
            f"{self.records:,} of ~{self.estimated_total:,} records ({share:.0f}% of bytes), "
            f"{self.records_per_second:,.0f} records/s"
        )


@dataclass
class FileResult:
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rejects_by_rule: Counter = field(default_factory=Counter)
    bytes_in: int = 0
    seconds: float = 0.0
    preview: list[dict] = field(default_factory=list)


def _staged_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    # No dictionary pages: most staged columns are ids, hashes and amounts, where trying one and
    # falling back cost a third of the write and made the file larger.
    return pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False)


# Errors that belong to the file (unreadable, or data a business rule cannot take): retrying
# cannot help, the file is quarantined and the others go on.
FILE_ERRORS = (FormatError, duckdb.DataError, duckdb.InvalidInputException)

# At most this many files share one query: each holds its outputs open until the query has run.
MAX_FILES_PER_QUERY = 64


@dataclass(eq=False)  # a job is itself, whatever its paths: callers key their results by it
class FileJob:
    """A file for TransformSession.transform_files: the local inbound file, and where its staged
    records and its rejects are to be written."""

    source: Path
    staged: Path
    rejects: Path


Job = TypeVar("Job", bound=FileJob)


class TransformSession:
    """The transform of many files of one spec (a vendor's day): one DuckDB connection, one built
    query, the unique values forgotten between files.

    A small file cost ~50 ms of connecting and building the query before its first record; a
    session pays that once. Each file still gets its own staged and rejects files, exactly as
    alone, and a file that fails leaves nothing behind that the next file could see.
    """

    def __init__(self, spec: VendorSpec, keys: Mapping[str, bytes], **connection: Unpack[ConnectionOptions]):
        self.spec = spec
        self._transform = ChunkTransform(spec, keys, **connection)

    def transform_files(
        self,
        jobs: Iterable[Job],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Callable[[Job, Progress], None] | None = None,
        progress_every: float = 5.0,
        limits: ReadLimits | None = None,
    ) -> Iterator[tuple[Job, FileResult | Exception]]:
        """Transform each job's file; yield it with its result, or with the error that is the file's
        own (one of FILE_ERRORS: its outputs are then incomplete, and for the caller to discard).
        Any other error is raised.

        Files that fit in one chunk are read whole and transformed together, up to ``chunk_size``
        records per query: a 10K-record file cost ~50 ms of query alone, most of it DuckDB planning
        and one thread scanning (docs/performance.md). Their outputs are exactly those each file
        gets alone. A larger file streams chunk by chunk, alone, reporting ``progress``.
        """
        group: list[tuple[Job, pa.RecordBatch, float]] = []
        # A full group's query and writes run on a thread while the next files are read here:
        # both DuckDB and pyarrow release the GIL, and a small file's reading is a fifth of its time.
        with ThreadPoolExecutor(1, thread_name_prefix="file-group") as worker:
            running: Future | None = None

            def finished() -> list[tuple[Job, FileResult | Exception]]:
                return [] if running is None else running.result()

            for job in jobs:
                started = time.monotonic()
                with contextlib.ExitStack() as reading:
                    try:
                        source, batches = reading.enter_context(self._reading(job.source, chunk_size, limits))
                        whole, batches = _whole_file(batches, chunk_size, self._transform.input_schema)
                    except FILE_ERRORS as exc:
                        yield job, exc
                        continue
                    if whole is None:  # a larger file: the files read so far go first, then it alone
                        yield from finished()
                        running = None
                        yield from self._transform_group(group)
                        group = []
                        report = None if progress is None else functools.partial(progress, job)
                        try:
                            result = self._stream(batches, source, job, report, progress_every)
                        except FILE_ERRORS as exc:
                            result = exc
                        yield job, result
                        continue
                if group and (
                    sum(b.num_rows for _, b, _ in group) + whole.num_rows > chunk_size
                    or len(group) >= MAX_FILES_PER_QUERY
                ):
                    yield from finished()
                    running = worker.submit(lambda group=group: list(self._transform_group(group)))
                    group = []
                group.append((job, whole, time.monotonic() - started))
            yield from finished()
            yield from self._transform_group(group)

    @contextlib.contextmanager
    def _reading(
        self, path: Path, chunk_size: int, limits: ReadLimits | None
    ) -> Iterator[tuple[BinaryIO, Iterator[pa.RecordBatch]]]:
        """The open file and its batches, read a chunk ahead on a thread."""
        from batch_assets.lib.formats import read_batches

        fields = [f.source_name for f in self.spec.schema_]
        with open(path, "rb") as source:
            batches = read_ahead(read_batches(self.spec.input, source, fields, chunk_size, limits))
            try:
                yield source, batches
            finally:
                batches.close()  # stops the reader before the file closes

    def _transform_group(
        self, group: list[tuple[Job, pa.RecordBatch, float]]
    ) -> Iterator[tuple[Job, FileResult | Exception]]:
        """Whole files in one query; if a business rule fails on one of them, each again alone, so
        that only the failing file gets the error."""
        if not group:
            return
        started = time.monotonic()
        try:
            pieces = self._transform.apply_files([batch for _, batch, _ in group])
        except FILE_ERRORS as exc:
            if len(group) == 1:
                yield group[0][0], exc
            else:
                for member in group:
                    yield from self._transform_group([member])
            return
        rows = sum(batch.num_rows for _, batch, _ in group) or 1
        query_seconds = time.monotonic() - started
        for (job, batch, read_seconds), (output, rejects) in zip(group, pieces, strict=True):
            result = self._write_outputs([(batch.num_rows, output, rejects)], job.staged, job.rejects)
            result.bytes_in = job.source.stat().st_size
            result.seconds = read_seconds + query_seconds * batch.num_rows / rows
            yield job, result

    def _write_outputs(
        self,
        pieces: Iterable[tuple[int, pa.Table, pa.Table]],
        staged_path: Path,
        rejects_path: Path,
        on_chunk: Callable[[int], None] | None = None,
    ) -> FileResult:
        """One file's staged Parquet and JSON-lines rejects, from (records read, accepted, rejected) per chunk."""
        from batch_assets.lib.formats import open_writer

        result = FileResult()
        with open(rejects_path, "wb") as rejects_sink:
            rejects_writer = open_writer(JsonLinesFormat(kind="jsonl"), rejects_sink, rejects_schema(self.spec))
            staged: pq.ParquetWriter | None = None
            try:
                for rows_in, output, rejects in pieces:
                    if staged is None:
                        # The query's types are the same for every chunk, so the first chunk's schema
                        # opens the file: no extra query on an empty chunk (~30 ms a file).
                        schema = output.schema
                        staged = _staged_writer(staged_path, schema)
                    result.rows_in += rows_in
                    result.rows_out += output.num_rows
                    result.rows_rejected += rejects.num_rows
                    if output.num_rows:
                        staged.write_table(output.cast(schema))
                        if len(result.preview) < PREVIEW_ROWS:
                            result.preview.extend(output.slice(0, PREVIEW_ROWS - len(result.preview)).to_pylist())
                    if rejects.num_rows:
                        result.rejects_by_rule.update(rejects.column(RULE).to_pylist())
                        for rb in rejects.to_batches():
                            rejects_writer.write_batch(rb)
                    if on_chunk is not None:
                        on_chunk(result.rows_in)
                if staged is None:  # no records at all: the file still gets its columns
                    staged = _staged_writer(staged_path, self._transform.output_schema())
            finally:
                if staged is not None:
                    staged.close()
            rejects_writer.close()
        return result

    def _stream(
        self,
        batches: Iterator[pa.RecordBatch],
        source: BinaryIO,
        job: FileJob,
        progress: Callable[[Progress], None] | None,
        progress_every: float,
    ) -> FileResult:
        """A file chunk by chunk, the unique values carried from chunk to chunk, reporting progress
        every ``progress_every`` seconds."""
        started = last_report = time.monotonic()
        bytes_total = job.source.stat().st_size
        transform = self._transform
        transform.reset()

        def pieces() -> Iterator[tuple[int, pa.Table, pa.Table]]:
            for batch in batches:
                yield (batch.num_rows, *transform.apply(batch))

        def on_chunk(records: int) -> None:
            nonlocal last_report
            now = time.monotonic()
            if progress is not None and now - last_report >= progress_every:
                last_report = now
                progress(Progress(records, _position(source, bytes_total), bytes_total, now - started))

        result = self._write_outputs(pieces(), job.staged, job.rejects, on_chunk)
        result.bytes_in = bytes_total
        result.seconds = time.monotonic() - started
        if progress is not None:
            progress(Progress(result.rows_in, bytes_total, bytes_total, result.seconds))
        return result

    def transform_file(
        self,
        source_path: Path,
        staged_path: Path,
        rejects_path: Path,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Callable[[Progress], None] | None = None,
        progress_every: float = 5.0,
        limits: ReadLimits | None = None,
    ) -> FileResult:
        """Transform one local inbound file, reporting progress every ``progress_every`` seconds.

        A file that breaks ``limits`` as a whole raises FormatError (see ReadLimits).
        """
        job = FileJob(source_path, staged_path, rejects_path)
        with self._reading(source_path, chunk_size, limits) as (source, batches):
            return self._stream(batches, source, job, progress, progress_every)

    def close(self) -> None:
        self._transform.close()

    def __enter__(self) -> TransformSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transform_file(
    spec: VendorSpec,
    source_path: Path,
    staged_path: Path,
    rejects_path: Path,
    *,
    keys: Mapping[str, bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 5.0,
    limits: ReadLimits | None = None,
    **connection: Unpack[ConnectionOptions],
) -> FileResult:
    """One file through a session of its own (see TransformSession.transform_file)."""
    with TransformSession(spec, keys, **connection) as session:
        return session.transform_file(
            source_path,
            staged_path,
            rejects_path,
            chunk_size=chunk_size,
            progress=progress,
            progress_every=progress_every,
            limits=limits,
        )


def _whole_file(
    batches: Iterator[pa.RecordBatch], chunk_size: int, schema: pa.Schema
) -> tuple[pa.RecordBatch | None, Iterator[pa.RecordBatch]]:
    """(the file's only batch, nothing left) when the file fits in one chunk; else (None, all its
    batches, the ones read here first)."""
    first = next(batches, None)
    if first is None:
        return pa.RecordBatch.from_pylist([], schema=schema), iter(())
    if first.num_rows == chunk_size:  # readers fill every chunk but the last: there may be more
        return None, itertools.chain([first], batches)
    second = next(batches, None)
    if second is None:
        return first, iter(())
    return None, itertools.chain([first, second], batches)


_DONE = object()


def read_ahead(batches: Iterable[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Yield ``batches`` while a thread reads up to ``depth`` more.

    Parsing (pyarrow) and the chunk query (DuckDB) both release the GIL, so the next chunk is read
    on the second core while this one is transformed. An error of the reader is raised here, after
    the batches read before it, as without the thread.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, raised there)
            hand_over(exc)
            return
        hand_over(_DONE)

    reader = threading.Thread(target=read, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _position(source: BinaryIO, bytes_total: int) -> int:
    try:
        return min(source.tell(), bytes_total)
    except (OSError, ValueError):
        return 0


def iter_parquet_batches(path: Path, batch_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[pa.RecordBatch]:
    """Staged records back out, a batch at a time."""
    # pre_buffer=False: pre-buffering read ahead across row groups, ~400 MB on a 5M-record file.
    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_size)
