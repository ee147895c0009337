"""Baseline: pandas 3, vectorised per chunk of 100,000 records (the hash mask is per value: no HMAC in pandas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from batch_assets.lib.specs.model import FieldType
from benchmarks.baselines.common import (
    DUPLICATE,
    INTEGER_SHAPE,
    ISO_DATE_SHAPE,
    Counts,
    Plan,
    decimal_shape,
    mask_value,
    outputs,
)

CHUNK = 100_000


def _mask(series: pd.Series, mask, key: bytes) -> pd.Series:
    """Masks value by value: pandas has no HMAC, and no vectorised "stars up to the first @"."""
    values = series.astype(object).where(series.notna(), None).tolist()
    return pd.Series([mask_value(mask, v, key) for v in values], index=series.index, dtype="str")


def _decimal_text(units: pd.Series, scale: int) -> pd.Series:
    """Exact decimal text of integer ``units / 10**scale`` (the engine's DECIMAL rendering)."""
    step = 10**scale
    sign = np.where(units < 0, "-", "")
    whole, frac = np.abs(units) // step, np.abs(units) % step
    return sign + whole.astype(str) + "." + frac.astype(str).str.zfill(scale)


def _transform(plan: Plan, raw: pd.DataFrame, seen: dict[str, set]) -> tuple[pd.DataFrame, pd.DataFrame]:
    present = {f.name: raw[f.name].notna() & (raw[f.name] != "") for f in plan.fields}
    typed: dict[str, pd.Series] = {}
    flags = []
    for check in plan.checks:
        f, col, ok = check.field, raw[check.field.name], present[check.field.name]
        if check.kind == "required":
            broken = ~ok
        elif check.kind == "type":
            if f.type == FieldType.INTEGER:
                shape = col.str.fullmatch(INTEGER_SHAPE).fillna(False)
                value = pd.to_numeric(col.where(shape & ok), errors="coerce").astype("Int64")
            elif f.type == FieldType.DECIMAL:
                shape = col.str.fullmatch(decimal_shape(f.scale)).fillna(False)
                parts = col.where(shape & ok, "0").str.partition(".")
                whole, frac = parts[0], parts[2]
                units = whole.str.lstrip("+-").replace("", "0").astype("int64") * 10**f.scale
                units += frac.str.ljust(f.scale, "0").replace("", "0").astype("int64")
                value = pd.Series(np.where(col.str.startswith("-").fillna(False), -units, units), index=col.index)
                value = value.where(shape & ok).astype("Int64")  # in units of 10**-scale
            else:
                shape = col.str.fullmatch(ISO_DATE_SHAPE).fillna(False)
                value = pd.to_datetime(col.where(shape & ok), format="%Y-%m-%d", errors="coerce")
            typed[f.name] = value
            broken = ok & value.isna()
        elif check.kind == "regex":
            broken = ok & ~col.str.fullmatch(f.regex).fillna(False)
        elif check.kind in ("min", "max"):
            bound = getattr(f, check.kind) * (10**f.scale if f.type == FieldType.DECIMAL else 1)
            value = typed[f.name]
            broken = (value < bound) if check.kind == "min" else (value > bound)
            broken = broken.fillna(False)
        else:
            broken = ok & ~col.isin(f.allowed)
        flags.append(broken.astype(bool).to_numpy())
    rules = np.array([c.rule for c in plan.checks], dtype=object)
    matrix = np.column_stack(flags) if flags else np.zeros((len(raw), 0), bool)
    bad = matrix.any(axis=1)
    rule = pd.Series(np.where(bad, rules[matrix.argmax(axis=1)] if flags else None, None), index=raw.index)
    reason = pd.Series(None, index=raw.index, dtype=object)
    for i in np.flatnonzero(bad):
        reason.iat[i] = "; ".join(c.message for c, hit in zip(plan.checks, matrix[i], strict=True) if hit)
    for f in plan.unique:
        candidate = rule.isna() & present[f.name]
        values = raw[f.name].where(candidate)
        dup = candidate & (values.duplicated(keep="first") | values.isin(seen[f.name]))
        rule = rule.where(~dup, f"unique:{f.name}")
        reason = reason.where(~dup, DUPLICATE.format(name=f.name))
        seen[f.name].update(values[candidate & ~dup])
    good = rule.isna()
    out = pd.DataFrame(index=raw.index[good])
    for target, source in plan.outputs:
        out[target] = (typed[source] if source in typed else raw[source])[good]
    out["line_total"] = out["quantity"] * out["unit_price"]  # exact: integer units of the price's scale
    out["sku"] = out["sku"].str.strip(" ").str.upper()
    field_of = {f.name: f for f in plan.fields}
    scales = {t: field_of[s].scale for t, s in plan.outputs if field_of[s].type == FieldType.DECIMAL}
    scales["line_total"] = scales["unit_price"]
    for name in plan.output_names:
        column = out[name]
        if name in scales:
            column = _decimal_text(column.fillna(0).astype("int64"), scales[name]).where(column.notna(), None)
        elif pd.api.types.is_datetime64_any_dtype(column):
            column = column.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_integer_dtype(column):
            column = column.astype(str).where(column.notna(), None)
        mask = plan.mask(name)
        out[name] = _mask(column, mask, plan.key) if mask else column
    rejected = raw[~good].copy()
    for name, mask in plan.raw_masks.items():
        rejected[name] = _mask(rejected[name], mask, plan.key)
    rejected.insert(0, "_reject_reason", reason[~good])
    rejected.insert(0, "_reject_rule", rule[~good])
    return out[plan.output_names], rejected


def _csv_column(column: pd.Series, delimiter: str, quote: str) -> pd.Series:
    text = column.fillna("")
    special = text.str.contains(f"[{delimiter}{quote}\r\n]", regex=True) | (text == "")
    quoted = quote + text.str.replace(quote, quote + quote, regex=False) + quote
    return quoted.where(special & column.notna(), text)


def run(plan: Plan, source: Path, out_dir: Path) -> Counts:
    spec = plan.spec
    fmt_in, fmt_out = spec.input, spec.output.format
    delim, end = fmt_out.delimiter, fmt_out.line_terminator
    names = {f.source_name: f.name for f in plan.fields}
    counts = Counts()
    seen: dict[str, set] = {f.name: set() for f in plan.unique}
    outbound_path, rejects_path = outputs(out_dir)
    reader = pd.read_csv(
        source,
        sep=fmt_in.delimiter,
        quotechar=fmt_in.quote,
        encoding=fmt_in.encoding,
        skiprows=fmt_in.skip_lines,
        usecols=list(names),
        dtype=str,
        keep_default_na=False,  # "" stays "", as in the engine (no "n/a" -> NaN)
        chunksize=CHUNK,
    )
    with open(outbound_path, "w", encoding=fmt_out.encoding, newline="") as out, open(rejects_path, "wb") as rej:
        out.write(delim.join(plan.output_names) + end)
        for chunk in reader:
            raw = chunk.rename(columns=names)[[f.name for f in plan.fields]]
            raw.index = pd.RangeIndex(counts.rows_in + 1, counts.rows_in + 1 + len(raw))
            counts.rows_in += len(raw)
            good, bad = _transform(plan, raw, seen)
            if len(good):
                lines = _csv_column(good.iloc[:, 0], delim, fmt_out.quote)
                for name in plan.output_names[1:]:
                    lines = lines + delim + _csv_column(good[name], delim, fmt_out.quote)
                out.write(end.join(lines) + end)
            counts.rows_out += len(good)
            counts.rows_rejected += len(bad)
            counts.rejects_by_rule.update(bad["_reject_rule"])
            for record_no, row in zip(bad.index, bad.to_dict("records"), strict=True):
                line = {"_record_no": int(record_no), "_line_no": None, **row}
                rej.write(orjson.dumps({k: None if v is None or v != v else v for k, v in line.items()}) + b"\n")
    return counts
