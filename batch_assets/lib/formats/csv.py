"""CSV: streamed through pyarrow's CSV reader, written with vectorised quoting."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from batch_assets.lib.formats.common import (
    DEFAULT_LIMITS,
    RECORD_NO,
    UTF8_BOM,
    FormatError,
    ReadLimits,
    body_encoding,
    char_class,
    encode_text,
    reader_schema,
    rechunk,
    text_columns,
    utf8_bytes,
)
from batch_assets.lib.specs.model import CsvFormat

BLOCK_SIZE = 1 << 20  # pyarrow's default; larger blocks cost memory (read-ahead) without speed
NOT_UTF8 = "value is not valid UTF-8"
STRADDLING = "straddling object"  # pyarrow's message for a row that does not fit in one block
RAGGED_NOT_UTF8 = re.compile(r"CSV parse error: (Row #\d+: Expected \d+ columns, got \d+)")  # no row text


class _Rejected:
    """Ragged rows reported by pyarrow's invalid-row handler, waiting for their place in the output."""

    def __init__(self, rows_before_data: int) -> None:
        self._rows_before_data = rows_before_data
        self.pending: deque[tuple[int | None, str]] = deque()

    def __call__(self, row: pa_csv.InvalidRow) -> str:
        # row.number counts CSV rows (skipped lines and header included, blank lines not), so it
        # gives the record's exact ordinal; it is None only when pyarrow parses in parallel.
        record_no = None if row.number is None else row.number - self._rows_before_data
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        self.pending.append((record_no, reason))
        return "skip"


class _QuoteCounter:
    """Counts quote characters as pyarrow reads the file.

    pyarrow reads a quoted value left open up to the end of the file, silently merging every record
    after it into one value. In RFC 4180 CSV every quote opens, closes or is doubled, so an odd count
    means exactly that (or a bare quote inside an unquoted value, which the RFC does not allow).
    """

    def __init__(self, source: BinaryIO, quote: bytes) -> None:
        self._source = source
        self._quote = quote
        self.count = 0

    @property
    def closed(self) -> bool:
        return self._source.closed

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.count += data.count(self._quote)
        return data


def read_csv(
    fmt: CsvFormat, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits = DEFAULT_LIMITS
) -> Iterator[pa.RecordBatch]:
    return rechunk(_read_blocks(fmt, source, fields, limits), chunk_size)


def _read_blocks(fmt: CsvFormat, source: BinaryIO, fields: list[str], limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    schema = reader_schema(fields)
    wanted = list(dict.fromkeys(fields))
    decoded_by_arrow = fmt.encoding == "latin-1"
    # UTF-8 is read as bytes and validated per value, so one bad byte rejects one record, not the file.
    raw_type = pa.string() if decoded_by_arrow else pa.binary()
    rejected = _Rejected(fmt.skip_lines + int(fmt.header))
    quotes = _QuoteCounter(source, fmt.quote.encode(body_encoding(fmt.encoding)))
    # pyarrow holds a row in one block: the block bounds a row's memory, and must fit the longest allowed.
    block_size = max(BLOCK_SIZE, limits.max_record_bytes)
    try:
        reader = pa_csv.open_csv(
            quotes,
            read_options=pa_csv.ReadOptions(
                use_threads=False,  # keeps row numbers, so ragged rows get their exact record number
                block_size=block_size,
                skip_rows=fmt.skip_lines,
                column_names=None if fmt.header else fields,
                encoding="latin-1" if decoded_by_arrow else "utf8",
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=fmt.delimiter,
                quote_char=fmt.quote,
                newlines_in_values=True,
                invalid_row_handler=rejected,
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                include_missing_columns=True,
                column_types={name: raw_type for name in wanted},
                # An unquoted empty field is null; a quoted "" stays an empty string.
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return
        raise FormatError(f"CSV file cannot be read: {_reason(exc, block_size)}") from exc

    next_no = 1
    while True:
        try:
            block = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise FormatError(f"CSV file cannot be read: {_reason(exc, block_size)}") from exc
        batch, next_no = _place(block, next_no, rejected.pending, schema, fields, validate=not decoded_by_arrow)
        batch = _reject_long_values(batch, limits)
        yield batch
    if rejected.pending:
        yield _rejected_rows(list(rejected.pending), schema)
    if quotes.count % 2:
        raise FormatError(
            f"CSV file has an odd number of {fmt.quote} characters: a quoted value is never closed "
            "(or the file is truncated), so the records after it cannot be told apart"
        )


def _reason(exc: pa.ArrowInvalid, block_size: int) -> str:
    if STRADDLING in str(exc):
        return f"a record is longer than the {block_size:,}-byte block (raise max_record_bytes to read it)"
    # pyarrow hands a ragged row to the handler only as UTF-8 text: one that is not UTF-8 stops the file.
    if ragged := RAGGED_NOT_UTF8.match(str(exc)):
        return f"{ragged.group(1)} and not valid UTF-8, so it cannot be set aside as one rejected record"
    # pyarrow may quote the offending row after a colon; row text can hold personal data.
    return str(exc).split(":", 1)[0]


def _reject_long_values(batch: pa.RecordBatch, limits: ReadLimits) -> pa.RecordBatch:
    """A record whose wanted values together pass max_record_bytes becomes a parse-error row."""
    values = batch.columns[3:]
    if not values or batch.num_rows == 0:
        return batch
    lengths = [pc.fill_null(pc.binary_length(column), 0) for column in values]
    total = lengths[0]
    for length in lengths[1:]:
        total = pc.add(total, length)
    too_long = pc.greater(total, limits.max_record_bytes)
    if not pc.any(too_long).as_py():
        return batch
    errors = pc.if_else(too_long, limits.too_long(), batch.column(2))
    cleared = [pc.if_else(too_long, pa.scalar(None, column.type), column) for column in values]
    return pa.RecordBatch.from_arrays([*batch.columns[:2], errors, *cleared], schema=batch.schema)


def _place(
    block: pa.RecordBatch,
    next_no: int,
    pending: deque[tuple[int | None, str]],
    schema: pa.Schema,
    fields: list[str],
    validate: bool,
) -> tuple[pa.RecordBatch, int]:
    """Number the parsed rows of a block and merge in the ragged rows that fall between them.

    Returns the batch in file order and the record number that follows it.
    """
    end = next_no + block.num_rows
    ragged: list[tuple[int | None, str]] = []
    while pending and (pending[0][0] is None or pending[0][0] < end):
        record_no, reason = pending.popleft()
        ragged.append((record_no, reason))
        if record_no is not None:
            end += 1
    ragged_nos = {no for no, _ in ragged}
    record_nos = pa.array([n for n in range(next_no, end) if n not in ragged_nos], pa.int64())

    columns: dict[str, pa.Array] = {}
    bad_rows: set[int] = set()
    for name in dict.fromkeys(fields):
        column = block.column(name)
        if validate:
            column, bad = _utf8(column)
            bad_rows.update(bad)
        columns[name] = column
    errors = pa.nulls(block.num_rows, pa.string())
    if bad_rows:
        errors = pa.array([NOT_UTF8 if i in bad_rows else None for i in range(block.num_rows)], pa.string())
    parsed = pa.RecordBatch.from_arrays(
        [record_nos, pa.nulls(block.num_rows, pa.int64()), errors, *(columns[name] for name in fields)],
        schema=schema,
    )
    if not ragged:
        return parsed, end
    merged = pa.concat_batches([parsed, _rejected_rows(ragged, schema)])
    order = pc.sort_indices(merged, sort_keys=[(RECORD_NO, "ascending")])
    return merged.take(order), end


def _utf8(column: pa.Array) -> tuple[pa.Array, list[int]]:
    """Bytes to text; values that are not UTF-8 become null and their row indices are returned."""
    try:
        return column.cast(pa.string()), []
    except pa.ArrowInvalid:
        values: list[str | None] = []
        bad: list[int] = []
        for i, value in enumerate(column.to_pylist()):
            try:
                values.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(None)
                bad.append(i)
        return pa.array(values, pa.string()), bad


def _rejected_rows(rows: list[tuple[int | None, str]], schema: pa.Schema) -> pa.RecordBatch:
    n = len(rows)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([no for no, _ in rows], pa.int64()),
            pa.nulls(n, pa.int64()),
            pa.array([reason for _, reason in rows], pa.string()),
            *(pa.nulls(n, pa.string()) for _ in schema.names[3:]),
        ],
        schema=schema,
    )


# ---------------------------------------------------------------- writing


class CsvWriter:
    """Quotes only values that need it (delimiter, quote, line break) and empty strings, so null and ""
    stay distinct: null is written as nothing, "" as a pair of quotes."""

    def __init__(self, fmt: CsvFormat, sink: BinaryIO, schema: pa.Schema) -> None:
        self._fmt = fmt
        self._sink = sink
        self._names = schema.names
        special = {fmt.delimiter, fmt.quote, "\r", "\n"}
        self._special = char_class(special)
        self._special_bytes = [c.encode() for c in special]
        if fmt.encoding == "utf-8-sig":
            sink.write(UTF8_BOM)
        if fmt.header:
            header = {name: pa.array([name]) for name in self._names}
            self._write(header)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._write(text_columns(batch, self._names))

    def close(self) -> None:
        pass

    def _write(self, columns: dict[str, pa.Array]) -> None:
        quoted = [self._quote(column) for column in columns.values()]
        lines = pc.binary_join_element_wise(*quoted, self._fmt.delimiter)
        end = self._fmt.line_terminator
        if body_encoding(self._fmt.encoding) == "utf-8":
            # Arrow strings are UTF-8 already: terminate each line and write the column's bytes as they are.
            self._sink.write(utf8_bytes(pc.binary_join_element_wise(lines, "", end)))
            return
        text = end.join(lines.to_pylist()) + end
        self._sink.write(encode_text(text, self._fmt.encoding, columns))

    def _plain(self, column: pa.Array) -> bool:
        """True when no value can need quotes: no special character in the column's bytes and no
        value of length 0 (empty strings need quotes; nulls have length 0 too, so they take the
        exact check). A byte search costs a fraction of the per-value regex it spares."""
        if not pa.types.is_string(column.type) or not len(column) or column.null_count:
            return False
        if pc.min(pc.binary_length(column)).as_py() == 0:
            return False
        text = utf8_bytes(column).tobytes()
        return not any(special in text for special in self._special_bytes)

    def _quote(self, column: pa.Array) -> pa.Array:
        if self._plain(column):
            return pc.fill_null(column, "")  # most columns: nothing to quote
        q = self._fmt.quote
        needs_quotes = pc.or_(pc.match_substring_regex(column, self._special), pc.equal(column, ""))
        if not pc.any(needs_quotes).as_py():
            return pc.fill_null(column, "")
        quoted = pc.binary_join_element_wise(q, pc.replace_substring(column, q, q + q), q, "")
        return pc.fill_null(pc.if_else(needs_quotes, quoted, column), "")
