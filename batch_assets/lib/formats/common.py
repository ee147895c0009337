"""What every reader and writer shares: bookkeeping columns, errors and text rendering."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RECORD_NO = "_record_no"
LINE_NO = "_line_no"
PARSE_ERROR = "_parse_error"

UTF8_BOM = b"\xef\xbb\xbf"


class FormatError(ValueError):
    """The file as a whole cannot be read in the declared format (not one bad record)."""


@dataclass(frozen=True)
class ReadLimits:
    """What one inbound file may hold, so a hostile or broken file costs bounded time and memory.

    A file over ``max_file_bytes`` is refused whole (FormatError). A record over
    ``max_record_bytes`` is a parse-error row where the format can resume after it (JSON lines,
    fixed-width, CSV values) and refuses the file where it cannot (a JSON array, XML, a CSV row
    pyarrow cannot hold in one block). Nesting deeper than ``max_depth`` (JSON arrays and objects,
    XML elements) refuses the file, or rejects the line in JSON lines.
    """

    max_file_bytes: int = 4 << 30
    max_record_bytes: int = 1 << 20
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_record_bytes", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def too_long(self) -> str:
        return f"record is longer than the {self.max_record_bytes:,}-byte limit"

    def too_deep(self) -> str:
        return f"nested deeper than the {self.max_depth}-level limit"


DEFAULT_LIMITS = ReadLimits()


def check_file_size(source: BinaryIO, limits: ReadLimits) -> None:
    """Refuse a file over the size limit before reading it (when its size can be known)."""
    try:
        size = os.fstat(source.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        try:
            here = source.tell()
            size = source.seek(0, os.SEEK_END)
            source.seek(here)
        except (AttributeError, OSError, ValueError):
            return
    if size > limits.max_file_bytes:
        raise FormatError(f"file is {size:,} bytes, over the {limits.max_file_bytes:,}-byte limit")


def bounded_lines(source: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """The lines of ``source`` with their terminators; None for a line longer than ``max_bytes``
    (terminator not counted), whose bytes are skipped without being held in memory."""
    while line := source.readline(max_bytes + 2):
        if len(line.rstrip(b"\r\n")) <= max_bytes:
            yield line
            continue
        while not line.endswith(b"\n") and (line := source.readline(1 << 16)):
            pass
        yield None


class RecordWriter(Protocol):
    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None:
        """Write trailers (closing bracket or end tags); the sink stays open."""
        ...


def reader_schema(fields: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [
            pa.field(RECORD_NO, pa.int64()),
            pa.field(LINE_NO, pa.int64()),
            pa.field(PARSE_ERROR, pa.string()),
            *(pa.field(name, pa.string()) for name in fields),
        ]
    )


class RowBuffer:
    """Collects records one by one (for the formats parsed in Python) and hands them out as a batch."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.schema = reader_schema(fields)
        self._width = len(fields)
        self._rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, record_no: int, line_no: int | None, error: str | None, values: Sequence[str | None] | None) -> None:
        self._rows.append((record_no, line_no, error, *(values or (None,) * self._width)))

    def flush(self) -> pa.RecordBatch:
        rows, self._rows = self._rows, []
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(self.schema)
        arrays = [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def rechunk(batches: Iterable[pa.RecordBatch], chunk_size: int) -> Iterator[pa.RecordBatch]:
    """Re-cut batches of any size into batches of exactly ``chunk_size`` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows < chunk_size:
            continue
        merged = pa.concat_batches(pending)
        offset = 0
        while merged.num_rows - offset >= chunk_size:
            yield merged.slice(offset, chunk_size)
            offset += chunk_size
        pending = [merged.slice(offset)] if offset < merged.num_rows else []
        pending_rows = merged.num_rows - offset
    if pending_rows:
        yield pa.concat_batches(pending)


def strip_bom(first_line: bytes) -> bytes:
    return first_line[len(UTF8_BOM) :] if first_line.startswith(UTF8_BOM) else first_line


# ---------------------------------------------------------------- writing


def as_text(array: pa.Array) -> pa.Array:
    """Render a typed column as strings: ISO dates and timestamps, exact decimals, true/false."""
    if pa.types.is_string(array.type):
        return array
    text = array.cast(pa.string())
    if pa.types.is_timestamp(array.type):
        # Arrow writes "2024-01-31 10:00:00.000000Z"; make it ISO 8601 and drop an all-zero fraction.
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
        text = pc.replace_substring_regex(text, r"\.0+(Z?)$", r"\1")
    return text


def text_columns(batch: pa.RecordBatch, names: Sequence[str]) -> dict[str, pa.Array]:
    return {name: as_text(batch.column(name)) for name in names}


def has_match(array: pa.Array, pattern: str) -> bool:
    return pc.any(pc.match_substring_regex(array, pattern)).as_py() is True


def char_class(chars: Iterable[str]) -> str:
    """An RE2 character class matching exactly ``chars``, whatever they are."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def body_encoding(encoding: str) -> str:
    """The codec for the text after the BOM: Python's utf-8-sig would repeat the BOM on every write."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


def utf8_bytes(strings: pa.Array) -> memoryview:
    """The concatenated bytes of a string array without nulls, straight from its data buffer."""
    if strings.null_count:
        raise ValueError("a null in text to write")
    _, offsets, data = strings.buffers()
    if data is None or not len(strings):
        return memoryview(b"")
    width = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[[strings.offset, strings.offset + len(strings)]]
    return memoryview(data)[int(bounds[0]) : int(bounds[1])]


def encode_text(text: str, encoding: str, columns: dict[str, pa.Array]) -> bytes:
    """Encode a rendered batch; name the field whose value the encoding cannot represent."""
    try:
        return text.encode(body_encoding(encoding))
    except UnicodeEncodeError:
        outside = "[^\\x{0}-\\x{ff}]" if encoding == "latin-1" else "[^\\x{0}-\\x{7f}]"
        for name, column in columns.items():
            if has_match(column, outside):
                raise ValueError(f"field '{name}' has a value that cannot be encoded in {encoding}") from None
        raise ValueError(f"the output cannot be encoded in {encoding}") from None
