"""Readers and writers for vendor file formats, streaming Arrow record batches in bounded memory.

``read_batches`` yields batches of ``[_record_no, _line_no, _parse_error, *fields]`` (fields as
text) where every record of the file appears exactly once, parsed or with its parse error.
``open_writer`` renders typed batches in the format and streams them to a binary sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

from batch_assets.lib.formats.common import (
    LINE_NO,
    PARSE_ERROR,
    RECORD_NO,
    FormatError,
    ReadLimits,
    RecordWriter,
    check_file_size,
)
from batch_assets.lib.formats.csv import CsvWriter, read_csv
from batch_assets.lib.formats.fixed_width import FixedWidthWriter, read_fixed_width
from batch_assets.lib.formats.json import JsonArrayWriter, JsonLinesWriter, read_json, read_json_lines
from batch_assets.lib.formats.xml import XmlWriter, read_xml
from batch_assets.lib.specs.model import CsvFormat, FixedWidthFormat, JsonFormat, JsonLinesFormat, XmlFormat

Format = CsvFormat | JsonFormat | JsonLinesFormat | XmlFormat | FixedWidthFormat

__all__ = [
    "LINE_NO",
    "PARSE_ERROR",
    "RECORD_NO",
    "Format",
    "FormatError",
    "ReadLimits",
    "RecordWriter",
    "open_writer",
    "read_batches",
]


def read_batches(
    fmt: Format, source: BinaryIO, fields: list[str], chunk_size: int, limits: ReadLimits | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream the records of ``source`` as batches of at most ``chunk_size`` rows.

    Raises FormatError (possibly after some batches) when the file as a whole is unreadable or
    breaks ``limits`` (the defaults of ReadLimits when not given).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    limits = limits or ReadLimits()
    check_file_size(source, limits)
    match fmt:
        case CsvFormat():
            return read_csv(fmt, source, fields, chunk_size, limits)
        case JsonFormat():
            return read_json(fmt, source, fields, chunk_size, limits)
        case JsonLinesFormat():
            return read_json_lines(fmt, source, fields, chunk_size, limits)
        case XmlFormat():
            return read_xml(fmt, source, fields, chunk_size, limits)
        case FixedWidthFormat():
            return read_fixed_width(fmt, source, fields, chunk_size, limits)
    raise TypeError(f"not a format model: {type(fmt).__name__}")


def open_writer(fmt: Format, sink: BinaryIO, schema: pa.Schema) -> RecordWriter:
    """A writer for ``schema``'s batches; headers are written now, trailers by ``close()``."""
    match fmt:
        case CsvFormat():
            return CsvWriter(fmt, sink, schema)
        case JsonFormat():
            return JsonArrayWriter(fmt, sink, schema)
        case JsonLinesFormat():
            return JsonLinesWriter(fmt, sink, schema)
        case XmlFormat():
            return XmlWriter(fmt, sink, schema)
        case FixedWidthFormat():
            return FixedWidthWriter(fmt, sink, schema)
    raise TypeError(f"not a format model: {type(fmt).__name__}")
