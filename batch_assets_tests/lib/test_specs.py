"""Vendor spec files: the demo vendors load, and a broken spec is refused before any run starts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from batch_assets.lib.specs import VendorSpec, VendorSpecError, load_vendor_spec, load_vendor_specs
from batch_assets.lib.specs.model import FieldType


@pytest.fixture(scope="module")
def vendors_dir(pytestconfig: pytest.Config) -> Path:
    return pytestconfig.rootpath / "vendors"


def sample_spec() -> dict[str, Any]:
    """A small valid spec; each broken-spec case changes one thing in it."""
    return {
        "vendor_id": "sample_vendor",
        "name": "Sample Vendor",
        "file_pattern": "sample_*.csv",
        "input": {"kind": "csv"},
        "output": {"format": {"kind": "csv"}},
        "schema": [
            {"name": "record_id", "required": True, "unique": True, "regex": "R[0-9]{4}"},
            {"name": "amount", "type": "decimal", "min": 0, "max": 1000},
            {"name": "email"},
        ],
        "mappings": [{"source": "record_id", "target": "id"}, {"source": "amount"}, {"source": "email"}],
        "business_rules": [{"field": "amount_x2", "expression": "amount * 2"}],
        "masking": {"email": {"method": "email"}},
    }


def write_spec(folder: Path, spec: dict[str, Any], name: str | None = None) -> Path:
    path = folder / f"{name or spec['vendor_id']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def fixed_width_output(fields: list[tuple[str, int, int]]) -> dict[str, Any]:
    return {"format": {"kind": "fixed_width", "fields": [{"name": n, "start": s, "width": w} for n, s, w in fields]}}


# --- the demo vendors ---------------------------------------------------------------------------


def test_every_demo_vendor_spec_loads_and_is_named_after_its_file(vendors_dir: Path) -> None:
    """The code location builds one asset set per file in vendors/; one bad file would stop them all."""
    files = sorted(vendors_dir.glob("*.yaml"))
    specs = load_vendor_specs(vendors_dir)

    assert files, "the demo has vendor spec files"
    assert [spec.vendor_id for spec in specs] == [path.stem for path in files]
    assert all(isinstance(spec, VendorSpec) for spec in specs)


def test_the_demo_vendors_together_cover_every_input_format_type_and_mask(demo_specs: dict[str, VendorSpec]) -> None:
    """Tests that run 'for every demo vendor' only prove something for the formats, types and
    masks the demo vendors actually use."""
    specs = list(demo_specs.values())

    assert {spec.input.kind for spec in specs} == {"csv", "json", "jsonl", "xml", "fixed_width"}
    assert {spec.output.granularity for spec in specs} == {"per_file", "per_day"}
    assert {m.method for spec in specs for m in spec.masking.values()} == {"redact", "keep_last", "email", "hash"}
    assert {f.type for spec in specs for f in spec.schema_} == set(FieldType)


def test_the_sample_spec_used_by_the_broken_spec_cases_is_itself_valid(tmp_path: Path) -> None:
    """Otherwise each broken-spec case below could fail for a reason other than the one it names."""
    spec = load_vendor_spec(write_spec(tmp_path, sample_spec()))

    assert spec.output_fields == ["id", "amount", "email", "amount_x2"]


def test_a_folder_that_does_not_exist_is_refused_with_its_path(tmp_path: Path) -> None:
    """A mistyped BATCH_ASSETS_VENDORS_DIR must not look like a deployment without vendors."""
    missing = tmp_path / "no_such_folder"

    with pytest.raises(VendorSpecError, match="does not exist") as raised:
        load_vendor_specs(missing)
    assert str(missing) in str(raised.value)


def test_one_broken_file_in_the_folder_is_named_when_the_folder_loads(tmp_path: Path) -> None:
    """The operator must know which of many vendor files to fix."""
    write_spec(tmp_path, sample_spec())
    broken = sample_spec() | {"vendor_id": "broken_vendor", "priority": "URGENT"}
    broken_path = write_spec(tmp_path, broken)

    with pytest.raises(VendorSpecError) as raised:
        load_vendor_specs(tmp_path)
    assert str(broken_path) in str(raised.value)
    assert "priority" in str(raised.value)


# --- broken specs -------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets the value at a dotted path ('schema.1.min') of the spec."""

    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _append(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec[path].append(value)

    return change


ALL_OUTPUT_FIELDS = [("id", 1, 5), ("amount", 6, 10), ("email", 16, 40), ("amount_x2", 56, 12)]

BROKEN_SPECS = {
    "unknown format kind": (_set("input", {"kind": "parquet"}), ["input", "'parquet'", "does not match"]),
    "regex that does not compile": (_set("schema.0.regex", "R[0-9"), ["schema.0.regex", "invalid regex"]),
    "min greater than max": (_set("schema.1.min", 5000), ["schema.1", "min is greater than max"]),
    "min on a string field": (
        _set("schema.2.min", 1),
        ["schema.2", "min/max apply only to integer, decimal and float fields"],
    ),
    "mapping from a field not in the schema": (
        _append("mappings", {"source": "no_such_field"}),
        ["mappings", "'no_such_field' is not a schema field"],
    ),
    "masking a field that is not output": (
        _set("masking", {"no_such_field": {"method": "redact"}}),
        ["masking", "'no_such_field' is not an output field"],
    ),
    "duplicate schema names": (
        _append("schema", {"name": "email", "type": "string"}),
        ["schema", "duplicate field names", "'email'"],
    ),
    "xml record path with an undeclared namespace prefix": (
        _set("output", {"format": {"kind": "xml", "record_path": "v:rows/v:row", "namespaces": {"w": "urn:w"}}}),
        ["output.format.xml", "namespace prefix of 'v:rows' is not declared"],
    ),
    "fixed-width fields that overlap": (
        _set("output", fixed_width_output([("id", 1, 5), ("amount", 5, 10), ("email", 16, 40), ("amount_x2", 56, 12)])),
        ["output.format.fixed_width", "fields 'id' and 'amount' overlap"],
    ),
    "fixed-width output without a layout for an output field": (
        _set("output", fixed_width_output(ALL_OUTPUT_FIELDS[:3])),
        ["output.format.fields", "no layout for output fields", "'amount_x2'"],
    ),
    "business rule with invalid SQL": (
        _append("business_rules", {"field": "bad_total", "expression": "amount +* no_such_column"}),
        ["business_rules", "field 'bad_total'", "amount +* no_such_column", "is invalid"],
    ),
    "business rule naming a column that does not exist": (
        _append("business_rules", {"field": "bad_total", "expression": "no_such_column + 1"}),
        ["business_rules", "field 'bad_total'", "no_such_column"],
    ),
    "broken business rule before a good one": (
        _set(
            "business_rules", [{"field": "bad_total", "expression": "nope(amount)"}, {"field": "x", "expression": "1"}]
        ),
        ["business_rules", "field 'bad_total'", "nope(amount)", "is invalid"],
    ),
}


@pytest.mark.parametrize(("change", "expected"), BROKEN_SPECS.values(), ids=BROKEN_SPECS.keys())
def test_a_broken_spec_is_refused_with_the_file_the_field_and_the_problem(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    """A broken vendor file must fail when the code location loads, saying where to look, not halfway
    through a run at 3 a.m."""
    spec = copy.deepcopy(sample_spec())
    change(spec)
    path = write_spec(tmp_path, spec)

    with pytest.raises(VendorSpecError) as raised:
        load_vendor_spec(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message


def test_a_fixed_width_output_with_a_layout_for_every_output_field_is_accepted(tmp_path: Path) -> None:
    """The counterpart of the two fixed-width refusals: they refuse the mistake, not the format."""
    spec = sample_spec() | {"output": fixed_width_output(ALL_OUTPUT_FIELDS)}

    assert load_vendor_spec(write_spec(tmp_path, spec)).output.format.line_width == 67


def test_a_vendor_id_that_differs_from_the_file_name_is_refused(tmp_path: Path) -> None:
    """Sensors find a vendor's spec by the folder name in inbound/; the two must be the same word."""
    path = write_spec(tmp_path, sample_spec(), name="other_vendor")

    with pytest.raises(VendorSpecError) as raised:
        load_vendor_spec(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert "vendor_id 'sample_vendor' must match the file name 'other_vendor'" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("vendor_id: [sample_vendor\nname: : :\n", "not valid YAML"),
        ("\tvendor_id: sample_vendor\n", "not valid YAML"),
        ("just a sentence, not a spec\n", "expected a mapping at the top level"),
        ("- vendor_id: sample_vendor\n", "expected a mapping at the top level"),
        ("", "expected a mapping at the top level"),
    ],
    ids=["unclosed bracket", "tab indentation", "plain text", "a list", "empty file"],
)
def test_a_file_that_is_not_a_yaml_mapping_is_refused_with_its_path(tmp_path: Path, text: str, problem: str) -> None:
    """Whatever lands in vendors/ (an editor backup, a half-saved file) must fail with a readable
    message, not a traceback from deep inside pydantic."""
    path = tmp_path / "sample_vendor.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(VendorSpecError) as raised:
        load_vendor_spec(path)
    assert str(raised.value).startswith(f"{path}: {problem}")


def test_a_passed_sql_check_is_remembered_per_spec_content_and_a_failure_never_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run worker loads the code location again; a spec that passed is not compiled again,
    while a changed spec, or one that failed, is checked afresh."""
    from batch_assets.lib.engine import transform

    monkeypatch.setenv("BATCH_ASSETS_SPEC_CHECK_CACHE", str(tmp_path / "cache"))
    checked: list[str] = []
    real_check = transform.check_spec_sql
    monkeypatch.setattr(transform, "check_spec_sql", lambda spec: checked.append(spec.vendor_id) or real_check(spec))
    good = write_spec(tmp_path, sample_spec())
    broken_spec = sample_spec() | {"vendor_id": "broken", "business_rules": [{"field": "x", "expression": "nope()"}]}
    broken = write_spec(tmp_path, broken_spec)

    load_vendor_spec(good)
    load_vendor_spec(good)
    assert checked == ["sample_vendor"]

    write_spec(tmp_path, sample_spec() | {"business_rules": [{"field": "amount_x3", "expression": "amount * 3"}]})
    load_vendor_spec(good)
    assert checked == ["sample_vendor", "sample_vendor"]

    for _ in range(2):
        with pytest.raises(VendorSpecError, match="field 'x'"):
            load_vendor_spec(broken)
    assert checked == ["sample_vendor", "sample_vendor", "broken", "broken"]
