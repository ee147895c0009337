"""Fixed-width: one record per line, fields cut by column. Positions and widths count characters."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from batch_assets.lib.formats.common import (
    DEFAULT_LIMITS,
    UTF8_BOM,
    ReadLimits,
    body_encoding,
    bounded_lines,
    encode_text,
    has_match,
    reader_schema,
    strip_bom,
    text_columns,
)
from batch_assets.lib.specs.model import FixedWidthField, FixedWidthFormat

NOT_DECODABLE = "line is not valid {encoding}"
NO_TEXT = pa.scalar(None, pa.string())


def _decode(lines: list[bytes], encoding: str) -> tuple[pa.Array, pa.Array]:
    """Lines as text, plus a boolean mask of the lines that could not be decoded (left null)."""
    try:
        text = b"\n".join(lines).decode(encoding).split("\n")
        return pa.array(text, pa.string()), pa.repeat(pa.scalar(False), len(lines))
    except UnicodeDecodeError:
        values: list[str | None] = []
        for line in lines:
            try:
                values.append(line.decode(encoding))
            except UnicodeDecodeError:
                values.append(None)
        text_array = pa.array(values, pa.string())
        return text_array, pc.is_null(text_array)


def read_fixed_width(
    fmt: FixedWidthFormat, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[pa.RecordBatch]:
    layout = {field.name: field for field in fmt.fields}
    width = fmt.line_width
    encoding = body_encoding(fmt.encoding)
    schema = reader_schema(fields)
    lines = islice(enumerate(bounded_lines(source, limits.max_record_bytes), start=1), fmt.skip_lines, None)
    record_no = 0
    while chunk := list(islice(lines, chunk_size)):
        line_nos: list[int] = []
        raw: list[bytes] = []
        long_rows: list[bool] = []
        for line_no, line in chunk:
            if line is None:  # too long: a record with an error, its bytes already skipped
                line_nos.append(line_no)
                raw.append(b"")
                long_rows.append(True)
                continue
            line = line.rstrip(b"\r\n")
            if line_no == 1:
                line = strip_bom(line)
            if line:  # an empty line holds no record
                line_nos.append(line_no)
                raw.append(line)
                long_rows.append(False)
        if not raw:
            continue
        text, undecodable = _decode(raw, encoding)
        too_long = pa.array(long_rows, pa.bool_())
        short = pc.fill_null(pc.less(pc.utf8_length(text), width), False)
        unusable = pc.or_(pc.or_(short, undecodable), too_long)
        errors = pc.if_else(
            too_long,
            limits.too_long(),
            pc.if_else(
                undecodable,
                NOT_DECODABLE.format(encoding=fmt.encoding),
                pc.if_else(short, f"line is shorter than the layout's {width} characters", NO_TEXT),
            ),
        )
        columns = [_cut(text, layout.get(name), unusable) for name in fields]
        n = len(raw)
        record_nos = pa.array(range(record_no + 1, record_no + n + 1), pa.int64())
        record_no += n
        yield pa.RecordBatch.from_arrays([record_nos, pa.array(line_nos, pa.int64()), errors, *columns], schema=schema)


def _cut(text: pa.Array, field: FixedWidthField | None, unusable: pa.Array) -> pa.Array:
    if field is None:
        return pa.nulls(len(text), pa.string())
    value = pc.utf8_slice_codeunits(text, field.start - 1, field.start - 1 + field.width)
    value = pc.utf8_rtrim(value, " ") if field.align == "left" else pc.utf8_ltrim(value, " ")
    # Padding only: nothing was there. Unusable lines get no values at all.
    return pc.if_else(pc.or_(unusable, pc.equal(value, "")), NO_TEXT, value)


# ---------------------------------------------------------------- writing


class FixedWidthWriter:
    """Pads each field to its width; a value that does not fit raises instead of being cut."""

    def __init__(self, fmt: FixedWidthFormat, sink: BinaryIO, schema: pa.Schema) -> None:
        self._fmt = fmt
        self._sink = sink
        self._layout = sorted(fmt.fields, key=lambda field: field.start)
        self._names = [field.name for field in self._layout if field.name in schema.names]
        if fmt.encoding == "utf-8-sig":
            sink.write(UTF8_BOM)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        columns = text_columns(batch, self._names)
        parts: list[pa.Array | str] = []
        position = 0
        for field in self._layout:
            parts.append(" " * (field.start - 1 - position))
            position = field.start - 1 + field.width
            column = columns.get(field.name)
            if column is None:
                parts.append(" " * field.width)
                continue
            column = pc.fill_null(column, "")
            if pc.max(pc.utf8_length(column)).as_py() > field.width:
                raise ValueError(f"field '{field.name}' has a value longer than its width {field.width}")
            if has_match(column, "[\\r\\n]"):
                raise ValueError(f"field '{field.name}' has a line break, which fixed-width cannot hold")
            pad = pc.utf8_rpad if field.align == "left" else pc.utf8_lpad
            parts.append(pad(column, width=field.width, padding=" "))
        lines = pc.binary_join_element_wise(pa.repeat(pa.scalar(""), batch.num_rows), *parts, "")
        end = self._fmt.line_terminator
        text = end.join(lines.to_pylist()) + end
        self._sink.write(encode_text(text, self._fmt.encoding, columns))

    def close(self) -> None:
        pass
