"""What every baseline shares: the spec's rules as plain data, the masks, the outbound and rejects text.

The baselines implement the engine's contract for CSV in / CSV out vendors (validate -> map ->
business rules -> mask; first broken rule and every reason; unique within the file; rejected
records keep their raw fields, masked) so their outputs can be compared byte for byte with the
engine's. Business rules are SQL in the spec, so they are hand-written here for acme_retail's two
rules; any other rule, type or format fails loudly instead of benchmarking different work.
"""

from __future__ import annotations

import hmac
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from batch_assets.lib.specs.model import CsvFormat, FieldType, Mask, SchemaField, VendorSpec

# The business rules the baselines implement, as the spec spells them.
BUSINESS_RULES = {"line_total": "quantity * unit_price", "sku": "upper(trim(sku))"}
TYPES = {FieldType.STRING, FieldType.INTEGER, FieldType.DECIMAL, FieldType.DATE}
MASKS = {"hash", "email", "redact", "keep_last"}
INTEGER_SHAPE = r"[+-]?[0-9]+"
ISO_DATE_SHAPE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DUPLICATE = "{name}: duplicate of an earlier record"
OUTBOUND, REJECTS = "outbound.csv", "rejects.jsonl"


def decimal_shape(scale: int) -> str:
    """The engine's test that a decimal has at most ``scale`` places (more are refused, never rounded)."""
    return rf"[+-]?([0-9]+(\.[0-9]{{0,{scale}}})?|\.[0-9]{{1,{scale}}})" if scale else INTEGER_SHAPE


@dataclass(frozen=True)
class Check:
    """One rule of one field, in the engine's order: required, type, regex, min, max, allowed."""

    kind: str
    field: SchemaField
    rule: str
    message: str


def checks_of(f: SchemaField) -> list[Check]:
    n = f.name
    found = []
    if f.required:
        found.append(Check("required", f, f"required:{n}", f"{n}: required value is missing"))
    if f.type != FieldType.STRING:
        fmt = f" in format {f.format}" if f.format else ""
        found.append(Check("type", f, f"type:{n}", f"{n}: not a valid {f.type.value}{fmt}"))
    if f.regex is not None:
        found.append(Check("regex", f, f"regex:{n}", f"{n}: does not match the required pattern"))
    if f.min is not None:
        found.append(Check("min", f, f"min:{n}", f"{n}: below the minimum {f.min:g}"))
    if f.max is not None:
        found.append(Check("max", f, f"max:{n}", f"{n}: above the maximum {f.max:g}"))
    if f.allowed is not None:
        found.append(Check("allowed", f, f"allowed:{n}", f"{n}: not one of the allowed values"))
    return found


@dataclass
class Plan:
    """The spec, checked to be within what the baselines implement, in the shape they use."""

    spec: VendorSpec
    key: bytes
    checks: list[Check] = field(init=False)
    outputs: list[tuple[str, str]] = field(init=False)  # (output name, schema field) of the mappings
    raw_masks: dict[str, Mask] = field(init=False)  # schema field -> the mask of its output

    def __post_init__(self) -> None:
        spec = self.spec
        problems = []
        if not isinstance(spec.input, CsvFormat) or not isinstance(spec.output.format, CsvFormat):
            problems.append("CSV in and CSV out only")
        if {r.field: r.expression for r in spec.business_rules} != BUSINESS_RULES:
            problems.append(f"business rules must be exactly {BUSINESS_RULES}")
        if any(f.type not in TYPES or f.format for f in spec.schema_):
            problems.append(f"field types {sorted(TYPES)} without formats only")
        if any(m.method not in MASKS for m in spec.masking.values()):
            problems.append(f"masks {sorted(MASKS)} only")
        if problems:
            raise NotImplementedError(f"the baselines cannot run {spec.vendor_id}: " + "; ".join(problems))
        self.checks = [c for f in spec.schema_ for c in checks_of(f)]
        self.outputs = [(m.output_name, m.source) for m in spec.mappings] or [(f.name, f.name) for f in spec.schema_]
        by_output = dict(self.outputs)
        self.raw_masks = {by_output[o]: m for o, m in spec.masking.items() if o in by_output}

    @property
    def fields(self) -> list[SchemaField]:
        return self.spec.schema_

    @property
    def unique(self) -> list[SchemaField]:
        return [f for f in self.spec.schema_ if f.unique]

    @property
    def output_names(self) -> list[str]:
        return self.spec.output_fields

    def mask(self, name: str) -> Mask | None:
        return self.spec.masking.get(name)


# ---------------------------------------------------------------- masks, one value at a time


def hmac_hex(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the UTF-8 text, in lower-case hex (what the engine's SQL computes)."""
    return hmac.digest(key, value.encode(), "sha256").hex()


def mask_value(mask: Mask, value: str | None, key: bytes) -> str | None:
    if value is None:
        return None
    if mask.method == "hash":
        return hmac_hex(key, value)
    if mask.method == "email":
        at = value.find("@")
        return "*" * at + value[at:] if at >= 0 else "*" * len(value)
    if mask.method == "redact":
        return "*" * len(value)
    keep = mask.keep
    return "*" * len(value) if len(value) <= keep else "*" * (len(value) - keep) + value[-keep:]


# ---------------------------------------------------------------- outbound text


def csv_quote(value: str | None, delimiter: str, quote: str) -> str:
    """The engine's CSV quoting: null is nothing, "" and values holding specials are quoted."""
    if value is None:
        return ""
    if value == "" or delimiter in value or quote in value or "\r" in value or "\n" in value:
        return quote + value.replace(quote, quote + quote) + quote
    return value


@dataclass
class Counts:
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rejects_by_rule: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
            "rejects_by_rule": dict(sorted(self.rejects_by_rule.items())),
        }


def outputs(out_dir: Path) -> tuple[Path, Path]:
    return out_dir / OUTBOUND, out_dir / REJECTS
