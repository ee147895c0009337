"""Baseline: plain Python, one record at a time (csv, re, decimal, datetime, hmac, json)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from batch_assets.lib.specs.model import FieldType, SchemaField
from benchmarks.baselines.common import (
    DUPLICATE,
    INTEGER_SHAPE,
    ISO_DATE_SHAPE,
    Counts,
    Plan,
    csv_quote,
    decimal_shape,
    mask_value,
    outputs,
)

INT64 = 1 << 63


def _parser(f: SchemaField):
    """Text -> typed value, or None when the text is not a valid value of the type."""
    if f.type == FieldType.INTEGER:
        shape = re.compile(INTEGER_SHAPE)
        return lambda v: int(v) if shape.fullmatch(v) and -INT64 <= int(v) < INT64 else None
    if f.type == FieldType.DECIMAL:
        shape, unit = re.compile(decimal_shape(f.scale)), Decimal(1).scaleb(-f.scale)

        def decimal(v: str) -> Decimal | None:
            try:
                return Decimal(v).quantize(unit) if shape.fullmatch(v) else None
            except InvalidOperation:  # more than 38 digits
                return None

        return decimal
    if f.type == FieldType.DATE:
        shape = re.compile(ISO_DATE_SHAPE)

        def date(v: str) -> dt.date | None:
            try:
                return dt.date.fromisoformat(v) if shape.fullmatch(v) else None
            except ValueError:
                return None

        return date
    return lambda v: v


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return f"{value:f}"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def run(plan: Plan, source: Path, out_dir: Path) -> Counts:
    spec, key = plan.spec, plan.key
    fields = plan.fields
    parsers = {f.name: _parser(f) for f in fields}
    regexes = {f.name: re.compile(f.regex) for f in fields if f.regex}
    seen = {f.name: set() for f in plan.unique}
    fmt_in, fmt_out = spec.input, spec.output.format
    end, delim, quote = fmt_out.line_terminator, fmt_out.delimiter, fmt_out.quote
    counts = Counts()
    outbound_path, rejects_path = outputs(out_dir)
    with (
        open(source, newline="", encoding=fmt_in.encoding) as src,
        open(outbound_path, "w", newline="", encoding=fmt_out.encoding) as out,
        open(rejects_path, "w", encoding="utf-8") as rejects,
    ):
        reader = csv.reader(src, delimiter=fmt_in.delimiter, quotechar=fmt_in.quote)
        for _ in range(fmt_in.skip_lines):
            next(src)
        header = next(reader)
        index = [header.index(f.source_name) for f in fields]
        out.write(delim.join(csv_quote(n, delim, quote) for n in plan.output_names) + end)
        for record_no, row in enumerate(reader, start=1):
            counts.rows_in += 1
            if len(row) != len(header):
                raw: dict[str, str | None] = {f.name: None for f in fields}
                rule = "parse"
                reasons = [f"record could not be parsed: expected {len(header)} fields, found {len(row)}"]
            else:
                raw = {f.name: row[i] for f, i in zip(fields, index, strict=True)}
                typed, reasons, rule = {}, [], None
                for check in plan.checks:
                    name, value = check.field.name, raw[check.field.name]
                    present = bool(value)
                    if check.kind == "required":
                        broken = not present
                    elif check.kind == "type":
                        typed[name] = parsers[name](value) if present else None
                        broken = present and typed[name] is None
                    elif check.kind == "regex":
                        broken = present and not regexes[name].fullmatch(value)
                    elif check.kind == "min":
                        broken = typed.get(name) is not None and typed[name] < check.field.min
                    elif check.kind == "max":
                        broken = typed.get(name) is not None and typed[name] > check.field.max
                    else:
                        broken = present and value not in check.field.allowed
                    if broken:
                        rule = rule or check.rule
                        reasons.append(check.message)
                for f in plan.unique:
                    value = raw[f.name]
                    if rule is None and value:
                        if value in seen[f.name]:
                            rule, reasons = f"unique:{f.name}", [DUPLICATE.format(name=f.name)]
                        else:
                            seen[f.name].add(value)
            if rule is None:
                values = {f.name: typed[f.name] if f.type != FieldType.STRING else raw[f.name] for f in fields}
                record = {target: values[source] for target, source in plan.outputs}
                record["line_total"] = (
                    None
                    if record["quantity"] is None or record["unit_price"] is None
                    else record["quantity"] * record["unit_price"]
                )
                record["sku"] = None if record["sku"] is None else record["sku"].strip(" ").upper()
                for name in plan.output_names:
                    mask = plan.mask(name)
                    text = _text(record[name])
                    record[name] = mask_value(mask, text, key) if mask else text
                out.write(delim.join(csv_quote(record[n], delim, quote) for n in plan.output_names) + end)
                counts.rows_out += 1
            else:
                masked = {
                    n: mask_value(plan.raw_masks[n], v, key) if n in plan.raw_masks else v for n, v in raw.items()
                }
                line = {"_record_no": record_no, "_line_no": None, "_reject_rule": rule}
                line["_reject_reason"] = "; ".join(reasons)
                rejects.write(json.dumps({**line, **masked}, ensure_ascii=False, separators=(",", ":")) + "\n")
                counts.rows_rejected += 1
                counts.rejects_by_rule[rule] += 1
    return counts
