"""Hostile and broken input: every file ends as records with reasons or as a quarantined file.

Two halves. A corpus of named cases (generated here, a few fixed files in ``corpus/``) goes
through a real vendor day (stage + deliver) in a worker process that is timed and whose peak
memory is measured, so a hang, a crash or a blow-up fails the case without taking the test run
down. Then hypothesis throws arbitrary and mutated bytes at every reader, random nesting at the
JSON depth gauge, random line lengths at the record limit, and random records through the engine.
"""

from __future__ import annotations

import io
import json
import os
import random
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from batch_assets.lib.demo_data import RecordSynth, file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.vendor_day import EngineOptions, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.formats import LINE_NO, PARSE_ERROR, RECORD_NO, FormatError, ReadLimits, open_writer, read_batches
from batch_assets.lib.formats.json import _DepthGauge
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.specs.model import CsvFormat, FixedWidthFormat, JsonFormat, JsonLinesFormat, XmlFormat
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import HASH_KEY, REPO_ROOT, VENDORS_DIR
from batch_assets_tests.reliability.support import LONG, record_figures, rejects_rows, scaled, time_limit

DAY = "2026-03-02"
CORPUS = Path(__file__).parent / "corpus"
BIG = scaled(64 << 20, 512 << 20)  # a "very long" line or field: far past any limit, so holding it would show
# The corpus runs with tighter limits than the defaults, to show they are configurable.
LIMITS = ReadLimits(max_file_bytes=2 * BIG, max_record_bytes=64 << 10, max_depth=32)
CASE_SECONDS = 60  # a case taking longer is a hang
PEAK_BUDGET_MB = 32  # memory a case may add to the warmed-up worker (9 MB seen); holding a BIG value adds 64+ MiB
VENDOR_OF = {
    CsvFormat: "acme_retail",
    JsonFormat: "globex_logistics",
    JsonLinesFormat: "hooli_ads",
    XmlFormat: "initech_payroll",
    FixedWidthFormat: "umbrella_health",
}


# ------------------------------------------------------------------------------------------------ corpus


@dataclass(frozen=True)
class Case:
    """A hostile file for a vendor, and how its day must end."""

    name: str
    vendor: str
    make: Callable[[bytes], bytes]  # the vendor's valid sample file -> the hostile bytes
    quarantined: str | None = None  # the file must be quarantined with this in its error, or...
    check: Callable[[dict], bool] = lambda f: True  # ...staged, and its counts must satisfy this
    limits: ReadLimits = LIMITS
    file_name: str | None = None


def rows(n: int) -> Callable[[dict], bool]:
    return lambda f: f["rows_in"] == n


def rejected_for(rule: str, at_least: int = 1) -> Callable[[dict], bool]:
    return lambda f: f["rules"].get(rule, 0) >= at_least


def none_accepted(f: dict) -> bool:
    return f["rows_in"] > 0 and f["rows_out"] == 0


def fixed(name: str) -> Callable[[bytes], bytes]:
    return lambda _sample: (CORPUS / name).read_bytes()


def garbage(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def cut(sample: bytes, at: float) -> bytes:
    return sample[: int(len(sample) * at)]


def last_line_cut(sample: bytes) -> bytes:
    """The file up to the middle of its last record's third field (a truncated upload)."""
    body = sample.rstrip(b"\n")
    start = body.rindex(b"\n") + 1
    third = body.index(b",", body.index(b",", start) + 1)
    return body[: third + 2]


def deep_json(depth: int, inside_field: bool) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return b'[{"shipment_id": ' + nested + b"}]" if inside_field else b"[" + nested + b"]"


def payroll(*employees: str) -> bytes:
    body = "".join(employees)
    return f'<?xml version="1.0"?><p:payroll xmlns:p="urn:initech:payroll:v2">{body}</p:payroll>'.encode()


def employee(inner: str, employee_id: str = "E0000001") -> str:
    return f'<p:employee employee_id="{employee_id}">{inner}</p:employee>'


GOOD_EMPLOYEE = (
    "<p:ssn>123-45-6789</p:ssn><p:pay_date>01/31/2026</p:pay_date><p:gross_pay>100.00</p:gross_pay>"
    "<p:tax_rate>0.2000</p:tax_rate><p:department>ENG</p:department>"
)
IMPRESSION = {
    "impression_id": "i1",
    "campaign": "spring",
    "viewer_email": "ana@example.com",
    "cost_micros": 5,
    "clicked": True,
    "served_at": "2026-01-01 00:00:00",
}


def jsonl(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


CSV_HEADER = b"order_id,customer_id,email,sku,quantity,unit_price,order_date,channel\n"
CSV_ROW = b"ORD-00000001,C000001,ana@example.com,SKU1,1,1.00,2026-01-01,web\n"
CLAIMS_PREAMBLE = b"# Umbrella Health extract\n"

CASES = [
    # CSV (acme_retail): pyarrow's reader, validated per value
    Case("csv empty file", "acme_retail", lambda s: b"", check=rows(0)),
    Case("csv header only", "acme_retail", lambda s: CSV_HEADER, check=rows(0)),
    Case("csv only blank lines", "acme_retail", lambda s: b"\n\n\r\n\n", check=rows(0)),
    Case("csv truncated inside a record", "acme_retail", last_line_cut, check=rejected_for("parse")),
    Case("csv truncated inside a quoted value", "acme_retail", lambda s: s + b'ORD-1,"C00', quarantined="never closed"),
    Case(
        "csv ragged rows",
        "acme_retail",
        lambda s: CSV_HEADER + CSV_ROW + b"a,b\n" + CSV_ROW.rstrip() + b",extra,fields\n",
        check=rejected_for("parse", 2),
    ),
    Case("csv mixed encodings", "acme_retail", fixed("orders_mixed_encoding.csv"), check=rejected_for("parse")),
    Case("csv in UTF-16", "acme_retail", fixed("orders_utf16.csv"), check=none_accepted),
    Case("csv binary garbage", "acme_retail", lambda s: garbage(200_000, 1), quarantined="CSV file cannot be read"),
    Case(
        "csv NUL and control bytes in values",
        "acme_retail",
        lambda s: CSV_HEADER + CSV_ROW.replace(b"SKU1", b"S\x00K\x01U"),
    ),
    Case(
        "csv value over the record limit",
        "acme_retail",
        lambda s: CSV_HEADER + CSV_ROW + CSV_ROW.replace(b"SKU1", b"S" * (200 << 10)),
        check=lambda f: f["rules"] == {"parse": 1} and f["rows_out"] == 1,
    ),
    Case(
        "csv field of BIG bytes",
        "acme_retail",
        lambda s: CSV_HEADER + b"ORD-1," + b"x" * BIG + b"\n",
        quarantined="longer than the 1,048,576-byte block",
    ),
    Case(
        "csv 20,000 extra columns",
        "acme_retail",
        lambda s: (
            CSV_HEADER.rstrip()
            + b"".join(b",x%d" % i for i in range(20_000))
            + b"\n"
            + CSV_ROW.rstrip()
            + b",0" * 20_000
            + b"\n"
        ),
        check=lambda f: f["rows_out"] == 1,
    ),
    Case("csv lone CR line ends", "acme_retail", lambda s: s.replace(b"\n", b"\r"), check=lambda f: f["rows_out"] > 0),
    Case(
        "csv over the file size limit",
        "acme_retail",
        lambda s: s,
        quarantined="over the 100-byte limit",
        limits=ReadLimits(max_file_bytes=100),
    ),
    # JSON array (globex_logistics): ijson, behind the depth gauge and the record limit
    Case("json empty file", "globex_logistics", lambda s: b"", check=rows(0)),
    Case("json empty array", "globex_logistics", lambda s: b" [ ] ", check=rows(0)),
    Case("json truncated", "globex_logistics", lambda s: cut(s, 0.6), quarantined="truncated"),
    Case("json object at the top", "globex_logistics", lambda s: b'{"shipment_id": "SH0000001"}', quarantined="array"),
    Case(
        "json scalars in the array", "globex_logistics", lambda s: b'[1, "x", null, []]', check=rejected_for("parse", 4)
    ),
    Case("json binary garbage", "globex_logistics", lambda s: b"[" + garbage(100_000, 2), quarantined="JSON file"),
    Case("json in UTF-16", "globex_logistics", lambda s: s.decode().encode("utf-16"), quarantined="array"),
    Case(
        "json 100,000 nested arrays",
        "globex_logistics",
        lambda s: deep_json(100_000, False),
        quarantined="nested deeper than the 32-level",
    ),
    Case(
        "json 100,000 levels in a field",
        "globex_logistics",
        lambda s: deep_json(100_000, True),
        quarantined="nested deeper",
    ),
    Case(
        "json nesting within the limit", "globex_logistics", lambda s: deep_json(20, True), check=rejected_for("parse")
    ),
    Case(
        "json string of BIG bytes",
        "globex_logistics",
        lambda s: b'[{"consignee_name": "' + b"x" * BIG + b'"}]',
        quarantined="longer than the 65,536-byte limit",
    ),
    Case(
        "json number of 30,000 digits",
        "globex_logistics",
        lambda s: s.replace(b'"weight_kg":"', b'"weight_kg":"' + b"9" * 30_000, 1),
        check=lambda f: f["rows_rejected"] >= 1,
    ),
    Case(
        "json bytes that are not UTF-8",
        "globex_logistics",
        lambda s: s.replace(b'"carrier":"', b'"carrier":"\xff', 1),
        quarantined="JSON file",
    ),
    # JSON lines (hooli_ads): one record per line, so a bad line is one reject
    Case("jsonl empty file", "hooli_ads", lambda s: b"", check=rows(0)),
    Case("jsonl truncated", "hooli_ads", lambda s: cut(s, 0.5), check=rejected_for("parse")),
    Case("jsonl binary garbage", "hooli_ads", lambda s: garbage(100_000, 3), check=none_accepted),
    Case(
        "jsonl line of BIG bytes",
        "hooli_ads",
        lambda s: (
            jsonl(IMPRESSION) + b'{"campaign": "' + b"x" * BIG + b'"}\n' + jsonl(IMPRESSION | {"impression_id": "i2"})
        ),
        check=lambda f: f["rules"] == {"parse": 1} and f["rows_out"] == 2,
    ),
    Case(
        "jsonl 5,000 levels deep",
        "hooli_ads",
        lambda s: jsonl(IMPRESSION) + b"[" * 5000 + b"]" * 5000 + b"\n",
        check=lambda f: f["rules"] == {"parse": 1},
    ),
    Case(
        "jsonl a Latin-1 byte in a line",
        "hooli_ads",
        lambda s: jsonl(IMPRESSION).replace(b"spring", b"spr\xefng"),
        check=rejected_for("parse"),
    ),
    Case(
        "jsonl text Latin-1 output cannot hold",
        "hooli_ads",
        lambda s: jsonl(IMPRESSION | {"campaign": "\u6625\u5b63"}),
        check=rejected_for("output_text:campaign"),
    ),
    Case(
        "jsonl NUL and controls in a value",
        "hooli_ads",
        lambda s: jsonl(IMPRESSION | {"campaign": "a\x00b\x1bc\u202e"}),
        check=lambda f: f["rows_in"] == 1,
    ),
    Case(
        "jsonl lines that are not objects",
        "hooli_ads",
        lambda s: b'[1]\n"x"\n7\nnull\n',
        check=rejected_for("parse", 4),
    ),
    # XML (initech_payroll): defusedxml, no DTDs, bounded depth and record size
    Case("xml empty file", "initech_payroll", lambda s: b"  \n", check=rows(0)),
    Case("xml external entity", "initech_payroll", fixed("payroll_xxe.xml"), quarantined="DTD"),
    Case("xml billion laughs", "initech_payroll", fixed("payroll_billion_laughs.xml"), quarantined="DTD"),
    Case("xml external DTD", "initech_payroll", fixed("payroll_external_dtd.xml"), quarantined="DTD"),
    Case("xml parameter entity", "initech_payroll", fixed("payroll_parameter_entity.xml"), quarantined="DTD"),
    Case("xml truncated", "initech_payroll", lambda s: cut(s, 0.7), quarantined="not well-formed"),
    Case("xml binary garbage", "initech_payroll", lambda s: garbage(100_000, 4), quarantined="XML file"),
    Case(
        "xml another root", "initech_payroll", lambda s: b"<payroll><employee/></payroll>", quarantined="root element"
    ),
    Case(
        "xml 100,000 nested elements",
        "initech_payroll",
        lambda s: payroll(employee("<x>" * 100_000 + "</x>" * 100_000)),
        quarantined="nested deeper",
    ),
    Case(
        "xml text of BIG bytes",
        "initech_payroll",
        lambda s: payroll(employee("<p:ssn>" + "1" * BIG + "</p:ssn>")),
        quarantined="longer than the 65,536-byte limit",
    ),
    Case(
        "xml repeated and nested fields",
        "initech_payroll",
        lambda s: payroll(
            employee(GOOD_EMPLOYEE + "<p:ssn>1</p:ssn>"), employee("<p:department><b/></p:department>", "E0000002")
        ),
        check=rejected_for("parse", 2),
    ),
    Case(
        "xml Latin-1 bytes in UTF-8",
        "initech_payroll",
        lambda s: payroll(employee(GOOD_EMPLOYEE.replace("ENG", "\xc9NG"))).replace(b"\xc3\x89", b"\xc9"),
        quarantined="not well-formed",
    ),
    Case(
        "xml comments, CDATA and instructions",
        "initech_payroll",
        lambda s: payroll(employee(GOOD_EMPLOYEE.replace("ENG", "<![CDATA[ENG]]>") + "<!-- x --><?pi y?>")),
        check=lambda f: f["rows_out"] == 1,
    ),
    # Fixed-width (umbrella_health, Latin-1 after a preamble line)
    Case("fixed-width empty file", "umbrella_health", lambda s: b"", check=rows(0)),
    Case("fixed-width preamble only", "umbrella_health", lambda s: CLAIMS_PREAMBLE, check=rows(0)),
    Case(
        "fixed-width lines too short",
        "umbrella_health",
        lambda s: b"\n".join(line[:20] for line in s.split(b"\n")),
        check=rejected_for("parse"),
    ),
    Case(
        "fixed-width line of BIG bytes",
        "umbrella_health",
        lambda s: s + b"x" * BIG + b"\n",
        check=rejected_for("parse"),
    ),
    Case(
        "fixed-width binary garbage",
        "umbrella_health",
        lambda s: CLAIMS_PREAMBLE + garbage(100_000, 5),
        check=none_accepted,
    ),
    Case(
        "fixed-width UTF-8 in a Latin-1 file",
        "umbrella_health",
        lambda s: s.replace(b"Ana", "\u00c5na".encode(), 1),
        check=lambda f: f["rows_in"] > 0,
    ),
    Case(
        "fixed-width CRLF and tabs",
        "umbrella_health",
        lambda s: s.replace(b"\n", b"\r\n").replace(b"  ", b"\t ", 3),
        check=lambda f: f["rows_in"] > 0,
    ),
]


# ------------------------------------------------------------------------------------------------ worker


class Worker:
    """The worker process (hostile_worker.py): started on demand, killed and replaced after a hang."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def ask(self, request: dict, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self._start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _start(self) -> None:
        env = {**os.environ, "BATCH_ASSETS_HASH_KEY": HASH_KEY}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batch_assets_tests.reliability.hostile_worker", str(VENDORS_DIR)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._answer(120).get("ready")

    def _answer(self, timeout: float) -> dict:
        assert self.process is not None and self.process.stdout
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.stop()
            return {"hang": f"no answer within {timeout:g}s"}
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self.process = None
            return {"crash": f"the worker died with exit code {code}"}
        return json.loads(line)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, demo_specs: dict[str, VendorSpec]) -> dict[str, bytes]:
    """A small valid file per vendor, the base that most cases break."""
    folder = tmp_path_factory.mktemp("samples")
    made = {}
    for vendor_id, spec in demo_specs.items():
        path = folder / file_name_for(spec, DAY, 1)
        write_vendor_file(spec, path, 20, seed=7)
        made[vendor_id] = path.read_bytes()
    return made


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_file_ends_as_records_with_reasons_or_in_quarantine(
    case: Case,
    worker: Worker,
    samples: dict[str, bytes],
    demo_specs: dict[str, VendorSpec],
    tmp_path: Path,
    record_property,
) -> None:
    """Whatever a vendor sends, the day goes on: nothing hangs, crashes or grows without bound, and
    the file either yields records (each rejected one with its rule and reason) or is quarantined."""
    spec = demo_specs[case.vendor]
    store = LocalFolderStore(tmp_path / "store")
    name = case.file_name or file_name_for(spec, DAY, 1)
    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, DAY)}{name}"
    (store.root / key).parent.mkdir(parents=True)
    (store.root / key).write_bytes(case.make(samples[case.vendor]))
    limits = {
        "max_file_bytes": case.limits.max_file_bytes,
        "max_record_bytes": case.limits.max_record_bytes,
        "max_depth": case.limits.max_depth,
    }
    answer = worker.ask({"store": str(store.root), "vendor": case.vendor, "day": DAY, "limits": limits}, CASE_SECONDS)
    (store.root / key).unlink(missing_ok=True)  # BIG files: give the disk back early

    assert "hang" not in answer and "crash" not in answer, answer
    record_figures(
        record_property,
        f"hostile corpus: {case.name}",
        seconds=answer["seconds"],
        peak_growth_mb=answer["peak_growth_mb"],
    )
    assert answer["peak_growth_mb"] <= PEAK_BUDGET_MB, f"{case.name}: the day added {answer['peak_growth_mb']} MB"
    if case.quarantined is not None:
        assert answer["files"] == [] and list(answer["quarantined"]) == [key], answer
        assert case.quarantined in answer["failed"][key], answer["failed"][key]
        assert store.stat(layout.day_prefix(layout.QUARANTINE, spec.vendor_id, DAY) + name) is not None
        return
    assert answer["failed"] == {}, answer["failed"]
    (staged,) = answer["files"]
    assert staged["rows_in"] == staged["rows_out"] + staged["rows_rejected"], staged
    assert staged["rows_rejected"] == sum(staged["rules"].values())
    assert case.check(staged), staged
    assert answer["outbound_rows"] == staged["rows_out"]
    for obj in store.list(layout.day_prefix(layout.REJECTS, spec.vendor_id, DAY)):
        for reject in rejects_rows(store.read_bytes(obj.key)):
            assert reject["_reject_rule"] and reject["_reject_reason"], reject


def test_the_corpus_covers_every_input_format_and_both_endings() -> None:
    """A corpus that misses a format, or never quarantines, would prove less than it claims."""
    vendors = {c.vendor for c in CASES}
    assert vendors == set(VENDOR_OF.values())
    assert {c.quarantined is None for c in CASES} == {True, False}


# ------------------------------------------------------------------------------------------------ fuzzing


EXAMPLES = scaled(200, 3000)
ENGINE_EXAMPLES = scaled(12, 300)  # per vendor: a vendor day costs ~0.5-1 s of DuckDB queries
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a loaded CI machine is slow; hangs are caught by time_limit below
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    derandomize=not LONG,  # CI runs the same examples every time; the long mode explores
    database=None,
)
READER_FORMATS = {
    "csv": CsvFormat(kind="csv"),
    "csv-latin-1": CsvFormat(kind="csv", delimiter=";", encoding="latin-1", header=False),
    "json": JsonFormat(kind="json"),
    "jsonl": JsonLinesFormat(kind="jsonl"),
    "xml": XmlFormat(kind="xml", record_path="r/x", attributes=["a"]),
    "fixed-width": FixedWidthFormat(
        kind="fixed_width", fields=[{"name": "a", "start": 1, "width": 3}, {"name": "b", "start": 5, "width": 4}]
    ),
}
READER_FIELDS = ["a", "b"]
SEEDS = {
    "csv": b'a,b\n1,"x, ""y"""\n2,\n',
    "csv-latin-1": b"1;\xe9t\xe9\n2;x\n",
    "json": b'[{"a": "1", "b": 2.5}, {"a": null, "b": [1]}, 3]',
    "jsonl": b'{"a": "1", "b": true}\n{"a": {"x": 1}}\n\n[1]\n',
    "xml": b'<r><x a="1"><b>t&amp;u</b></x><x><b><![CDATA[v]]></b></x></r>',
    "fixed-width": b"  1 abcd\nxyz wxyz\nshort\n",
}


@st.composite
def hostile_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """Arbitrary bytes, or a valid file mutated: cut, spliced, flipped, repeated."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=3000))
    data = bytearray(seed * draw(st.integers(1, 3)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["cut", "insert", "flip", "repeat", "delete"])):
            case "cut":
                del data[at:]
            case "insert":
                data[at:at] = draw(
                    st.binary(min_size=1, max_size=40)
                    | st.sampled_from(
                        [
                            b"[" * 80,
                            b"\x00",
                            b"\xff\xfe",
                            b'"',
                            b"<!DOCTYPE r [<!ENTITY e 'x'>]>",
                            b"\r",
                            b"\xef\xbb\xbf",
                        ]
                    )
                )
            case "flip" if data:
                data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
            case "repeat":
                data[at:at] = data[at : at + draw(st.integers(1, 50))] * draw(st.integers(2, 20))
            case "delete":
                del data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


# pyarrow decodes a ragged row as UTF-8 before the handler sees it; when it is not UTF-8 the file is
# refused (FormatError) and pyarrow reports the decode error as "unraisable": expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("fmt_name", list(READER_FORMATS))
def test_any_bytes_read_in_any_format_give_numbered_records_or_a_format_error(fmt_name: str, record_property) -> None:
    """A reader may refuse a file (FormatError) but must never raise anything else, hang, or lose
    count: every record it yields is numbered 1, 2, 3... in order, in batches of at most the chunk size."""
    fmt = READER_FORMATS[fmt_name]
    tried = {"inputs": 0, "refused": 0}

    @FUZZ
    @given(
        data=hostile_bytes(SEEDS[fmt_name]),
        chunk_size=st.integers(1, 4),
        record_bytes=st.sampled_from([8, 64, 1 << 20]),
    )
    def read_everything(data: bytes, chunk_size: int, record_bytes: int) -> None:
        tried["inputs"] += 1
        limits = ReadLimits(max_record_bytes=record_bytes, max_depth=16)
        numbers: list[int] = []
        try:
            for batch in read_batches(fmt, io.BytesIO(data), READER_FIELDS, chunk_size, limits):
                assert 0 < batch.num_rows <= chunk_size
                assert batch.schema.names == [RECORD_NO, LINE_NO, PARSE_ERROR, *READER_FIELDS]
                numbers += batch.column(RECORD_NO).to_pylist()
                for name in READER_FIELDS:
                    assert batch.column(name).type == pa.string()
        except FormatError:
            tried["refused"] += 1
        assert numbers == list(range(1, len(numbers) + 1))

    with time_limit(scaled(240, 3600), f"fuzzing the {fmt_name} reader"):
        read_everything()
    record_figures(record_property, f"fuzz reader {fmt_name}", inputs=tried["inputs"], refused=tried["refused"])
    assert tried["inputs"] >= min(EXAMPLES, 100)


def json_values(max_leaves: int = 30) -> st.SearchStrategy:
    tricky = st.text(alphabet=st.sampled_from('[]{}"\\ax\u00e9\u2028\n'), max_size=8)
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky, inner, max_size=4),
        max_leaves=max_leaves,
    )


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


def test_the_json_depth_gauge_measures_nesting_exactly_however_the_text_is_cut(record_property) -> None:
    """The gauge sees JSON only as chunks of bytes: brackets inside strings, escaped quotes and
    backslashes, and cuts anywhere (even inside an escape) must not change the depth it reports."""
    tried = [0]

    @FUZZ
    @given(
        value=json_values(),
        ascii_only=st.booleans(),
        indent=st.sampled_from([None, 0, 2]),
        cuts=st.lists(st.integers(1, 64), max_size=12),
    )
    def measure(value: object, ascii_only: bool, indent: int | None, cuts: list[int]) -> None:
        tried[0] += 1
        text = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
        gauge, deepest, at = _DepthGauge(), 0, 0
        for size in [*cuts, len(text)]:
            deepest = max(deepest, gauge.feed(text[at : at + size]))
            at += size
        assert deepest == depth_of(value)
        assert gauge.depth == 0 and not gauge.in_string

    with time_limit(scaled(120, 1800), "fuzzing the depth gauge"):
        measure()
    record_figures(record_property, "fuzz json depth gauge", inputs=tried[0])


@pytest.mark.parametrize("fmt_name", ["jsonl", "fixed-width"])
def test_a_line_over_the_record_limit_is_one_rejected_record_and_the_next_lines_are_read(
    fmt_name: str, record_property
) -> None:
    """Where records are lines, a too-long one is skipped without being held, and costs only itself."""
    fmt = READER_FORMATS[fmt_name]
    tried = [0]

    @FUZZ
    @given(
        limit=st.integers(1, 120), lengths=st.lists(st.integers(0, 200), min_size=1, max_size=30), crlf=st.booleans()
    )
    def read_lines(limit: int, lengths: list[int], crlf: bool) -> None:
        tried[0] += 1
        end = b"\r\n" if crlf else b"\n"
        if fmt_name == "jsonl":
            lines = [b'{"a": "' + b"x" * max(n - 11, 0) + b'"}' for n in lengths]
        else:
            lines = [b"y" * n for n in lengths]
        text = end.join(lines) + end
        found = [
            row
            for batch in read_batches(fmt, io.BytesIO(text), READER_FIELDS, 7, ReadLimits(max_record_bytes=limit))
            for row in batch.to_pylist()
        ]
        expected = [len(line) > limit for line in lines if line]
        assert [row[PARSE_ERROR] == ReadLimits(max_record_bytes=limit).too_long() for row in found] == expected

    with time_limit(scaled(120, 1800), f"fuzzing {fmt_name} line limits"):
        read_lines()
    record_figures(record_property, f"fuzz record limit {fmt_name}", inputs=tried[0])


XML_ILLEGAL = [chr(c) for c in [*range(0x9), 0xB, 0xC, *range(0xE, 0x20), 0xFFFE, 0xFFFF]]


def field_text(spec: VendorSpec) -> st.SearchStrategy[str]:
    """Any text the vendor's own input format can carry (else the sample could not be written)."""
    fmt = spec.input
    if isinstance(fmt, XmlFormat):
        chars = st.characters(exclude_categories=["Cs"], exclude_characters=XML_ILLEGAL)
    elif getattr(fmt, "encoding", "utf-8") == "latin-1":
        chars = st.characters(max_codepoint=0xFF, exclude_characters=["\r", "\n"])
    else:
        chars = st.characters(exclude_categories=["Cs"])
    return st.text(chars, max_size=12)


@pytest.fixture(scope="module")
def engine_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine_fuzz")


@pytest.mark.parametrize("vendor_id", sorted(VENDOR_OF.values()))
def test_random_records_through_a_vendor_day_are_all_counted_and_delivered(
    vendor_id: str, demo_specs: dict[str, VendorSpec], engine_store: Path, record_property
) -> None:
    """Valid records with random fields overwritten by any text (NUL, controls, bidi marks, CJK,
    text the output encoding cannot hold), written by the vendor's own format writer: the file is
    read whole, every record is output or rejected with a reason, and the outbound file is written."""
    spec = demo_specs[vendor_id]
    fields = [f.source_name for f in spec.schema_]
    schema = pa.schema([pa.field(n, pa.string()) for n in fields])
    widths = {f.name: f.width for f in spec.input.fields} if isinstance(spec.input, FixedWidthFormat) else {}
    counts = {"inputs": 0, "records": 0, "rejected": 0}

    @settings(FUZZ, max_examples=ENGINE_EXAMPLES)
    @given(
        seed=st.integers(0, 10_000),
        edits=st.lists(st.tuples(st.integers(0, 9), st.sampled_from(fields), field_text(spec)), max_size=12),
        size=st.integers(1, 10),
    )
    def one_day(seed: int, edits: list[tuple[int, str, str]], size: int) -> None:
        synth = RecordSynth(spec, seed)
        records = [synth.record(i) for i in range(size)]
        for row, name, text in edits:
            records[row % size][name] = text[: widths.get(name)]
        root = engine_store / f"{vendor_id}-{counts['inputs']}"
        store = LocalFolderStore(root)
        key = f"{layout.day_prefix(layout.INBOUND, vendor_id, DAY)}{file_name_for(spec, DAY, 1)}"
        try:
            with store.publish(key) as path, open(path, "wb") as sink:
                sink.write(b"preamble\n" * getattr(spec.input, "skip_lines", 0))
                writer = open_writer(spec.input, sink, schema)
                writer.write_batch(pa.RecordBatch.from_pylist(records, schema=schema))
                writer.close()
        except ValueError:
            assume(False)  # the vendor's own format cannot carry this text (e.g. too wide, XML-illegal)
        counts["inputs"] += 1
        stage = stage_vendor_day(
            store, spec, DAY, keys={"BATCH_ASSETS_HASH_KEY": b"k"}, options=EngineOptions(threads=1, chunk_size=5)
        )
        assert stage.failed == {}, stage.failed
        (staged,) = stage.files
        assert staged.rows_in == size and staged.conserved
        delivery = deliver_vendor_day(store, spec, DAY)
        assert delivery.rows == staged.rows_out
        counts["records"] += size
        counts["rejected"] += staged.rows_rejected
        store.delete_prefix(f"{layout.INBOUND}/")

    with time_limit(scaled(300, 3600), f"fuzzing {vendor_id}'s vendor day"):
        one_day()
    record_figures(record_property, f"fuzz engine {vendor_id}", **counts)
    assert counts["inputs"] >= ENGINE_EXAMPLES // 2
