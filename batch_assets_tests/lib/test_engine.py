"""The chunked transform: validation rules, masks, mappings and business rules, on real files.

Most tests write a small JSON-lines file, run ``transform_file`` on it and read the staged
Parquet and the rejects file back, so every rule is checked end to end through the reader.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
import yaml

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import (
    FileJob,
    FileResult,
    MaskingKeyError,
    Progress,
    TransformSession,
    resolve_keys,
    transform_file,
)
from batch_assets.lib.specs import VendorSpec
from batch_assets_tests.conftest import VENDORS_DIR

HASH_ENV = "BATCH_ASSETS_HASH_KEY"
KEY = b"engine-test-key"
DEMO_VENDORS = sorted(path.stem for path in VENDORS_DIR.glob("*.yaml"))


def make_spec(*schema: dict[str, Any], input_kind: str = "jsonl", **extra: Any) -> VendorSpec:
    return VendorSpec.model_validate(
        {
            "vendor_id": "engine_test",
            "name": "Engine test",
            "input": {"kind": input_kind},
            "output": {"format": {"kind": "csv"}},
            "schema": list(schema),
            **extra,
        }
    )


@dataclass
class Outcome:
    result: FileResult
    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    rejects_bytes: bytes

    def rule_of(self, record_no: int) -> str | None:
        """The reject rule of a record, or None when it was accepted."""
        return next((r["_reject_rule"] for r in self.rejected if r["_record_no"] == record_no), None)


def run_file(
    tmp_path: Path, spec: VendorSpec, source: Path, *, chunk_size: int = 1000, keys: dict[str, bytes] | None = None
) -> Outcome:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    staged, rejects = work / "staged.parquet", work / "rejects.jsonl"
    result = transform_file(
        spec, source, staged, rejects, keys={HASH_ENV: KEY} if keys is None else keys, chunk_size=chunk_size
    )
    rejects_bytes = rejects.read_bytes()
    return Outcome(
        result=result,
        accepted=pq.read_table(staged).to_pylist(),
        rejected=[orjson.loads(line) for line in rejects_bytes.splitlines()],
        rejects_bytes=rejects_bytes,
    )


def run_rows(tmp_path: Path, spec: VendorSpec, rows: list[dict[str, Any]], **options: Any) -> Outcome:
    """Transform ``rows`` written as a JSON-lines file (a missing key is a null value)."""
    source = Path(tempfile.mkdtemp(dir=tmp_path)) / "input.jsonl"
    source.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return run_file(tmp_path, spec, source, **options)


# --- validation rules ---------------------------------------------------------------------------


def _date(fmt: str):
    return lambda text: dt.datetime.strptime(text, fmt).date()


def _timestamp(fmt: str):
    return lambda text: dt.datetime.strptime(text, fmt)


# (field spec, raw value, rule broken or None when valid, reason or the typed value expected)
RULE_CASES = {
    "required present": ({"required": True}, "x", None, str),
    "required empty": ({"required": True}, "", "required", "v: required value is missing"),
    "required null": ({"required": True}, None, "required", "v: required value is missing"),
    "optional empty": ({}, "", None, str),
    "integer": ({"type": "integer"}, "-42", None, int),
    "integer with plus sign": ({"type": "integer"}, "+7", None, int),
    "integer with a fraction": ({"type": "integer"}, "2.5", "type", "v: not a valid integer"),
    "integer with a zero fraction": ({"type": "integer"}, "3.0", "type", "v: not a valid integer"),
    "integer in exponent form": ({"type": "integer"}, "1e3", "type", "v: not a valid integer"),
    "integer too big for 64 bits": ({"type": "integer"}, "99999999999999999999", "type", "v: not a valid integer"),
    "integer that is a word": ({"type": "integer"}, "ten", "type", "v: not a valid integer"),
    "decimal": ({"type": "decimal", "scale": 2}, "12.34", None, Decimal),
    "decimal without fraction": ({"type": "decimal", "scale": 2}, "12", None, Decimal),
    "decimal with fewer places": ({"type": "decimal", "scale": 2}, "-0.5", None, Decimal),
    "decimal with more places than its scale": (
        {"type": "decimal", "scale": 2},
        "12.345",
        "type",
        "v: not a valid decimal",
    ),
    "decimal with more places that would round to the same": (
        {"type": "decimal", "scale": 2},
        "12.340",
        "type",
        "v: not a valid decimal",
    ),
    "decimal of scale 0 with a fraction": ({"type": "decimal", "scale": 0}, "7.0", "type", "v: not a valid decimal"),
    "decimal of scale 4": ({"type": "decimal", "scale": 4}, "0.1234", None, Decimal),
    "decimal with a comma": ({"type": "decimal"}, "1,5", "type", "v: not a valid decimal"),
    "float": ({"type": "float"}, "1.5e3", None, float),
    "float that is a word": ({"type": "float"}, "heavy", "type", "v: not a valid float"),
    "boolean true": ({"type": "boolean"}, "true", None, lambda _: True),
    "boolean false": ({"type": "boolean"}, "false", None, lambda _: False),
    "boolean that is a word": ({"type": "boolean"}, "maybe", "type", "v: not a valid boolean"),
    "iso date": ({"type": "date"}, "2024-02-29", None, dt.date.fromisoformat),
    "iso date that does not exist": ({"type": "date"}, "2023-02-29", "type", "v: not a valid date"),
    "date in its format": ({"type": "date", "format": "%d/%m/%Y"}, "31/12/2024", None, _date("%d/%m/%Y")),
    "date not in its format": (
        {"type": "date", "format": "%d/%m/%Y"},
        "2024-12-31",
        "type",
        "v: not a valid date in format %d/%m/%Y",
    ),
    "timestamp": ({"type": "timestamp"}, "2024-01-31 10:15:00", None, dt.datetime.fromisoformat),
    "timestamp that is a word": ({"type": "timestamp"}, "yesterday", "type", "v: not a valid timestamp"),
    "timestamp in its format": (
        {"type": "timestamp", "format": "%Y%m%d%H%M%S"},
        "20240131101500",
        None,
        _timestamp("%Y%m%d%H%M%S"),
    ),
    "regex full match": ({"regex": "R[0-9]{4}"}, "R1234", None, str),
    "regex too short": ({"regex": "R[0-9]{4}"}, "R123", "regex", "v: does not match the required pattern"),
    "regex match inside a longer value": (
        {"regex": "R[0-9]{4}"},
        "xR12345",
        "regex",
        "v: does not match the required pattern",
    ),
    "regex on an empty optional value": ({"regex": "R[0-9]{4}"}, "", None, str),
    "min on the bound": ({"type": "integer", "min": 1}, "1", None, int),
    "min below": ({"type": "integer", "min": 1}, "0", "min", "v: below the minimum 1"),
    "decimal min below": ({"type": "decimal", "min": 0.5}, "0.49", "min", "v: below the minimum 0.5"),
    "max on the bound": ({"type": "integer", "max": 10}, "10", None, int),
    "max above": ({"type": "integer", "max": 10}, "11", "max", "v: above the maximum 10"),
    "float max above": ({"type": "float", "max": 0.6}, "0.61", "max", "v: above the maximum 0.6"),
    "allowed": ({"allowed": ["red", "blue"]}, "blue", None, str),
    "allowed is case sensitive": ({"allowed": ["red", "blue"]}, "Red", "allowed", "v: not one of the allowed values"),
    "not allowed": ({"allowed": ["red", "blue"]}, "green", "allowed", "v: not one of the allowed values"),
}


@pytest.mark.parametrize(("field", "raw", "rule", "expected"), RULE_CASES.values(), ids=RULE_CASES.keys())
def test_each_validation_rule_accepts_or_rejects_a_value_with_its_rule_id_and_reason(
    tmp_path: Path, field: dict[str, Any], raw: str | None, rule: str | None, expected: Any
) -> None:
    """The rule id is what operators count and alert on, the reason what the vendor reads; a valid
    value must come out typed, and never rounded or reinterpreted."""
    spec = make_spec({"name": "row", "required": True}, {"name": "v", **field})

    outcome = run_rows(tmp_path, spec, [{"row": "r1", "v": raw}])

    if rule is None:
        assert outcome.rejected == []
        [record] = outcome.accepted
        assert record["v"] == (raw if raw in ("", None) else expected(raw))
    else:
        assert outcome.accepted == []
        [reject] = outcome.rejected
        assert reject["_reject_rule"] == f"{rule}:v"
        assert reject["_reject_reason"] == expected
        assert reject["v"] == raw


def test_the_rule_is_the_first_broken_one_and_the_reason_lists_every_broken_one(tmp_path: Path) -> None:
    """A vendor fixing a record needs every problem at once, not one per resend; the rule id stays
    a single value so rejects can be counted by rule."""
    spec = make_spec(
        {"name": "code", "required": True},
        {"name": "qty", "type": "integer", "min": 1},
        {"name": "colour", "allowed": ["red"]},
    )

    outcome = run_rows(tmp_path, spec, [{"code": "", "qty": "0", "colour": "green"}])

    [reject] = outcome.rejected
    assert reject["_reject_rule"] == "required:code"
    assert reject["_reject_reason"] == (
        "code: required value is missing; qty: below the minimum 1; colour: not one of the allowed values"
    )


def test_a_value_is_read_under_its_source_name_and_validated_under_its_own(tmp_path: Path) -> None:
    """Vendors name columns their way; rules, rule ids and outputs use the spec's names."""
    spec = make_spec({"name": "amount", "type": "integer", "source": "AMT (EUR)", "max": 5})

    outcome = run_rows(tmp_path, spec, [{"AMT (EUR)": "3"}, {"AMT (EUR)": "9"}, {"amount": "1"}])

    assert outcome.accepted == [{"amount": 3}, {"amount": None}]
    assert [r["_reject_rule"] for r in outcome.rejected] == ["max:amount"]


# --- unique -------------------------------------------------------------------------------------

UNIQUE_ROWS = [
    {"id": "A", "qty": "1"},  # 1 accepted
    {"id": "B", "qty": "1"},  # 2 accepted
    {"id": "A", "qty": "1"},  # 3 duplicate of 1
    {"id": "C", "qty": "x"},  # 4 rejected for its type: does not claim C
    {"id": "C", "qty": "1"},  # 5 accepted: the first accepted C
    {"id": "", "qty": "1"},  # 6 an empty value is not a duplicate of anything
    {"id": "B", "qty": "1"},  # 7 duplicate of 2
    {"id": "", "qty": "1"},  # 8 accepted, like 6
    {"id": "C", "qty": "1"},  # 9 duplicate of 5
    {"id": "A", "qty": "1"},  # 10 duplicate of 1
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 100])
def test_a_unique_value_is_accepted_once_per_file_whatever_chunk_it_lands_in(tmp_path: Path, chunk_size: int) -> None:
    """A file is read in chunks; a duplicate must be caught whether its twin was in the same chunk
    or an earlier one, or the outcome would depend on a memory setting."""
    spec = make_spec({"name": "id", "unique": True}, {"name": "qty", "type": "integer"})

    outcome = run_rows(tmp_path, spec, UNIQUE_ROWS, chunk_size=chunk_size)

    assert [r["_record_no"] for r in outcome.rejected] == [3, 4, 7, 9, 10]
    assert [outcome.rule_of(n) for n in (3, 4, 7, 9, 10)] == ["unique:id", "type:qty"] + ["unique:id"] * 3
    assert {r["_reject_reason"] for r in outcome.rejected if r["_reject_rule"] == "unique:id"} == {
        "id: duplicate of an earlier record"
    }
    assert [r["id"] for r in outcome.accepted] == ["A", "B", "C", "", ""]


def test_unique_fields_are_independent_of_each_other(tmp_path: Path) -> None:
    """Two unique fields are two separate constraints; a record rejected for one does not claim its
    value of the other."""
    spec = make_spec({"name": "id", "unique": True}, {"name": "ref", "unique": True})
    rows = [{"id": "1", "ref": "x"}, {"id": "1", "ref": "y"}, {"id": "2", "ref": "y"}, {"id": "3", "ref": "x"}]

    outcome = run_rows(tmp_path, spec, rows, chunk_size=2)

    assert [(r["_record_no"], r["_reject_rule"]) for r in outcome.rejected] == [(2, "unique:id"), (4, "unique:ref")]
    assert outcome.accepted == [{"id": "1", "ref": "x"}, {"id": "2", "ref": "y"}]


# --- a session of several files -----------------------------------------------------------------


def write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / name
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def session_outputs(session: TransformSession, source: Path, chunk_size: int = 2) -> tuple[list[dict], bytes]:
    work = Path(tempfile.mkdtemp(dir=source.parent))
    session.transform_file(source, work / "staged.parquet", work / "rejects.jsonl", chunk_size=chunk_size)
    return pq.read_table(work / "staged.parquet").to_pylist(), (work / "rejects.jsonl").read_bytes()


@pytest.mark.parametrize("chunk_size", [2, 100])
def test_a_session_gives_each_file_the_outputs_it_gets_alone(tmp_path: Path, chunk_size: int) -> None:
    """A vendor day runs its files through one session; sharing the connection and the query must
    not change a byte of any file's outputs, duplicates across files included (a value repeated in
    another file is not a duplicate: uniqueness is within a file)."""
    spec = make_spec({"name": "id", "unique": True}, {"name": "qty", "type": "integer"})
    sources = [
        write_rows(tmp_path, "a.jsonl", UNIQUE_ROWS),
        write_rows(tmp_path, "b.jsonl", [{"id": "A", "qty": "2"}, {"id": "C", "qty": "2"}, {"id": "A", "qty": "3"}]),
        write_rows(tmp_path, "empty.jsonl", []),
        write_rows(tmp_path, "c.jsonl", UNIQUE_ROWS[::-1]),
    ]

    with TransformSession(spec, {HASH_ENV: KEY}) as session:
        together = [session_outputs(session, source, chunk_size) for source in sources]
    alone = []
    for source in sources:
        outcome = run_file(tmp_path, spec, source, chunk_size=chunk_size)
        alone.append((outcome.accepted, outcome.rejects_bytes))

    assert together == alone
    assert [r["id"] for r in together[1][0]] == ["A", "C"]  # A and C were accepted in a.jsonl too


def test_a_file_that_fails_in_a_session_leaves_nothing_for_the_next_file(tmp_path: Path) -> None:
    """A file quarantined halfway (its values already remembered from its first chunks) must not
    make the next file's records duplicates, nor break the session for it."""
    spec = make_spec(
        {"name": "id", "unique": True},
        {"name": "qty"},
        business_rules=[{"field": "n", "expression": "CAST(qty AS INTEGER)"}],
    )
    rows = [{"id": "A", "qty": "1"}, {"id": "B", "qty": "1"}, {"id": "C", "qty": "x"}]  # C fails in chunk 2
    broken = write_rows(tmp_path, "broken.jsonl", rows)
    good = write_rows(tmp_path, "good.jsonl", [{"id": "A", "qty": "1"}, {"id": "A", "qty": "2"}])

    with TransformSession(spec, {HASH_ENV: KEY}) as session:
        with pytest.raises(duckdb.ConversionException):
            session_outputs(session, broken, chunk_size=2)
        accepted, rejects = session_outputs(session, good, chunk_size=2)

    assert accepted == [{"id": "A", "qty": "1", "n": 1}]
    assert [orjson.loads(line)["_reject_rule"] for line in rejects.splitlines()] == ["unique:id"]


def files_outputs(session: TransformSession, sources: list[Path], chunk_size: int) -> list[Any]:
    """Each file's (accepted, rejects bytes) from one transform_files, or its error."""
    jobs = []
    for source in sources:
        work = Path(tempfile.mkdtemp(dir=source.parent))
        jobs.append(FileJob(source, work / "staged.parquet", work / "rejects.jsonl"))
    outcomes = dict(session.transform_files(jobs, chunk_size=chunk_size))
    assert list(outcomes) == jobs  # one outcome per file
    return [
        outcomes[job]
        if isinstance(outcomes[job], Exception)
        else (pq.read_table(job.staged).to_pylist(), job.rejects.read_bytes())
        for job in jobs
    ]


@pytest.mark.parametrize("threads", [1, 2])
def test_small_files_that_share_a_query_get_the_outputs_each_gets_alone(
    tmp_path: Path, threads: int, shared_queries: list[int]
) -> None:
    """Files of one chunk or less run several to a query; their record numbers, duplicates and
    masked values must stay each file's own, byte for byte as alone, a value repeated in another
    file of the same query included. A larger file in between streams on its own."""
    spec = make_spec(
        {"name": "id", "unique": True},
        {"name": "qty", "type": "integer"},
        {"name": "ref"},
        masking={"ref": {"method": "hash"}},
    )
    rows = [{**row, "ref": f"r{i}"} for i, row in enumerate(UNIQUE_ROWS)]
    big = [{"id": f"X{i % 30}", "qty": str(i), "ref": "big"} for i in range(70)]  # > chunk_size: streamed
    sources = [
        write_rows(tmp_path, "a.jsonl", rows),
        write_rows(tmp_path, "b.jsonl", [{"id": "A", "qty": "2"}, {"id": "C", "qty": "2"}, {"id": "A", "qty": "3"}]),
        write_rows(tmp_path, "empty.jsonl", []),
        write_rows(tmp_path, "c.jsonl", rows[::-1]),
        write_rows(tmp_path, "big.jsonl", big),
        write_rows(tmp_path, "d.jsonl", rows[3:]),
        write_rows(tmp_path, "e.jsonl", rows[:4]),
        write_rows(tmp_path, "f.jsonl", rows + rows),  # 31 records with d and e: those two run on the worker
    ]
    with TransformSession(spec, {HASH_ENV: KEY}, threads=threads) as session:
        together = files_outputs(session, sources, chunk_size=30)
    alone = []
    for source in sources:
        outcome = run_file(tmp_path, spec, source, chunk_size=30)
        alone.append((outcome.accepted, outcome.rejects_bytes))

    assert shared_queries == [4, 2, 1]  # a, b, empty, c (23 records); big alone, streamed; d, e; f
    assert together == alone
    assert [r["id"] for r in together[1][0]] == ["A", "C"]  # A and C were accepted in a.jsonl too
    assert len(together[4][0]) == 30
    assert len(together[7][0]) == 7  # f's second half repeats its first


def test_a_business_rule_failing_on_one_file_of_a_shared_query_fails_that_file_alone(tmp_path: Path) -> None:
    """The shared query fails as a whole; each of its files then runs alone, so the error goes to
    the file whose data breaks the rule, and the others get their outputs as if nothing happened."""
    spec = make_spec(
        {"name": "id", "unique": True},
        {"name": "qty"},
        business_rules=[{"field": "n", "expression": "CAST(qty AS INTEGER)"}],
    )
    sources = [
        write_rows(tmp_path, "good1.jsonl", [{"id": "A", "qty": "1"}, {"id": "A", "qty": "2"}]),
        write_rows(tmp_path, "broken.jsonl", [{"id": "A", "qty": "1"}, {"id": "B", "qty": "x"}]),
        write_rows(tmp_path, "good2.jsonl", [{"id": "B", "qty": "3"}]),
    ]

    with TransformSession(spec, {HASH_ENV: KEY}) as session:
        good1, broken, good2 = files_outputs(session, sources, chunk_size=100)

    assert isinstance(broken, duckdb.ConversionException)
    assert good1[0] == [{"id": "A", "qty": "1", "n": 1}]
    assert [orjson.loads(line)["_reject_rule"] for line in good1[1].splitlines()] == ["unique:id"]
    assert good2 == ([{"id": "B", "qty": "3", "n": 3}], b"")


# --- parse errors -------------------------------------------------------------------------------


def test_a_record_the_reader_cannot_parse_becomes_a_parse_reject_and_is_counted(tmp_path: Path) -> None:
    """A broken line must neither vanish nor stop the file: it is a reject like any other."""
    spec = make_spec({"name": "id", "required": True}, {"name": "qty", "type": "integer"})
    source = tmp_path / "input.jsonl"
    source.write_bytes(b'{"id": "a", "qty": "1"}\n{"id": "b", "qty": \n{"id": "c", "qty": {"n": 1}}\n{"id": "d"}\n')

    outcome = run_file(tmp_path, spec, source, chunk_size=2)

    assert [(r["_record_no"], r["_line_no"], r["_reject_rule"]) for r in outcome.rejected] == [
        (2, 2, "parse"),
        (3, 3, "parse"),
    ]
    assert outcome.rejected[0]["_reject_reason"].startswith("record could not be parsed: not valid JSON")
    assert outcome.rejected[1]["_reject_reason"] == "record could not be parsed: nested value in qty"
    assert [r["id"] for r in outcome.accepted] == ["a", "d"]
    assert (outcome.result.rows_in, outcome.result.rows_out, outcome.result.rows_rejected) == (4, 2, 2)


def test_a_csv_line_with_the_wrong_number_of_fields_becomes_a_parse_reject(tmp_path: Path) -> None:
    spec = make_spec({"name": "id"}, {"name": "qty", "type": "integer"}, input_kind="csv")
    source = tmp_path / "input.csv"
    source.write_bytes(b"id,qty\na,1\nb,2,extra\nc,3\n")

    outcome = run_file(tmp_path, spec, source)

    [reject] = outcome.rejected
    assert (reject["_record_no"], reject["_reject_rule"]) == (2, "parse")
    assert reject["_reject_reason"] == "record could not be parsed: expected 2 fields, found 3"
    assert [r["id"] for r in outcome.accepted] == ["a", "c"]


# --- masking ------------------------------------------------------------------------------------


def reference_mask(method: str, value: str | None, *, keep: int = 4, key: bytes = KEY) -> str | None:
    """What each mask must produce, written independently of the SQL."""
    if value is None:
        return None
    match method:
        case "redact":
            return "*" * len(value)
        case "keep_last":
            return "*" * len(value) if len(value) <= keep else "*" * (len(value) - keep) + value[len(value) - keep :]
        case "email":
            local, at, domain = value.partition("@")
            return "*" * len(local) + at + domain if at else "*" * len(value)
        case "hash":
            return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    raise AssertionError(method)


MASK_CASES = {
    "redact": ({"method": "redact"}, ["Ana Silva", "x", "", "Müller-Lüdenscheidt"]),
    "keep_last 4": ({"method": "keep_last", "keep": 4}, ["123-45-6789", "12345", "1234", "123", "", "ñandú-ß1"]),
    "keep_last 0": ({"method": "keep_last", "keep": 0}, ["4111111111111111", "a"]),
    "email": ({"method": "email"}, ["ana.silva@example.com", "a@b", "no-at-sign", "x@y@z", "@example.com", ""]),
    "hash": ({"method": "hash"}, ["C123456", "", "Chloé Müller", "名前", "x" * 300]),
}


@pytest.mark.parametrize(("mask", "values"), MASK_CASES.values(), ids=MASK_CASES.keys())
def test_each_mask_turns_a_value_into_its_documented_form(
    tmp_path: Path, mask: dict[str, Any], values: list[str]
) -> None:
    """Masked outputs go to vendors and to analysts; a mask that keeps one character too many is a leak."""
    spec = make_spec({"name": "secret"}, masking={"secret": mask})

    outcome = run_rows(tmp_path, spec, [{"secret": v} for v in [*values, None]])

    expected = [reference_mask(mask["method"], v, keep=mask.get("keep", 4)) for v in [*values, None]]
    assert [r["secret"] for r in outcome.accepted] == expected


@pytest.mark.parametrize(
    "key", [b"k", b"a" * 64, b"b" * 65, "clé-secrète".encode() * 10], ids=["short", "64 bytes", "65 bytes", "long"]
)
def test_hash_masking_is_hmac_sha256_with_the_key_of_the_mask(tmp_path: Path, key: bytes) -> None:
    """Pseudonyms must be reproducible outside the platform (joins with other systems, subject access
    requests), so the SQL spelling of HMAC must equal the standard one for every key length."""
    spec = make_spec(
        {"name": "customer"},
        {"name": "email"},
        masking={"customer": {"method": "hash"}, "email": {"method": "hash", "secret_env": "OTHER_KEY"}},
    )
    values = ["C000001", "Chloé", ""]

    outcome = run_rows(
        tmp_path, spec, [{"customer": v, "email": v} for v in values], keys={HASH_ENV: key, "OTHER_KEY": b"other"}
    )

    assert [r["customer"] for r in outcome.accepted] == [
        hmac.new(key, v.encode(), "sha256").hexdigest() for v in values
    ]
    assert [r["email"] for r in outcome.accepted] == [
        hmac.new(b"other", v.encode(), "sha256").hexdigest() for v in values
    ]


def test_a_masked_field_is_masked_in_rejects_too_and_its_clear_value_appears_nowhere(tmp_path: Path) -> None:
    """Rejects go back to the vendor and into support tickets; a rejected record is no less personal
    than an accepted one, and a reason quoting the value would undo the mask."""
    spec = make_spec(
        {"name": "ssn", "required": True, "regex": "[0-9]{3}-[0-9]{2}-[0-9]{4}", "unique": True},
        {"name": "customer_id", "required": True},
        {"name": "email", "regex": "[^@]+@[^@]+"},
        {"name": "full_name"},
        {"name": "qty", "type": "integer", "min": 1},
        mappings=[
            {"source": "ssn"},
            {"source": "customer_id", "target": "customer_ref"},
            {"source": "email"},
            {"source": "full_name"},
            {"source": "qty"},
        ],
        masking={
            "ssn": {"method": "keep_last", "keep": 4},
            "customer_ref": {"method": "hash"},
            "email": {"method": "email"},
            "full_name": {"method": "redact"},
        },
    )
    clear = {"customer_id": "CUST-998877", "email": "ana.silva@secret-domain.test", "full_name": "Ana Sofia Silva"}
    rows = [
        {**clear, "ssn": "111-11-1111", "qty": "0"},  # min on another field
        {**clear, "ssn": "222-22-2222", "qty": "lots"},  # type on another field
        {**clear, "ssn": "333-33-333X", "email": "ana.silva-at-secret-domain.test", "qty": "1"},  # masked fields
        {**clear, "ssn": "444-44-4444", "qty": "1"},  # accepted
        {**clear, "ssn": "444-44-4444", "qty": "2"},  # duplicate of a masked unique field
    ]
    outcome = run_rows(tmp_path, spec, rows, chunk_size=2)

    assert [r["_reject_rule"] for r in outcome.rejected] == ["min:qty", "type:qty", "regex:ssn", "unique:ssn"]
    assert outcome.rejected[2]["_reject_reason"] == (
        "ssn: does not match the required pattern; email: does not match the required pattern"
    )
    for reject, row in zip(outcome.rejected, [rows[0], rows[1], rows[2], rows[4]], strict=True):
        assert reject["ssn"] == reference_mask("keep_last", row["ssn"])
        assert reject["customer_id"] == reference_mask("hash", row["customer_id"])
        assert reject["email"] == reference_mask("email", row["email"])
        assert reject["full_name"] == reference_mask("redact", row["full_name"])
        assert reject["qty"] == row["qty"]
    clear_values = [*clear.values(), *(row["ssn"] for row in rows), rows[2]["email"], "ana.silva", "Ana Sofia"]
    for value in clear_values:
        assert value.encode() not in outcome.rejects_bytes
    assert outcome.accepted == [
        {
            "ssn": reference_mask("keep_last", "444-44-4444"),
            "customer_ref": reference_mask("hash", clear["customer_id"]),
            "email": reference_mask("email", clear["email"]),
            "full_name": reference_mask("redact", clear["full_name"]),
            "qty": 1,
        }
    ]


def test_a_missing_hash_key_names_the_vendor_the_field_and_the_variable_to_set(demo_specs) -> None:
    """Hashing with an empty key would publish pseudonyms anyone can recompute; the run must stop and
    tell the operator exactly what to set."""
    spec = demo_specs["acme_retail"]

    for environ in ({}, {HASH_ENV: ""}):
        with pytest.raises(MaskingKeyError) as raised:
            resolve_keys(spec, environ)
        message = str(raised.value)
        assert "'acme_retail'" in message
        assert "'customer_ref'" in message
        assert f"${HASH_ENV}" in message

    assert resolve_keys(spec, {HASH_ENV: "s3cret"}) == {HASH_ENV: b"s3cret"}


def test_only_hash_masks_need_a_key(tmp_path: Path) -> None:
    """A vendor that only redacts must run where no hash key is configured."""
    spec = make_spec(
        {"name": "a"},
        {"name": "b"},
        masking={"a": {"method": "redact"}, "b": {"method": "hash", "secret_env": "VENDOR_B_KEY"}},
    )

    assert resolve_keys(spec, {"VENDOR_B_KEY": "kb"}) == {"VENDOR_B_KEY": b"kb"}
    with pytest.raises(MaskingKeyError, match=r"field 'b'.*\$VENDOR_B_KEY"):
        resolve_keys(spec, {HASH_ENV: "not the one this mask reads"})
    redact_only = make_spec({"name": "a"}, masking={"a": {"method": "redact"}})
    assert resolve_keys(redact_only, {}) == {}


# --- mappings and business rules ----------------------------------------------------------------


def test_mappings_rename_reorder_and_drop_fields(tmp_path: Path) -> None:
    """The outbound layout is the vendor's contract; a field left out must not leak into it."""
    spec = make_spec(
        {"name": "a", "type": "integer"},
        {"name": "b"},
        {"name": "c", "type": "date"},
        mappings=[{"source": "c", "target": "when"}, {"source": "a"}],
    )

    outcome = run_rows(tmp_path, spec, [{"a": "1", "b": "dropped", "c": "2024-05-06"}])

    assert outcome.accepted == [{"when": dt.date(2024, 5, 6), "a": 1}]
    assert list(outcome.accepted[0]) == ["when", "a"]


def test_without_mappings_every_schema_field_is_output_in_schema_order(tmp_path: Path) -> None:
    spec = make_spec({"name": "z"}, {"name": "y", "type": "integer"}, {"name": "x"})

    outcome = run_rows(tmp_path, spec, [{"x": "3", "y": "2", "z": "1"}])

    assert [list(r.items()) for r in outcome.accepted] == [[("z", "1"), ("y", 2), ("x", "3")]]


def test_business_rules_derive_and_rewrite_fields_in_order_over_the_mapped_names(tmp_path: Path) -> None:
    """Rules build on each other (a total, then a tax on the total), so they must run in the order
    written, over the names after mapping, on typed values."""
    spec = make_spec(
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "decimal", "scale": 2},
        {"name": "sku"},
        mappings=[{"source": "sku", "target": "item"}, {"source": "qty"}, {"source": "price"}],
        business_rules=[
            {"field": "total", "expression": "qty * price"},
            {"field": "item", "expression": "upper(trim(item))"},
            {"field": "total", "expression": "total + 1"},
            {"field": "label", "expression": "item || ':' || CAST(total AS VARCHAR)"},
        ],
    )

    outcome = run_rows(tmp_path, spec, [{"qty": "3", "price": "2.50", "sku": "  ab-1 "}])

    assert outcome.accepted == [
        {"item": "AB-1", "qty": 3, "price": Decimal("2.50"), "total": Decimal("8.50"), "label": "AB-1:8.50"}
    ]
    assert list(outcome.accepted[0]) == ["item", "qty", "price", "total", "label"]


def test_business_rules_see_clear_values_and_masks_apply_to_their_results(tmp_path: Path) -> None:
    """A rule deriving from a personal field needs the real value, and a masked field that a rule
    rewrites must still leave masked."""
    spec = make_spec(
        {"name": "email"},
        business_rules=[
            {"field": "domain", "expression": "split_part(email, '@', 2)"},
            {"field": "email", "expression": "lower(email)"},
        ],
        masking={"email": {"method": "hash"}},
    )

    outcome = run_rows(tmp_path, spec, [{"email": "Ana@Example.COM"}])

    assert outcome.accepted == [{"email": reference_mask("hash", "ana@example.com"), "domain": "Example.COM"}]


def test_business_rules_are_not_evaluated_on_rejected_records(tmp_path: Path) -> None:
    """A rule may rely on validated data (a cast); a bad record must be rejected, not crash the file."""
    spec = make_spec(
        {"name": "code", "regex": "[0-9]+"},
        business_rules=[{"field": "code_number", "expression": "CAST(code AS INTEGER) + 1"}],
    )

    outcome = run_rows(tmp_path, spec, [{"code": "41"}, {"code": "forty-two"}])

    assert outcome.accepted == [{"code": "41", "code_number": 42}]
    assert [r["_reject_rule"] for r in outcome.rejected] == ["regex:code"]


# --- order and conservation ---------------------------------------------------------------------


def test_accepted_and_rejected_records_keep_the_input_order(tmp_path: Path) -> None:
    """Vendors reconcile outbound files line by line against what they sent; window functions (the
    unique check) and threads may reorder rows inside DuckDB."""
    spec = make_spec({"name": "id", "unique": True}, {"name": "n", "type": "integer", "max": 900})
    rows = [{"id": f"k{(i * 7919) % 3000}", "n": str((i * 31) % 1000)} for i in range(6000)]

    outcome = run_rows(tmp_path, spec, rows, chunk_size=2500)

    def record_is_kept(number: int) -> bool:
        return outcome.rule_of(number) is None

    expected_accepted = [rows[n - 1]["id"] for n in range(1, len(rows) + 1) if record_is_kept(n)]
    assert outcome.rejected and outcome.accepted
    assert [r["id"] for r in outcome.accepted] == expected_accepted
    assert [r["_record_no"] for r in outcome.rejected] == sorted(r["_record_no"] for r in outcome.rejected)
    assert {r["_reject_rule"] for r in outcome.rejected} == {"unique:id", "max:n"}


@pytest.mark.parametrize("vendor_id", DEMO_VENDORS)
def test_every_generated_record_of_a_demo_vendor_is_either_output_or_rejected(
    tmp_path: Path, demo_specs: dict[str, VendorSpec], vendor_id: str
) -> None:
    """rows_in = rows_out + rows_rejected is the check that guards every vendor run; the generator
    knows how many records it broke, so the rejects must be exactly those."""
    spec = demo_specs[vendor_id]
    source = tmp_path / file_name_for(spec, "2026-03-02", 1)
    generated = write_vendor_file(spec, source, 600, invalid_share=0.1, seed=11)
    progress: list[Progress] = []

    work = tmp_path / "out"
    work.mkdir()
    result = transform_file(
        spec,
        source,
        work / "staged.parquet",
        work / "rejects.jsonl",
        keys={HASH_ENV: KEY},
        chunk_size=128,
        progress=progress.append,
    )

    assert generated.invalid > 0
    assert result.rows_in == generated.records
    assert result.rows_rejected == generated.invalid
    assert result.rows_out == generated.records - generated.invalid
    assert sum(result.rejects_by_rule.values()) == result.rows_rejected
    assert pq.ParquetFile(work / "staged.parquet").metadata.num_rows == result.rows_out
    assert len((work / "rejects.jsonl").read_bytes().splitlines()) == result.rows_rejected
    assert pq.read_schema(work / "staged.parquet").names == spec.output_fields
    assert progress[-1].records == generated.records
    assert progress[-1].bytes_read == source.stat().st_size


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from batch_assets.lib.engine import transform_file
    from batch_assets.lib.specs import load_vendor_spec

    spec_path, source, out = (Path(a) for a in sys.argv[1:4])
    result = transform_file(
        load_vendor_spec(spec_path), source, out / "staged.parquet", out / "rejects.jsonl",
        keys={"BATCH_ASSETS_HASH_KEY": b"memory-test"}, chunk_size=20_000,
    )
    # VmHWM is this image's own peak; ru_maxrss would keep the forking pytest worker's peak.
    status = Path("/proc/self/status").read_text()
    peak_mb = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) / 1024
    counts = {"rows_in": result.rows_in, "rows_out": result.rows_out, "rows_rejected": result.rows_rejected}
    print(json.dumps({"counts": counts, "peak_mb": peak_mb}))
    """
)

BULK_SPEC = {
    "vendor_id": "bulk_orders",
    "name": "Bulk orders",
    "input": {"kind": "csv"},
    "output": {"format": {"kind": "csv"}},
    "schema": [
        {"name": "order_no", "required": True, "unique": True, "regex": "O[0-9]{7}"},
        {"name": "quantity", "type": "integer", "required": True, "min": 1},
        {"name": "unit_price", "type": "decimal", "scale": 2, "required": True},
        {"name": "order_date", "type": "date", "required": True},
        {"name": "channel", "allowed": ["store", "web", "phone"]},
        {"name": "customer_email"},
        {"name": "note"},
    ],
    "business_rules": [{"field": "line_total", "expression": "quantity * unit_price"}],
    "masking": {"customer_email": {"method": "hash"}},
}


def write_bulk_csv(path: Path, records: int) -> int:
    """A large CSV for BULK_SPEC, written fast; every 97th record has quantity 0. Returns the rejects."""
    channels = ["store", "web", "phone"]
    with path.open("w", encoding="utf-8") as sink:
        sink.write("order_no,quantity,unit_price,order_date,channel,customer_email,note\n")
        for start in range(0, records, 10_000):
            sink.write(
                "".join(
                    f"O{i:07d},{0 if i % 97 == 0 else 1 + i % 50},{(i % 10_000) / 100:.2f},"
                    f"2026-{1 + i % 12:02d}-{1 + i % 28:02d},{channels[i % 3]},customer{i % 5000}@example.com,"
                    f'"deliver to dock {i % 40}, ring twice; reference {i * 7919 % 1_000_003}"\n'
                    for i in range(start, min(start + 10_000, records))
                )
            )
    return len(range(0, records, 97))


def test_a_large_file_is_transformed_in_bounded_memory(tmp_path: Path) -> None:
    """Vendor files are larger than a worker's memory; the engine must stream chunks instead of
    loading the file. Measured (VmHWM of the child): 320 MB in 20K-record chunks, of which ~90 MB
    are imports; 794 MB when the whole file is one chunk, which the bound catches."""
    records = 300_000
    source = tmp_path / "bulk.csv"
    expected_rejects = write_bulk_csv(source, records)
    spec_path = tmp_path / "bulk_orders.yaml"
    spec_path.write_text(yaml.safe_dump(BULK_SPEC), encoding="utf-8")

    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(spec_path), str(source), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["counts"] == {
        "rows_in": records,
        "rows_out": records - expected_rejects,
        "rows_rejected": expected_rejects,
    }
    assert report["peak_mb"] < 450, f"peak RSS {report['peak_mb']:.0f} MB"


# --- fixed-width output -------------------------------------------------------------------------


def fixed_width_spec(**extra: Any) -> VendorSpec:
    return make_spec(
        {"name": "id", "unique": True},
        {"name": "name"},
        output={
            "format": {
                "kind": "fixed_width",
                "fields": [
                    {"name": "id", "start": 1, "width": 4},
                    {"name": "name", "start": 5, "width": 6},
                    {"name": "tag", "start": 11, "width": 6},
                ],
            }
        },
        business_rules=[{"field": "tag", "expression": "upper(name)"}],
        **extra,
    )


def test_a_value_longer_than_its_fixed_width_output_field_is_rejected_never_truncated(tmp_path: Path) -> None:
    """A cut value in a fixed-width file is silently wrong data; the record goes to rejects instead,
    with the field named, and the width is counted in characters, not bytes."""
    spec = fixed_width_spec()
    rows = [
        {"id": "1", "name": "Müller"},  # 6 characters, 7 bytes: fits
        {"id": "22222", "name": "Ana"},  # id too long
        {"id": "3", "name": "Bartholomew"},  # name too long
        {"id": "4", "name": "Ana"},
    ]

    outcome = run_rows(tmp_path, spec, rows)

    assert outcome.accepted == [
        {"id": "1", "name": "Müller", "tag": "MÜLLER"},
        {"id": "4", "name": "Ana", "tag": "ANA"},
    ]
    assert [(r["_record_no"], r["_reject_rule"], r["_reject_reason"]) for r in outcome.rejected] == [
        (2, "output_width:id", "id: longer than its 4-character output field"),
        (3, "output_width:name", "name: longer than its 6-character output field"),
    ]
    assert [r["name"] for r in outcome.rejected] == ["Ana", "Bartholomew"]


def test_the_width_is_checked_on_the_masked_and_derived_value_that_will_be_written(tmp_path: Path) -> None:
    """What must fit is what the writer writes: a hash is 64 characters whatever the input."""
    spec = fixed_width_spec(masking={"tag": {"method": "hash"}})

    outcome = run_rows(tmp_path, spec, [{"id": "1", "name": "Ana"}])

    assert outcome.accepted == []
    assert [r["_reject_rule"] for r in outcome.rejected] == ["output_width:tag"]


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_a_record_rejected_for_its_width_blocks_its_duplicates_in_any_chunk(tmp_path: Path, chunk_size: int) -> None:
    """The unique check runs before the width check; the outcome of a later duplicate must not depend
    on whether it shares a chunk with the record it duplicates."""
    spec = fixed_width_spec()
    rows = [{"id": "1", "name": "Bartholomew"}, {"id": "1", "name": "Ana"}, {"id": "2", "name": "Ana"}]

    outcome = run_rows(tmp_path, spec, rows, chunk_size=chunk_size)

    assert [(r["_record_no"], r["_reject_rule"]) for r in outcome.rejected] == [
        (1, "output_width:name"),
        (2, "unique:id"),
    ]
    assert [r["id"] for r in outcome.accepted] == ["2"]


def test_a_fixed_width_vendor_gets_exactly_the_text_whose_width_was_checked(tmp_path: Path) -> None:
    """The width is checked on the staged text and the writer pads that same text: a timestamp with
    a fraction or a float cannot pass the check and then overflow (or fail) at delivery."""
    from batch_assets.lib.formats import open_writer

    spec = make_spec(
        {"name": "at", "type": "timestamp"},
        {"name": "x", "type": "float"},
        output={
            "format": {
                "kind": "fixed_width",
                "fields": [{"name": "at", "start": 1, "width": 26}, {"name": "x", "start": 27, "width": 6}],
            }
        },
    )
    rows = [{"at": "2026-11-20 10:00:00.123456", "x": "1000"}, {"at": "2026-11-20 10:00:00", "x": "0.25"}]

    outcome = run_rows(tmp_path, spec, rows)

    assert outcome.rejected == []
    staged = pq.read_table(next(tmp_path.glob("*/staged.parquet")))
    out = tmp_path / "out.txt"
    with open(out, "wb") as sink:
        writer = open_writer(spec.output.format, sink, staged.schema)
        for batch in staged.to_batches():
            writer.write_batch(batch)
        writer.close()
    lines = out.read_text().splitlines()
    assert [line[:26].rstrip() for line in lines] == [r["at"] for r in outcome.accepted]
    assert all(len(line) <= 32 for line in lines)
