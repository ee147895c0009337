"""Build the one DuckDB query that validates, maps, derives and masks a chunk of records.

Everything a vendor spec says becomes SQL here; values from the spec (patterns, bounds,
allowed lists, keys) travel as named parameters, only identifiers are spliced in, quoted.
The chunk arrives as the view ``chunk`` with the reader's columns: ``_record_no``,
``_line_no``, ``_parse_error`` and one string column per source field, plus ``_file_no`` and
``_row_id``: a chunk may hold several whole files, each with its own record numbers and its
own unique values (transform.ChunkTransform.apply_files).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from batch_assets.lib.formats.xml import NOT_XML
from batch_assets.lib.specs.model import (
    CsvFormat,
    FieldType,
    FixedWidthFormat,
    Mask,
    SchemaField,
    VendorSpec,
    XmlFormat,
)

RAW_PREFIX = "__raw__"
TYPED_PREFIX = "__typed__"  # a field's value cast to its type, once
CHECK_PREFIX = "__check_"  # whether a record breaks one rule
KEY_PREFIX = "__key__"  # clear value of a unique field, kept in memory for the seen-table only
RULE = "_reject_rule"
REASON = "_reject_reason"
RECORD_NO = "_record_no"
LINE_NO = "_line_no"
PARSE_ERROR = "_parse_error"
FILE_NO = "_file_no"  # which file of the chunk a record comes from
ROW_ID = "_row_id"  # (file number << 40) + record number: a record's place in the whole chunk


def prior_table(seen_table: str) -> str:
    """The values of the current chunk already accepted in earlier chunks (small, rebuilt per chunk)."""
    return f"{seen_table}_prior"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Params:
    """Collects query parameters and hands back their ``$name`` placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _present(col: str) -> str:
    return f"({col} IS NOT NULL AND {col} <> '')"


def typed_expr(f: SchemaField, col: str, p: Params) -> str:
    """The raw string ``col`` cast to the field's type; NULL when it does not parse."""
    v = f"NULLIF({col}, '')"
    match f.type:
        case FieldType.STRING:
            return col
        case FieldType.INTEGER:
            return f"TRY_CAST({v} AS BIGINT)"
        case FieldType.DECIMAL:
            return f"TRY_CAST({v} AS DECIMAL(38, {int(f.scale)}))"
        case FieldType.FLOAT:
            return f"TRY_CAST({v} AS DOUBLE)"
        case FieldType.BOOLEAN:
            return f"TRY_CAST({v} AS BOOLEAN)"
        case FieldType.DATE:
            if f.format:
                return f"CAST(TRY_STRPTIME({v}, {p(f.format)}) AS DATE)"
            return f"TRY_CAST({v} AS DATE)"
        case FieldType.TIMESTAMP:
            if f.format:
                return f"TRY_STRPTIME({v}, {p(f.format)})"
            return f"TRY_CAST({v} AS TIMESTAMP)"
    raise ValueError(f"unknown type {f.type}")


def _type_violation(f: SchemaField, col: str, typed: str, p: Params) -> str | None:
    match f.type:
        case FieldType.STRING:
            return None
        case FieldType.INTEGER:
            # TRY_CAST('2.5' AS BIGINT) rounds to 3: insist on digits first.
            shape = f"regexp_full_match({col}, {p(r'[+-]?[0-9]+')})"
        case FieldType.DECIMAL:
            # More decimal places than the scale would be rounded by the cast: refuse instead.
            s = int(f.scale)
            pattern = rf"[+-]?([0-9]+(\.[0-9]{{0,{s}}})?|\.[0-9]{{1,{s}}})" if s else r"[+-]?[0-9]+"
            shape = f"regexp_full_match({col}, {p(pattern)})"
        case _:
            shape = "true"
    return f"{_present(col)} AND NOT ({shape} AND {typed} IS NOT NULL)"


def field_checks(f: SchemaField, col: str, typed: str, p: Params) -> list[tuple[str, str, str]]:
    """(rule id, SQL condition that is true when the record breaks the rule, message), in order.

    ``col`` holds the raw text, ``typed`` the value cast once by ``typed_expr``.
    """
    checks: list[tuple[str, str, str]] = []
    name = f.name
    if f.required:
        checks.append((f"required:{name}", f"NOT {_present(col)}", f"{name}: required value is missing"))
    type_violation = _type_violation(f, col, typed, p)
    if type_violation:
        fmt = f" in format {f.format}" if f.format else ""
        checks.append((f"type:{name}", type_violation, f"{name}: not a valid {f.type.value}{fmt}"))
    if f.regex is not None:
        checks.append(
            (
                f"regex:{name}",
                f"{_present(col)} AND NOT regexp_full_match({col}, {p(f.regex)})",
                f"{name}: does not match the required pattern",
            )
        )
    if f.min is not None:
        checks.append((f"min:{name}", f"{typed} < {p(f.min)}", f"{name}: below the minimum {f.min:g}"))
    if f.max is not None:
        checks.append((f"max:{name}", f"{typed} > {p(f.max)}", f"{name}: above the maximum {f.max:g}"))
    if f.allowed is not None:
        checks.append(
            (
                f"allowed:{name}",
                f"{_present(col)} AND NOT list_contains({p(list(f.allowed))}, {col})",
                f"{name}: not one of the allowed values",
            )
        )
    return checks


def mask_expr(mask: Mask, col: str, p: Params, key: bytes | None) -> str:
    """SQL masking a value (cast to text); NULL stays NULL."""
    v = f"CAST({col} AS VARCHAR)"
    match mask.method:
        case "redact":
            return f"repeat('*', length({v}))"
        case "keep_last":
            n = int(mask.keep)
            return (
                f"CASE WHEN length({v}) <= {n} THEN repeat('*', length({v})) "
                f"ELSE repeat('*', length({v}) - {n}) || right({v}, {n}) END"
            )
        case "email":
            at = f"strpos({v}, '@')"
            masked_local = f"repeat('*', {at} - 1) || substr({v}, {at})"
            return f"CASE WHEN {at} > 0 THEN {masked_local} ELSE repeat('*', length({v})) END"
        case "hash":
            if key is None:
                raise ValueError("hash masking needs a key")
            # HMAC-SHA256 (RFC 2104) spelled out, so it runs vectorised inside DuckDB.
            block = key if len(key) <= 64 else hashlib.sha256(key).digest()
            block = block.ljust(64, b"\0")
            ipad = bytes(b ^ 0x36 for b in block)
            opad = bytes(b ^ 0x5C for b in block)
            inner = f"unhex(sha256(CAST({p(ipad)} AS BLOB) || encode({v})))"
            return f"CASE WHEN {v} IS NULL THEN NULL ELSE sha256(CAST({p(opad)} AS BLOB) || {inner}) END"
    raise ValueError(f"unknown mask {mask.method}")


def unwritable_text(spec: VendorSpec) -> str | None:
    """An RE2 pattern of the characters the vendor's output format cannot write, or None."""
    out = spec.output.format
    patterns = []
    if isinstance(out, XmlFormat):
        patterns.append(NOT_XML)  # not even as character references; Latin-1 XML refers to the rest
    if isinstance(out, FixedWidthFormat):
        patterns.append("[\\r\\n]")  # a line break would split the record
    if isinstance(out, CsvFormat | FixedWidthFormat) and out.encoding == "latin-1":
        patterns.append("[^\\x{0}-\\x{ff}]")
    return "|".join(patterns) or None


@dataclass(frozen=True)
class ChunkQuery:
    sql: str
    params: dict[str, Any]
    raw_fields: list[str]
    output_fields: list[str]


def build_chunk_query(spec: VendorSpec, keys: dict[str, bytes], seen_tables: dict[str, str]) -> ChunkQuery:
    """The whole per-chunk transform as one query.

    ``keys`` maps a mask's secret_env to its key; ``seen_tables`` maps a unique field to the
    table of values accepted in earlier chunks of the same file.
    """
    p = Params()
    fields = spec.schema_
    src_cols = ", ".join(f"{ident(f.source_name)} AS {ident(f.name)}" for f in fields)
    ctes = [f"src AS (SELECT {FILE_NO}, {ROW_ID}, {RECORD_NO}, {LINE_NO}, {PARSE_ERROR}, {src_cols} FROM chunk)"]

    # Each field is cast once; its checks and its output read the cast value.
    typed = {f.name: ident(TYPED_PREFIX + f.name) if f.type != FieldType.STRING else ident(f.name) for f in fields}
    casts = [f"{typed_expr(f, ident(f.name), p)} AS {typed[f.name]}" for f in fields if f.type != FieldType.STRING]
    if casts:
        ctes.append(f"typed AS (SELECT *, {', '.join(casts)} FROM src)")
    checks: list[tuple[str, str, str]] = []
    for f in fields:
        checks.extend(field_checks(f, ident(f.name), typed[f.name], p))
    # Each check is evaluated once into a flag; the rule is the first flag set, the reason lists
    # every one, and is only put together for the records that break a rule.
    flags = [ident(f"{CHECK_PREFIX}{i}") for i in range(len(checks))]
    flag_cols = "".join(
        f", coalesce({cond}, false) AS {flag}" for (_, cond, _), flag in zip(checks, flags, strict=True)
    )
    ctes.append(f"flagged AS (SELECT *{flag_cols} FROM {'typed' if casts else 'src'})")
    rule_case = " ".join(f"WHEN {flag} THEN {p(rule)}" for (rule, _, _), flag in zip(checks, flags, strict=True))
    ctes.append(
        f"ruled AS (SELECT *, CASE WHEN {PARSE_ERROR} IS NOT NULL THEN 'parse' {rule_case} END AS {RULE} FROM flagged)"
    )
    reasons = ", ".join(f"CASE WHEN {flag} THEN {p(msg)} END" for (_, _, msg), flag in zip(checks, flags, strict=True))
    reason_sql = f"WHEN {RULE} IS NOT NULL THEN concat_ws('; ', {reasons})" if reasons else ""
    # Materialized: the unique checks below read it more than once.
    materialized = "MATERIALIZED " if any(f.unique for f in fields) else ""
    ctes.append(
        f"chk AS {materialized}(SELECT *, CASE WHEN {PARSE_ERROR} IS NOT NULL "
        f"THEN 'record could not be parsed: ' || {PARSE_ERROR} {reason_sql} END AS {REASON} FROM ruled)"
    )
    prev = "chk"
    # Unique: the first record with a value that passes the field rules wins (even if its output
    # width rejects it later); later ones, in this chunk or an earlier one, are rejected. Values are
    # compared within a file only. A hash aggregate finds the values repeated in the chunk: no
    # window, no sort, the rows keep their order.
    unique = [f for f in fields if f.unique]
    for i, f in enumerate(unique):
        col = ident(f.name)
        ctes.append(
            f"first{i} AS (SELECT {FILE_NO} AS f, {col} AS v, min({ROW_ID}) AS first_row FROM {prev} "
            f"WHERE {RULE} IS NULL AND {_present(col)} GROUP BY {FILE_NO}, {col} HAVING count(*) > 1)"
        )
        ctes.append(
            f"later{i} AS (SELECT c.{ROW_ID} FROM {prev} c JOIN first{i} d ON c.{FILE_NO} = d.f AND c.{col} = d.v "
            f"WHERE c.{RULE} IS NULL AND c.{ROW_ID} > d.first_row)"
        )
        dup = (
            f"{RULE} IS NULL AND {_present(col)} AND ({ROW_ID} IN (SELECT {ROW_ID} FROM later{i}) "
            f"OR {col} IN (SELECT v FROM {ident(prior_table(seen_tables[f.name]))}))"
        )
        ctes.append(
            f"u{i} AS {materialized if i < len(unique) - 1 else ''}(SELECT * REPLACE ("
            f"CASE WHEN {dup} THEN {p('unique:' + f.name)} ELSE {RULE} END AS {RULE}, "
            f"CASE WHEN {dup} THEN {p(f.name + ': duplicate of an earlier record')} ELSE {REASON} END AS {REASON}) "
            f"FROM {prev})"
        )
        prev = f"u{i}"

    by_output = {m.output_name: m.source for m in spec.mappings} or {f.name: f.name for f in fields}
    source_masks = {by_output[name]: m for name, m in spec.masking.items() if name in by_output}

    def key_for(mask: Mask) -> bytes | None:
        return keys.get(mask.secret_env) if mask.method == "hash" else None

    # Raw values travel unmasked to the end, where only rejected records' copies are masked.
    raw_cols = [f"{ident(f.name)} AS {ident(RAW_PREFIX + f.name)}" for f in fields]
    raw_cols += [f"{ident(f.name)} AS {ident(KEY_PREFIX + f.name)}" for f in fields if f.unique]
    mapped_cols = [
        f"{typed[source]} AS {ident(target)}"
        for target, source in ([(m.output_name, m.source) for m in spec.mappings] or [(f.name, f.name) for f in fields])
    ]
    ctes.append(
        f"mapped AS (SELECT {ROW_ID}, {RECORD_NO}, {LINE_NO}, {RULE}, {REASON}, {', '.join(raw_cols)}, "
        f"{', '.join(mapped_cols)} FROM {prev})"
    )
    prev = "mapped"
    present = set(spec.mapped_fields)
    for i, rule in enumerate(spec.business_rules):
        # Only accepted records are derived, so an expression that fails on bad data cannot
        # fail the chunk for records that are already rejected.
        expr = f"CASE WHEN {RULE} IS NULL THEN ({rule.expression}) END"
        if rule.field in present:
            sel = f"SELECT * REPLACE ({expr} AS {ident(rule.field)}) FROM {prev}"
        else:
            sel = f"SELECT *, {expr} AS {ident(rule.field)} FROM {prev}"
            present.add(rule.field)
        ctes.append(f"b{i} AS ({sel})")
        prev = f"b{i}"
    if spec.masking:
        replaces = ", ".join(
            f"{mask_expr(m, ident(name), p, key_for(m))} AS {ident(name)}" for name, m in spec.masking.items()
        )
        ctes.append(f"masked AS (SELECT * REPLACE ({replaces}) FROM {prev})")
        prev = "masked"
    out = spec.output.format
    if isinstance(out, FixedWidthFormat):
        widths = {f.name: f.width for f in out.fields}
        # Render the output as text here, so the width checked is the width the writer pads:
        # a fixed-width vendor's staged records are the exact strings of its outbound file.
        rendered = ", ".join(f"CAST({ident(n)} AS VARCHAR) AS {ident(n)}" for n in spec.output_fields)
        ctes.append(f"rendered AS (SELECT * REPLACE ({rendered}) FROM {prev})")
        prev = "rendered"
        too_long = [
            (name, f"length(CAST({ident(name)} AS VARCHAR)) > {int(widths[name])}") for name in spec.output_fields
        ]
        rule_case = " ".join(f"WHEN coalesce({c}, false) THEN {p('output_width:' + n)}" for n, c in too_long)
        msg_case = " ".join(
            f"WHEN coalesce({c}, false) THEN {p(n + ': longer than its ' + str(widths[n]) + '-character output field')}"
            for n, c in too_long
        )
        ctes.append(
            f"width AS (SELECT * REPLACE (CASE WHEN {RULE} IS NOT NULL THEN {RULE} {rule_case} END AS {RULE}, "
            f"CASE WHEN {RULE} IS NOT NULL THEN {REASON} {msg_case} END AS {REASON}) FROM {prev})"
        )
        prev = "width"
    if (unwritable := unwritable_text(spec)) is not None:
        # A value the writer could not write would fail the whole day's delivery: reject the
        # record here instead, like a value too wide for its fixed-width field.
        out_kind = f"{out.kind} output ({out.encoding})"
        bad = [
            (name, f"regexp_matches(CAST({ident(name)} AS VARCHAR), {p(unwritable)})") for name in spec.output_fields
        ]
        rule_case = " ".join(f"WHEN coalesce({c}, false) THEN {p('output_text:' + n)}" for n, c in bad)
        msg_case = " ".join(
            f"WHEN coalesce({c}, false) THEN {p(n + ': has a character the ' + out_kind + ' cannot hold')}"
            for n, c in bad
        )
        ctes.append(
            f"text_ok AS (SELECT * REPLACE (CASE WHEN {RULE} IS NOT NULL THEN {RULE} {rule_case} END AS {RULE}, "
            f"CASE WHEN {RULE} IS NOT NULL THEN {REASON} {msg_case} END AS {REASON}) FROM {prev})"
        )
        prev = "text_ok"
    # Only rejected records keep their raw fields (masked like their outputs): copying them out
    # of DuckDB for the accepted records, only to drop them, was a third of the result.
    raw_kept = []
    for f in fields:
        raw = ident(RAW_PREFIX + f.name)
        mask = source_masks.get(f.name)
        value = mask_expr(mask, raw, p, key_for(mask)) if mask else raw
        raw_kept.append(f"CASE WHEN {RULE} IS NOT NULL THEN {value} END AS {raw}")
    ctes.append(f"raw_kept AS (SELECT * REPLACE ({', '.join(raw_kept)}) FROM {prev})")
    prev = "raw_kept"
    # No ORDER BY: with one thread the plan keeps the chunk's order; transform.record_order checks it
    # and repairs it (DuckDB may reorder rows when it scans a chunk of several files on several threads).
    sql = "WITH " + ",\n".join(ctes) + f"\nSELECT * FROM {prev}"
    return ChunkQuery(sql=sql, params=p.values, raw_fields=[f.name for f in fields], output_fields=spec.output_fields)
