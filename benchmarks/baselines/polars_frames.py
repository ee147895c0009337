"""Baseline: polars 2, one lazy scan read in batches of 100,000 records, expressions per batch.

Polars has no HMAC, so the hash mask maps each value through Python's hmac (the usual workaround);
everything else is native expressions.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from batch_assets.lib.specs.model import FieldType
from benchmarks.baselines.common import (
    DUPLICATE,
    INTEGER_SHAPE,
    ISO_DATE_SHAPE,
    Counts,
    Plan,
    decimal_shape,
    hmac_hex,
    outputs,
)

CHUNK = 100_000


def _full(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _mask(expr: pl.Expr, mask, key: bytes) -> pl.Expr:
    length = expr.str.len_chars()
    if mask.method == "hash":
        return expr.map_batches(lambda s: pl.Series([None if v is None else hmac_hex(key, v) for v in s.to_list()]))
    if mask.method == "email":
        at = expr.str.find("@", literal=True)
        return (
            pl.when(at.is_not_null())
            .then(pl.lit("*").repeat_by(at).list.join("") + expr.str.slice(at))
            .otherwise(pl.lit("*").repeat_by(length).list.join(""))
        )
    if mask.method == "redact":
        return pl.lit("*").repeat_by(length).list.join("")
    keep = mask.keep
    return (
        pl.when(length <= keep)
        .then(pl.lit("*").repeat_by(length).list.join(""))
        .otherwise(pl.lit("*").repeat_by(length - keep).list.join("") + expr.str.slice(-keep))
    )


def _checks(plan: Plan) -> tuple[list[pl.Expr], dict[str, pl.Expr]]:
    """One boolean expression per check (true = broken), and each typed field's cast."""
    typed: dict[str, pl.Expr] = {}
    flags = []
    for check in plan.checks:
        f = check.field
        col = pl.col(f.name)
        present = col.is_not_null() & (col != "")
        if check.kind == "required":
            broken = ~present
        elif check.kind == "type":
            if f.type == FieldType.INTEGER:
                value = pl.when(col.str.contains(_full(INTEGER_SHAPE))).then(col.str.to_integer(strict=False))
            elif f.type == FieldType.DECIMAL:
                value = pl.when(col.str.contains(_full(decimal_shape(f.scale)))).then(
                    col.cast(pl.Decimal(38, f.scale), strict=False)
                )
            else:
                value = pl.when(col.str.contains(_full(ISO_DATE_SHAPE))).then(col.str.to_date("%Y-%m-%d", strict=False))
            typed[f.name] = value
            broken = present & value.is_null()
        elif check.kind == "regex":
            broken = present & ~col.str.contains(_full(f.regex))
        elif check.kind == "min":
            broken = typed[f.name] < f.min
        elif check.kind == "max":
            broken = typed[f.name] > f.max
        else:
            broken = present & ~col.is_in(f.allowed)
        flags.append(broken.fill_null(False).alias(f"__check_{len(flags)}"))
    return flags, typed


def _transform(plan: Plan, raw: pl.DataFrame, seen: dict[str, pl.Series]) -> tuple[pl.DataFrame, pl.DataFrame]:
    flags, typed = _checks(plan)
    names = [e.meta.output_name() for e in flags]
    rule = pl.lit(None, pl.String)
    for check, name in reversed(list(zip(plan.checks, names, strict=True))):
        rule = pl.when(pl.col(name)).then(pl.lit(check.rule)).otherwise(rule)
    reasons = pl.concat_str(
        [pl.when(pl.col(n)).then(pl.lit(c.message)) for c, n in zip(plan.checks, names, strict=True)],
        separator="; ",
        ignore_nulls=True,
    )
    frame = raw.with_columns(*flags, *(e.alias(f"__typed_{n}") for n, e in typed.items()))
    frame = frame.with_columns(rule.alias("_reject_rule")).with_columns(
        pl.when(pl.col("_reject_rule").is_not_null()).then(reasons).alias("_reject_reason")
    )
    for f in plan.unique:
        col = pl.col(f.name)
        candidate = pl.col("_reject_rule").is_null() & col.is_not_null() & (col != "")
        # A later repeat among the candidates, or a value accepted in an earlier batch.
        dup = candidate & (col.is_in(seen[f.name].implode()) | (~col.is_first_distinct()).over(candidate))
        frame = frame.with_columns(
            pl.when(dup).then(pl.lit(f"unique:{f.name}")).otherwise(pl.col("_reject_rule")).alias("_reject_rule"),
            pl.when(dup)
            .then(pl.lit(DUPLICATE.format(name=f.name)))
            .otherwise(pl.col("_reject_reason"))
            .alias("_reject_reason"),
        )
        kept = frame.filter(pl.col("_reject_rule").is_null())[f.name]
        seen[f.name] = pl.concat([seen[f.name], kept])
    good = frame.filter(pl.col("_reject_rule").is_null())
    bad = frame.filter(pl.col("_reject_rule").is_not_null())
    field_of = {f.name: f for f in plan.fields}

    def source(name: str) -> pl.Expr:
        return pl.col(f"__typed_{name}") if field_of[name].type != FieldType.STRING else pl.col(name)

    out = good.select(*(source(s).alias(t) for t, s in plan.outputs))
    out = out.with_columns(
        (pl.col("quantity") * pl.col("unit_price")).alias("line_total"),
        pl.col("sku").str.strip_chars(" ").str.to_uppercase(),
    )
    masked = []
    for name in plan.output_names:
        text = pl.col(name).cast(pl.String)
        mask = plan.mask(name)
        masked.append((_mask(text, mask, plan.key) if mask else text).alias(name))
    out = out.select(masked)
    raw_cols = [
        (_mask(pl.col(f.name), plan.raw_masks[f.name], plan.key) if f.name in plan.raw_masks else pl.col(f.name)).alias(
            f.name
        )
        for f in plan.fields
    ]
    rejects = bad.select(
        "_record_no", pl.lit(None, pl.Int64).alias("_line_no"), "_reject_rule", "_reject_reason", *raw_cols
    )
    return out, rejects


def run(plan: Plan, source: Path, out_dir: Path) -> Counts:
    spec = plan.spec
    fmt_in, fmt_out = spec.input, spec.output.format
    names = {f.source_name: f.name for f in plan.fields}
    counts = Counts()
    seen = {f.name: pl.Series(f.name, [], pl.String) for f in plan.unique}
    outbound_path, rejects_path = outputs(out_dir)
    scan = pl.scan_csv(
        source,
        separator=fmt_in.delimiter,
        quote_char=fmt_in.quote,
        encoding="utf8" if fmt_in.encoding != "latin-1" else "utf8-lossy",
        skip_rows=fmt_in.skip_lines,
        infer_schema=False,  # every field as text, as the engine reads them
        row_index_name="_record_no",
        row_index_offset=1,
    ).select("_record_no", *(pl.col(s).alias(n) for s, n in names.items()))
    with open(outbound_path, "wb") as out, open(rejects_path, "wb") as rej:
        out.write((fmt_out.delimiter.join(plan.output_names) + fmt_out.line_terminator).encode(fmt_out.encoding))
        for batch in scan.collect_batches(chunk_size=CHUNK):
            counts.rows_in += batch.height
            good, bad = _transform(plan, batch, seen)
            good.write_csv(
                out,
                include_header=False,
                separator=fmt_out.delimiter,
                line_terminator=fmt_out.line_terminator,
                quote_char=fmt_out.quote,
                quote_style="necessary",
                null_value="",
            )
            counts.rows_out += good.height
            counts.rows_rejected += bad.height
            counts.rejects_by_rule.update(bad["_reject_rule"].to_list())
            rej.write(b"".join(orjson.dumps(row) + b"\n" for row in bad.iter_rows(named=True)))
    return counts
