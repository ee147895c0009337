"""Readers and writers of the vendor file formats, on real files."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from batch_assets.lib.formats import (
    LINE_NO,
    PARSE_ERROR,
    RECORD_NO,
    FormatError,
    open_writer,
    read_batches,
)
from batch_assets.lib.specs.model import CsvFormat, FixedWidthFormat, JsonFormat, JsonLinesFormat, XmlFormat

CSV = CsvFormat(kind="csv")
JSON = JsonFormat(kind="json")
JSONL = JsonLinesFormat(kind="jsonl")
ORDERS_XML = XmlFormat(kind="xml", record_path="orders/order", attributes=["id"])
LAYOUT = FixedWidthFormat(
    kind="fixed_width",
    fields=[
        {"name": "id", "start": 1, "width": 4, "align": "right"},
        {"name": "name", "start": 6, "width": 30},
    ],
)


def write(tmp_path: Path, data: bytes, name: str = "input") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_batch_list(fmt, path: Path, fields: list[str], chunk_size: int = 1000) -> list[pa.RecordBatch]:
    with path.open("rb") as source:
        return list(read_batches(fmt, source, fields, chunk_size))


def read_rows(fmt, path: Path, fields: list[str], chunk_size: int = 1000) -> list[dict]:
    return [row for batch in read_batch_list(fmt, path, fields, chunk_size) for row in batch.to_pylist()]


def values(rows: list[dict], *fields: str) -> list[tuple]:
    return [tuple(row[f] for f in fields) for row in rows]


def errors(rows: list[dict]) -> list[str | None]:
    return [row[PARSE_ERROR] for row in rows]


def write_records(fmt, path: Path, batches: list[pa.RecordBatch]) -> Path:
    with path.open("wb") as sink:
        writer = open_writer(fmt, sink, batches[0].schema)
        for batch in batches:
            writer.write_batch(batch)
        writer.close()
    return path


def text_batch(**columns: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({name: pa.array(col, pa.string()) for name, col in columns.items()})


# ---------------------------------------------------------------- reader contract


def test_batches_have_the_bookkeeping_columns_then_the_wanted_fields_as_strings(tmp_path):
    """The engine selects columns by these exact names and types."""
    path = write(tmp_path, b"id,name,extra\n1,Ann,x\n")
    (batch,) = read_batch_list(CSV, path, ["name", "missing"])
    assert batch.schema == pa.schema(
        [
            (RECORD_NO, pa.int64()),
            (LINE_NO, pa.int64()),
            (PARSE_ERROR, pa.string()),
            ("name", pa.string()),
            ("missing", pa.string()),
        ]
    )
    assert batch.to_pylist() == [{RECORD_NO: 1, LINE_NO: None, PARSE_ERROR: None, "name": "Ann", "missing": None}]


def ten_records(fmt, path: Path) -> Path:
    batch = text_batch(id=[str(i) for i in range(1, 11)], name=[f"name {i}" for i in range(1, 11)])
    return write_records(fmt, path, [batch])


@pytest.mark.parametrize(
    "fmt", [CSV, JSON, JSONL, ORDERS_XML, LAYOUT], ids=["csv", "json", "jsonl", "xml", "fixed_width"]
)
def test_chunk_size_bounds_every_batch_and_records_stay_numbered_in_order(tmp_path, fmt):
    """Memory is bounded by chunk_size, and record numbers tie rejects back to the file."""
    path = ten_records(fmt, tmp_path / "ten")
    batches = read_batch_list(fmt, path, ["id", "name"], chunk_size=3)
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    rows = [row for b in batches for row in b.to_pylist()]
    assert [row[RECORD_NO] for row in rows] == list(range(1, 11))
    assert [row["id"] for row in rows] == [str(i) for i in range(1, 11)]
    assert errors(rows) == [None] * 10


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        (CSV, b""),
        (CSV, b"id,name\n"),
        (CSV, b"id,name"),
        (CsvFormat(kind="csv", header=False), b""),
        (JSON, b""),
        (JSON, b" [ ] \n"),
        (JSONL, b""),
        (JSONL, b"\n\n"),
        (ORDERS_XML, b""),
        (ORDERS_XML, b'<?xml version="1.0"?>\n<orders/>\n'),
        (LAYOUT, b""),
    ],
    ids=[
        "csv",
        "csv-header",
        "csv-header-no-eol",
        "csv-no-header",
        "json",
        "json-empty-array",
        "jsonl",
        "jsonl-blank",
        "xml",
        "xml-root-only",
        "fixed_width",
    ],
)
def test_empty_and_header_only_files_yield_no_rows(tmp_path, fmt, data):
    """A vendor may send a file with nothing in it; that is zero records, not a failure."""
    assert read_rows(fmt, write(tmp_path, data), ["id", "name"]) == []


# ---------------------------------------------------------------- CSV


def test_csv_reads_fields_by_header_name_whatever_their_order(tmp_path):
    path = write(tmp_path, b"b,a,c\n2,1,3\n5,4,6\n")
    assert values(read_rows(CSV, path, ["a", "b"]), "a", "b") == [("1", "2"), ("4", "5")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_csv_with_a_utf8_bom_reads_the_first_header_name_cleanly(tmp_path, encoding):
    """Excel writes a BOM; it must not end up glued to the first column name."""
    path = write(tmp_path, "\ufeffid,name\n1,Zoë\n".encode())
    fmt = CsvFormat(kind="csv", encoding=encoding)
    assert values(read_rows(fmt, path, ["id", "name"]), "id", "name") == [("1", "Zoë")]


def test_latin1_csv_is_decoded_to_text(tmp_path):
    path = write(tmp_path, "id,name\r\n1,Françoise\r\n2,Jürgen\r\n".encode("latin-1"))
    fmt = CsvFormat(kind="csv", encoding="latin-1")
    assert values(read_rows(fmt, path, ["name"]), "name") == [("Françoise",), ("Jürgen",)]


def test_csv_quoted_delimiters_quotes_and_newlines_stay_inside_one_value_with_crlf(tmp_path):
    path = write(tmp_path, b'id,note\r\n1,"a, b"\r\n2,"say ""hi"""\r\n3,"two\r\nlines"\r\n4,plain\r\n')
    rows = read_rows(CSV, path, ["id", "note"])
    assert values(rows, RECORD_NO, "note") == [
        (1, "a, b"),
        (2, 'say "hi"'),
        (3, "two\r\nlines"),
        (4, "plain"),
    ]


def test_ragged_csv_rows_become_parse_error_rows_in_file_order(tmp_path):
    """Every record appears exactly once: a row with the wrong field count is rejected, not dropped."""
    path = write(tmp_path, b'id,name\n1,a\n2\n"3\nstill 3",c\n4,d,extra\n5,e\n6\n')
    rows = read_rows(CSV, path, ["id", "name"], chunk_size=2)
    assert len(rows) == 6
    assert values(rows, RECORD_NO, "id", PARSE_ERROR) == [
        (1, "1", None),
        (2, None, "expected 2 fields, found 1"),
        (3, "3\nstill 3", None),
        (4, None, "expected 2 fields, found 3"),
        (5, "5", None),
        (6, None, "expected 2 fields, found 1"),
    ]


def test_csv_parse_errors_do_not_quote_the_row(tmp_path):
    """Parse errors land in reject files and logs; the row itself may hold personal data."""
    path = write(tmp_path, b"id,email\n1,ann@example.com,extra\n")
    (row,) = read_rows(CSV, path, ["id", "email"])
    assert "ann@example.com" not in row[PARSE_ERROR]


def test_headerless_csv_takes_field_names_from_the_field_list(tmp_path):
    path = write(tmp_path, b"1,Ann\n2,Bob\n")
    fmt = CsvFormat(kind="csv", header=False)
    assert values(read_rows(fmt, path, ["id", "name"]), RECORD_NO, "id", "name") == [
        (1, "1", "Ann"),
        (2, "2", "Bob"),
    ]


def test_csv_skip_lines_drops_the_preamble_before_the_header(tmp_path):
    path = write(tmp_path, b"Daily extract\ngenerated 2024-01-31\nid;name\n1;Ann\n")
    fmt = CsvFormat(kind="csv", delimiter=";", skip_lines=2)
    assert values(read_rows(fmt, path, ["id", "name"]), RECORD_NO, "id", "name") == [(1, "1", "Ann")]


def test_unquoted_empty_csv_field_is_null_and_quoted_empty_is_an_empty_string(tmp_path):
    path = write(tmp_path, b'id,name\n1,\n2,""\n')
    assert values(read_rows(CSV, path, ["name"]), "name") == [(None,), ("",)]


def test_an_undecodable_byte_in_utf8_csv_rejects_only_that_record(tmp_path):
    path = write(tmp_path, b"id,name\n1,Ann\n2,B\xffb\n3,Cy\n")
    rows = read_rows(CSV, path, ["id", "name"])
    assert values(rows, "id", "name") == [("1", "Ann"), ("2", None), ("3", "Cy")]
    assert errors(rows) == [None, "value is not valid UTF-8", None]


def test_a_csv_quote_that_is_never_closed_is_a_format_error(tmp_path):
    """pyarrow would read the rest of the file as one value, losing every record after it."""
    path = write(tmp_path, b'id,name\n1,"Ann\n2,Bob\n3,Cy\n')
    with pytest.raises(FormatError, match="never closed"):
        read_rows(CSV, path, ["id", "name"])


# ---------------------------------------------------------------- JSON and JSON lines


def test_json_array_scalars_become_text_keeping_the_number_as_written(tmp_path):
    path = write(tmp_path, b'[{"id": 1, "price": 12.50, "big": 1e3, "ok": true, "no": false, "gone": null}]')
    rows = read_rows(JSON, path, ["id", "price", "big", "ok", "no", "gone", "absent"])
    assert values(rows, "id", "price", "big", "ok", "no", "gone", "absent") == [
        ("1", "12.50", "1E+3", "true", "false", None, None)
    ]


def test_json_array_with_a_bom_is_read(tmp_path):
    path = write(tmp_path, b'\xef\xbb\xbf[{"id": "a"}]')
    assert values(read_rows(JsonFormat(kind="json", encoding="utf-8-sig"), path, ["id"]), "id") == [("a",)]


def test_a_nested_json_value_in_a_wanted_field_is_a_parse_error_row(tmp_path):
    path = write(tmp_path, b'[{"id": 1, "tags": ["a"]}, {"id": 2, "tags": {"k": 1}}, {"id": 3, "tags": "a"}]')
    rows = read_rows(JSON, path, ["id", "tags"])
    assert errors(rows) == ["nested value in tags", "nested value in tags", None]
    assert values(rows, "id") == [("1",), ("2",), ("3",)]


def test_a_nested_value_in_a_field_nobody_wants_is_ignored(tmp_path):
    path = write(tmp_path, b'[{"id": 1, "meta": {"k": [1, 2]}}]')
    assert errors(read_rows(JSON, path, ["id"])) == [None]


def test_a_json_array_element_that_is_not_an_object_is_a_parse_error_row(tmp_path):
    path = write(tmp_path, b'[{"id": 1}, 42, "text", [1], {"id": 5}]')
    rows = read_rows(JSON, path, ["id"])
    assert values(rows, RECORD_NO, "id") == [(1, "1"), (2, None), (3, None), (4, None), (5, "5")]
    assert errors(rows)[1:4] == ["record is not a JSON object"] * 3


@pytest.mark.parametrize(
    "data",
    [b'[{"id": 1}, {"id": 2', b'[{"id": 1}, {"id": 2}', b'[{"id": 1}] trailing', b"not json"],
    ids=["truncated-object", "truncated-array", "trailing-garbage", "not-json"],
)
def test_truncated_or_broken_json_is_a_format_error(tmp_path, data):
    with pytest.raises(FormatError):
        read_rows(JSON, write(tmp_path, data), ["id"])


def test_a_json_object_at_the_top_level_is_a_format_error_not_zero_records(tmp_path):
    """``items(..., 'item')`` would find nothing in an object; that must not pass as an empty file."""
    with pytest.raises(FormatError, match="array"):
        read_rows(JSON, write(tmp_path, b'{"id": 1}'), ["id"])


def test_json_lines_skip_blank_lines_and_report_bad_lines_with_their_line_number(tmp_path):
    path = write(tmp_path, b'{"id": 1, "n": 1.5}\n\n{"id": 2,\r\n[1, 2]\n{"id": "4", "n": null}\r\n  \n')
    rows = read_rows(JSONL, path, ["id", "n"])
    assert values(rows, RECORD_NO, LINE_NO, "id", "n") == [
        (1, 1, "1", "1.5"),
        (2, 3, None, None),
        (3, 4, None, None),
        (4, 5, "4", None),
    ]
    assert errors(rows)[0] is None
    assert errors(rows)[1].startswith("not valid JSON")
    assert errors(rows)[2] == "record is not a JSON object"


def test_an_undecodable_json_line_rejects_only_that_record(tmp_path):
    path = write(tmp_path, b'{"id": "a"}\n{"id": "\xff"}\n{"id": "c"}\n')
    rows = read_rows(JSONL, path, ["id"])
    assert values(rows, "id") == [("a",), (None,), ("c",)]
    assert errors(rows)[1] is not None


# ---------------------------------------------------------------- XML


NAMESPACED = b"""<?xml version="1.0" encoding="UTF-8"?>
<o:orders xmlns:o="urn:orders" xmlns:x="urn:extra">
  <o:header><o:order id="not a record"/></o:header>
  <o:order id="A1" x:channel="web"><o:amount>12.50</o:amount><note>fast &amp; free</note><empty/></o:order>
  <o:order id="A2"><o:amount>3</o:amount></o:order>
  <order id="wrong namespace"/>
</o:orders>
"""


def test_xml_records_match_the_full_path_with_namespaces_and_read_attributes_and_children(tmp_path):
    fmt = XmlFormat(
        kind="xml",
        record_path="ns:orders/ns:order",
        namespaces={"ns": "urn:orders", "x": "urn:extra"},
        attributes=["id", "x:channel"],
    )
    rows = read_rows(fmt, write(tmp_path, NAMESPACED), ["id", "x:channel", "amount", "note", "empty", "absent"])
    assert values(rows, RECORD_NO, "id", "x:channel", "amount", "note", "empty", "absent") == [
        (1, "A1", "web", "12.50", "fast & free", "", None),
        (2, "A2", None, "3", None, None, None),
    ]


def test_a_repeated_or_nested_xml_field_is_a_parse_error_row(tmp_path):
    data = b"<orders><order><id>1</id><id>2</id></order><order><id><x/></id></order><order><id>3</id></order></orders>"
    rows = read_rows(ORDERS_XML.model_copy(update={"attributes": []}), write(tmp_path, data), ["id"])
    assert errors(rows) == ["id is repeated", "id holds nested elements", None]
    assert values(rows, "id") == [(None,), (None,), ("3",)]


def test_xml_reader_lets_go_of_records_it_has_read(tmp_path):
    """Memory must follow chunk_size, not file size: ElementTree keeps every element unless told."""
    records = b"".join(b"<order id='%d'><name>customer %d</name></order>" % (i, i) for i in range(20_000))
    path = write(tmp_path, b"<orders>" + records + b"</orders>")
    tracemalloc.start()
    try:
        count = sum(len(rows) for rows in read_batch_list(ORDERS_XML, path, ["id", "name"], chunk_size=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 4_000_000  # keeping the elements takes over 10 MB here


def test_latin1_xml_without_a_declaration_is_decoded_as_latin1(tmp_path):
    data = "<orders><order id='1'><name>Françoise</name></order></orders>".encode("latin-1")
    fmt = ORDERS_XML.model_copy(update={"encoding": "latin-1"})
    assert values(read_rows(fmt, write(tmp_path, data), ["name"]), "name") == [("Françoise",)]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE orders [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<orders><order id="1"><name>&secret;</name></order></orders>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<orders><order id="1"><name>&lol9;</name></order></orders>
"""


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_xml_with_a_dtd_or_entities_is_refused_before_anything_is_expanded(tmp_path, payload):
    """Vendor files are untrusted input: entity tricks read local files or exhaust memory."""
    with pytest.raises(FormatError, match="DTD or entities"):
        read_rows(ORDERS_XML, write(tmp_path, payload), ["id", "name"])


@pytest.mark.parametrize(
    "data",
    [b"<orders><order id='1'>", b"<orders><order id='1'></orders>", b"just text"],
    ids=["truncated", "mismatched-tag", "not-xml"],
)
def test_xml_that_is_not_well_formed_is_a_format_error(tmp_path, data):
    with pytest.raises(FormatError, match="not well-formed"):
        read_rows(ORDERS_XML, write(tmp_path, data), ["id"])


def test_xml_with_a_different_root_element_is_a_format_error_not_zero_records(tmp_path):
    with pytest.raises(FormatError, match="root element"):
        read_rows(ORDERS_XML, write(tmp_path, b"<invoices><order id='1'/></invoices>"), ["id"])


# ---------------------------------------------------------------- fixed width


def test_fixed_width_cuts_columns_and_trims_padding_by_alignment(tmp_path):
    fmt = LAYOUT.model_copy(update={"skip_lines": 1})
    data = f"ID   NAME\r\n  42 {'Ann Lee':30}\r\n   7 {' padded left stays':30}\r\n".encode()
    rows = read_rows(fmt, write(tmp_path, data), ["id", "name"])
    assert values(rows, RECORD_NO, LINE_NO, "id", "name") == [
        (1, 2, "42", "Ann Lee"),
        (2, 3, "7", " padded left stays"),
    ]


def test_fixed_width_counts_characters_not_bytes(tmp_path):
    data = f"   1 {'Zoë Ångström':30}\n".encode()
    assert values(read_rows(LAYOUT, write(tmp_path, data), ["id", "name"]), "id", "name") == [("1", "Zoë Ångström")]


def test_a_fixed_width_line_shorter_than_the_layout_is_a_parse_error_row(tmp_path):
    data = b"   1 Ann                           \n   2 Bob\n\n   3 Cy                            \n"
    rows = read_rows(LAYOUT, write(tmp_path, data), ["id", "name"])
    assert values(rows, RECORD_NO, LINE_NO, "id") == [(1, 1, "1"), (2, 2, None), (3, 4, "3")]
    assert errors(rows) == [None, "line is shorter than the layout's 35 characters", None]


def test_an_undecodable_fixed_width_line_rejects_only_that_record(tmp_path):
    data = b"   1 Ann                           \n   2 B\xffb                           \n"
    rows = read_rows(LAYOUT, write(tmp_path, data), ["id", "name"])
    assert values(rows, "id", "name") == [("1", "Ann"), (None, None)]
    assert errors(rows) == [None, "line is not valid utf-8"]


# ---------------------------------------------------------------- writers and round trips

TRICKY = ["plain", 'comma, "quote"', "two\nlines", "Zoë & <Ångström>", "  spaced  ", "", None]
FIXED_TRICKY = ["plain", 'comma, "quote"', "Zoë & <Ångström>", "  spaced", None]


@pytest.mark.parametrize(
    ("fmt", "strings"),
    [
        (CSV, TRICKY),
        (
            CsvFormat(kind="csv", delimiter="|", quote="'", line_terminator="\r\n", encoding="utf-8-sig"),
            TRICKY,
        ),
        (CsvFormat(kind="csv", header=False, encoding="latin-1"), TRICKY),
        (JSON, TRICKY),
        (JSONL, TRICKY),
        (ORDERS_XML, TRICKY),
        (
            XmlFormat(kind="xml", record_path="a:data/a:rows/a:row", namespaces={"a": "urn:a"}, encoding="latin-1"),
            TRICKY,
        ),
        (LAYOUT, FIXED_TRICKY),
        (LAYOUT.model_copy(update={"encoding": "latin-1", "line_terminator": "\r\n"}), FIXED_TRICKY),
    ],
    ids=[
        "csv",
        "csv-pipe-bom-crlf",
        "csv-latin1-no-header",
        "json",
        "jsonl",
        "xml",
        "xml-ns-latin1",
        "fixed_width",
        "fixed_width-latin1-crlf",
    ],
)
def test_writing_then_reading_with_the_same_format_gives_the_same_strings(tmp_path, fmt, strings):
    batch = text_batch(id=[str(i) for i in range(len(strings))], name=strings)
    path = write_records(fmt, tmp_path / "out", [batch, batch.slice(0, 2)])
    rows = read_rows(fmt, path, ["id", "name"])
    assert values(rows, "id", "name") == values(batch.to_pylist() + batch.slice(0, 2).to_pylist(), "id", "name")
    assert errors(rows) == [None] * (len(strings) + 2)


TYPED = pa.RecordBatch.from_pydict(
    {
        "name": pa.array(["Ann", None], pa.string()),
        "qty": pa.array([3, None], pa.int64()),
        "price": pa.array([Decimal("12.50"), Decimal("-0.01")], pa.decimal128(12, 2)),
        "rate": pa.array([0.25, None], pa.float64()),
        "active": pa.array([True, False], pa.bool_()),
        "day": pa.array([dt.date(2024, 1, 31), None], pa.date32()),
        "at": pa.array([dt.datetime(2024, 1, 31, 9, 30), dt.datetime(2024, 2, 1, 0, 0, 0, 250000)], pa.timestamp("us")),
    }
)


def test_csv_quotes_exactly_the_values_that_need_it_whatever_the_column_holds_beside_them(tmp_path):
    """The writer skips its per-value check when a column's bytes hold no special character; bytes
    outside a sliced batch, nulls and non-ASCII delimiters must not change what is quoted."""
    fmt = CsvFormat(kind="csv", header=False, delimiter="§")
    batch = text_batch(id=["a§b", "c", "d", "e"], name=["x", None, "", "y"])
    path = write_records(fmt, tmp_path / "out.csv", [batch.slice(1, 2), batch.slice(3), batch.slice(0, 1)])
    assert path.read_text() == 'c§\nd§""\ne§y\n"a§b"§x\n'


def test_csv_writer_renders_typed_values_as_text_and_nulls_as_empty_fields(tmp_path):
    path = write_records(CSV, tmp_path / "out.csv", [TYPED])
    assert path.read_text() == (
        "name,qty,price,rate,active,day,at\n"
        "Ann,3,12.50,0.25,true,2024-01-31,2024-01-31T09:30:00\n"
        ",,-0.01,,false,,2024-02-01T00:00:00.250000\n"
    )


def test_json_writers_write_numbers_as_numbers_keeping_every_decimal_digit(tmp_path):
    for fmt in (JSON, JSONL):
        path = write_records(fmt, tmp_path / f"out.{fmt.kind}", [TYPED])
        text = path.read_text()
        assert '"price":12.50' in text
        records = orjson.loads(text) if fmt.kind == "json" else [orjson.loads(x) for x in text.splitlines()]
        assert records[0] == {
            "name": "Ann",
            "qty": 3,
            "price": 12.5,
            "rate": 0.25,
            "active": True,
            "day": "2024-01-31",
            "at": "2024-01-31T09:30:00",
        }
        assert records[1]["name"] is None and records[1]["active"] is False


def test_json_array_writer_without_records_still_writes_a_valid_empty_array(tmp_path):
    path = tmp_path / "out.json"
    with path.open("wb") as sink:
        open_writer(JSON, sink, TYPED.schema).close()
    assert orjson.loads(path.read_bytes()) == []


def test_xml_writer_declares_namespaces_on_the_root_and_omits_null_fields(tmp_path):
    fmt = XmlFormat(kind="xml", record_path="a:orders/a:order", namespaces={"a": "urn:a"}, attributes=["qty"])
    path = write_records(fmt, tmp_path / "out.xml", [TYPED.select(["name", "qty"])])
    assert path.read_text() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<a:orders xmlns:a="urn:a">\n'
        '<a:order qty="3"><name>Ann</name></a:order>\n'
        "<a:order></a:order>\n"
        "</a:orders>\n"
    )


def test_csv_writer_with_utf8_sig_writes_the_bom_once(tmp_path):
    fmt = CsvFormat(kind="csv", encoding="utf-8-sig")
    batch = text_batch(name=["Zoë"])
    data = write_records(fmt, tmp_path / "out.csv", [batch, batch]).read_bytes()
    assert data == "\ufeffname\nZoë\nZoë\n".encode()


@pytest.mark.parametrize(
    "fmt",
    [
        CsvFormat(kind="csv", encoding="latin-1"),
        LAYOUT.model_copy(update={"encoding": "latin-1"}),
    ],
    ids=["csv", "fixed_width"],
)
def test_a_value_latin1_cannot_encode_raises_naming_the_field(tmp_path, fmt):
    batch = text_batch(id=["1", "2"], name=["Zoë", "Łukasz"])
    with pytest.raises(ValueError, match="field 'name' has a value that cannot be encoded in latin-1"):
        write_records(fmt, tmp_path / "out", [batch])


def test_fixed_width_writer_pads_by_alignment_and_fills_gaps_with_spaces(tmp_path):
    batch = text_batch(id=["42", None], name=["Ann", None])
    data = write_records(LAYOUT, tmp_path / "out.txt", [batch]).read_text()
    assert data == "  42 Ann" + " " * 27 + "\n" + " " * 35 + "\n"


def test_fixed_width_writer_refuses_a_value_longer_than_its_width_instead_of_cutting_it(tmp_path):
    batch = text_batch(id=["12345"], name=["Ann"])
    with pytest.raises(ValueError, match="field 'id' has a value longer than its width 4"):
        write_records(LAYOUT, tmp_path / "out.txt", [batch])
