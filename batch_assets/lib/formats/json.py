"""JSON: a top-level array of objects (streamed with ijson) and JSON lines (one object per line, orjson)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from itertools import accumulate
from typing import Any, BinaryIO

import ijson
import orjson
import pyarrow as pa

from batch_assets.lib.formats.common import (
    DEFAULT_LIMITS,
    UTF8_BOM,
    FormatError,
    ReadLimits,
    RowBuffer,
    as_text,
    bounded_lines,
    strip_bom,
)
from batch_assets.lib.specs.model import JsonFormat, JsonLinesFormat

READ_SIZE = 1 << 16
NOT_AN_OBJECT = "record is not a JSON object"

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]  # depth change per byte


class _DepthGauge:
    """Follows the nesting depth of JSON text chunk by chunk without parsing it, at C speed.

    ijson builds a prefix string per open level, so nesting costs time and memory quadratic in its
    depth (20,000 levels, 40 KB of text: 0.8 GB and seconds); the gauge stops such a file before
    the parser sees the chunk. Escapes are dropped first, then everything but quotes and
    brackets, then whole strings: what is left are the brackets that count (~100 MB/s).
    """

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self._carry = b""  # a backslash at the end of the last chunk: it escapes the next byte

    def feed(self, chunk: bytes) -> int:
        """Take the next chunk; return the deepest level reached in it."""
        data = self._carry + chunk
        odd = (len(data) - len(data.rstrip(b"\\"))) % 2
        self._carry, data = (b"\\", data[:-1]) if odd else (b"", data)
        # Dropping two adjacent quotes keeps every bracket inside or outside a string as it was, and
        # takes most of the work off the regular expression (most strings hold no bracket).
        marks = _ESCAPE.sub(b"", data).translate(None, _NOT_STRUCTURE).replace(b'""', b"")
        if self.in_string:
            end = marks.find(b'"')
            if end < 0:
                return self.depth
            marks, self.in_string = marks[end + 1 :], False
        marks = _STRING.sub(b"", marks)
        if (start := marks.find(b'"')) >= 0:
            marks, self.in_string = marks[:start], True
        if not marks:
            return self.depth
        levels = list(accumulate(map(_STEP.__getitem__, marks), initial=self.depth))
        self.depth = levels[-1]
        return max(levels)


def _ijson_backend() -> Any:
    try:
        return ijson.get_backend("yajl2_c")
    except ImportError:
        return ijson


def pick(record: Any, fields: Sequence[str]) -> tuple[list[str | None] | None, str | None]:
    """The wanted fields of one decoded record as text, and the reason when it cannot be used."""
    if not isinstance(record, dict):
        return None, NOT_AN_OBJECT
    values: list[str | None] = []
    nested: list[str] = []
    for name in fields:
        value = record.get(name)
        if value is None or isinstance(value, str):
            values.append(value)
        elif isinstance(value, bool):
            values.append("true" if value else "false")
        elif isinstance(value, int | float | Decimal):
            values.append(str(value))
        else:
            values.append(None)
            nested.append(name)
    if nested:
        return values, f"nested value in {', '.join(nested)}"
    return values, None


def read_json(
    fmt: JsonFormat, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[pa.RecordBatch]:
    buffer = RowBuffer(fields)
    found = ijson.sendable_list()
    parser = _ijson_backend().items_coro(found, "item", use_float=False)
    gauge = _DepthGauge()
    started = False
    record_no = 0
    since_record = 0  # bytes fed since the chunk where the last record ended: the open record's size, at most
    try:
        while chunk := source.read(READ_SIZE):
            if not started:
                chunk = chunk.lstrip() if not chunk.startswith(UTF8_BOM) else chunk[len(UTF8_BOM) :].lstrip()
                if not chunk:
                    continue
                if not chunk.startswith(b"["):
                    raise FormatError("JSON file does not hold an array at the top level")
                started = True
            if gauge.feed(chunk) > limits.max_depth:
                raise FormatError(f"JSON file is {limits.too_deep()}")
            parser.send(chunk)
            since_record = 0 if found else since_record + len(chunk)
            if since_record > limits.max_record_bytes:
                raise FormatError(f"JSON file: a {limits.too_long()}")
            for record in found:
                record_no += 1
                values, error = pick(record, fields)
                buffer.add(record_no, None, error, values)
                if len(buffer) >= chunk_size:
                    yield buffer.flush()
            del found[:]
        if started:
            parser.close()
    except ijson.JSONError as exc:
        # yajl's message goes on to quote the text around the error, which can hold personal data.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(f"JSON file is not valid or is truncated: {reason}") from exc
    if len(buffer):
        yield buffer.flush()


def read_json_lines(
    fmt: JsonLinesFormat, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[pa.RecordBatch]:
    buffer = RowBuffer(fields)
    record_no = 0
    for line_no, line in enumerate(bounded_lines(source, limits.max_record_bytes), start=1):
        if line is None:
            record_no += 1
            buffer.add(record_no, line_no, limits.too_long(), None)
            if len(buffer) >= chunk_size:
                yield buffer.flush()
            continue
        if line_no == 1:
            line = strip_bom(line)
        if not line.strip():
            continue
        record_no += 1
        if _too_deep(line, limits.max_depth):
            values, error = None, limits.too_deep()
        else:
            try:
                values, error = pick(orjson.loads(line), fields)
            except orjson.JSONDecodeError as exc:
                values, error = None, f"not valid JSON (column {exc.colno})"
        buffer.add(record_no, line_no, error, values)
        if len(buffer) >= chunk_size:
            yield buffer.flush()
    if len(buffer):
        yield buffer.flush()


def _too_deep(line: bytes, limit: int) -> bool:
    # Counting brackets is cheap and almost always settles it; the gauge handles the rest.
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    return _DepthGauge().feed(line) > limit


# ---------------------------------------------------------------- writing


def _json_values(column: pa.Array) -> list[Any]:
    """Python values orjson writes as the right JSON type; decimals go in verbatim as numbers."""
    kind = column.type
    if pa.types.is_decimal(kind):
        return [None if v is None else orjson.Fragment(v) for v in as_text(column).to_pylist()]
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return column.to_pylist()
    return as_text(column).to_pylist()


def _encoded_records(batch: pa.RecordBatch, names: list[str]) -> list[bytes]:
    columns = [_json_values(batch.column(name)) for name in names]
    return [orjson.dumps(dict(zip(names, values, strict=True))) for values in zip(*columns, strict=True)]


class JsonArrayWriter:
    """Writes ``[`` on open, one object per line, and ``]`` on close: valid JSON even with no records."""

    def __init__(self, fmt: JsonFormat, sink: BinaryIO, schema: pa.Schema) -> None:
        self._sink = sink
        self._names = schema.names
        self._first = True
        sink.write((UTF8_BOM if fmt.encoding == "utf-8-sig" else b"") + b"[\n")

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        separator = b"" if self._first else b",\n"
        self._sink.write(separator + b",\n".join(_encoded_records(batch, self._names)))
        self._first = False

    def close(self) -> None:
        self._sink.write(b"]\n" if self._first else b"\n]\n")


class JsonLinesWriter:
    def __init__(self, fmt: JsonLinesFormat, sink: BinaryIO, schema: pa.Schema) -> None:
        self._sink = sink
        self._names = schema.names
        if fmt.encoding == "utf-8-sig":
            sink.write(UTF8_BOM)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._sink.write(b"\n".join(_encoded_records(batch, self._names)) + b"\n")

    def close(self) -> None:
        pass
