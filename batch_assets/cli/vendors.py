"""``batch-assets vendor check|preview``: onboard a vendor without a deploy.

``check`` loads a spec exactly as the code location will (the loader's errors, verbatim);
``preview`` runs the real engine on a sample file in a temporary folder, touching no Dagster
instance and no file store, and shows the first outbound records (masked) and the rejects with
their rule and reason. Exit codes: 0 the spec is valid (rejected records are a finding, not an
error), 1 the sample file cannot be read, 2 the spec is broken.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_SAMPLE, EXIT_SPEC = 0, 1, 2
PREVIEW_KEY = b"batch-assets-preview"  # stands in for a missing hash key; pseudonyms differ from production
CELL_WIDTH = 28


def _load(path: Path) -> tuple[Any, str | None]:
    from batch_assets.lib.specs import VendorSpecError, load_vendor_spec

    if not path.is_file():
        return None, f"{path}: no such spec file"
    try:
        return load_vendor_spec(path), None
    except VendorSpecError as exc:
        return None, str(exc)


def _spec_error(args: argparse.Namespace, error: str) -> int:
    if args.json:
        print(json.dumps({"spec": str(args.spec), "valid": False, "error": error}, indent=2))
    print(error, file=sys.stderr)
    return EXIT_SPEC


def _describe(spec: Any) -> str:
    out = spec.output
    return (
        f"{spec.vendor_id} ({spec.name}), priority {spec.priority.value}: {spec.input.kind} in, "
        f"{out.format.kind} out {out.granularity}; {len(spec.schema_)} fields, "
        f"{len(spec.business_rules)} business rules, {len(spec.masking)} masked fields"
    )


def check(args: argparse.Namespace) -> int:
    """Check a vendor spec file as the code location would load it."""
    spec, error = _load(args.spec)
    if error:
        return _spec_error(args, error)
    if args.json:
        print(json.dumps({"spec": str(args.spec), "valid": True, "vendor_id": spec.vendor_id}, indent=2))
    else:
        print(f"{args.spec}: valid: {_describe(spec)}")
    return EXIT_OK


def _keys(spec: Any) -> tuple[dict[str, bytes], list[str]]:
    """The hash keys from the environment; a missing one is replaced by a preview key, with a note."""
    import os

    keys, notes = {}, []
    for name, mask in spec.masking.items():
        if mask.method != "hash" or mask.secret_env in keys:
            continue
        value = os.environ.get(mask.secret_env, "")
        if not value:
            notes.append(
                f"${mask.secret_env} is not set: '{name}' is hashed with a preview key, "
                "so its pseudonyms differ from production"
            )
        keys[mask.secret_env] = value.encode() if value else PREVIEW_KEY
    return keys, notes


def _first_records(staged: Path, rows: int) -> tuple[Any, list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(staged)
    first = next(parquet.iter_batches(batch_size=rows), None) if rows > 0 else None
    records = first.to_pylist() if first is not None else []
    return parquet.schema_arrow, records


def _outbound_text(spec: Any, schema: Any, records: list[dict[str, Any]]) -> str:
    """The first records as the vendor's outbound file would carry them."""
    import pyarrow as pa

    from batch_assets.lib.formats import open_writer

    sink = io.BytesIO()
    writer = open_writer(spec.output.format, sink, schema)
    if records:
        writer.write_batch(pa.RecordBatch.from_pylist(records, schema=schema))
    writer.close()
    return sink.getvalue().decode(getattr(spec.output.format, "encoding", "utf-8"), errors="replace")


def _first_rejects(path: Path, rows: int) -> list[dict[str, Any]]:
    from batch_assets.lib.engine.sql import LINE_NO, REASON, RECORD_NO, RULE

    rejects = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if len(rejects) >= rows:
                break
            raw = json.loads(line)
            rejects.append(
                {
                    "record": raw.pop(RECORD_NO),
                    "line": raw.pop(LINE_NO),
                    "rule": raw.pop(RULE),
                    "reason": raw.pop(REASON),
                    "fields": raw,  # the raw fields as received, masked
                }
            )
    return rejects


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict[str, Any]], columns: list[str], max_width: dict[str, int] | None = None) -> str:
    """A plain aligned text table; cells longer than their column's maximum are cut with an ellipsis."""
    limits = max_width or {}
    cells = [[_cell(r.get(c), limits.get(c, CELL_WIDTH)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


def preview(args: argparse.Namespace) -> int:
    """Run the real engine on a sample file: first outbound records (masked) and the rejects."""
    from batch_assets.lib.engine import layout, transform_file
    from batch_assets.lib.formats import FormatError
    from batch_assets.lib.settings import load_settings

    spec, error = _load(args.spec)
    if error:
        return _spec_error(args, error)
    sample: Path = args.sample
    if not sample.is_file():
        print(f"{sample}: no such sample file", file=sys.stderr)
        return EXIT_SAMPLE
    settings = load_settings()
    keys, notes = _keys(spec)
    name_matches = layout.matches_pattern(spec, sample.name)
    if not name_matches:
        notes.append(
            f"'{sample.name}' does not match file_pattern {spec.file_pattern!r}: "
            "the arrival sensor would pass such a file over"
        )
    with tempfile.TemporaryDirectory(prefix="vendor-preview-") as tmp:
        work = Path(tmp)
        try:
            result = transform_file(
                spec,
                sample,
                work / "staged.parquet",
                work / "rejects.jsonl",
                keys=keys,
                chunk_size=settings.chunk_size,
                memory_limit=settings.duckdb_memory_limit,
                threads=settings.duckdb_threads,
                temp_dir=work,
            )
        except FormatError as exc:
            print(f"{sample}: unreadable as {spec.input.kind}: {exc}", file=sys.stderr)
            return EXIT_SAMPLE
        schema, records = _first_records(work / "staged.parquet", args.rows)
        rejects = _first_rejects(work / "rejects.jsonl", args.rows)
        outbound = _outbound_text(spec, schema, records)
    rate = result.rows_rejected / result.rows_in if result.rows_in else 0.0
    report = {
        "spec": str(args.spec),
        "valid": True,
        "vendor_id": spec.vendor_id,
        "sample": str(sample),
        "file_pattern": spec.file_pattern,
        "file_name_matches": name_matches,
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "rows_rejected": result.rows_rejected,
        "reject_rate": rate,
        "reject_rate_threshold": spec.reject_rate_threshold,
        "rejects_by_rule": dict(result.rejects_by_rule.most_common()),
        "records": records,
        "rejects": rejects,
        "outbound_preview": outbound,
        "notes": notes,
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str, ensure_ascii=False))
        return EXIT_OK
    verdict = "over" if rate > spec.reject_rate_threshold else "within"
    print(f"spec     {args.spec}: valid: {_describe(spec)}")
    print(
        f"sample   {sample.name}: {result.rows_in:,} records in, {result.rows_out:,} out, "
        f"{result.rows_rejected:,} rejected ({rate:.1%}, {verdict} the {spec.reject_rate_threshold:.1%} threshold)"
    )
    for note in notes:
        print(f"note     {note}")
    if result.rejects_by_rule:
        print("by rule  " + ", ".join(f"{rule} {n:,}" for rule, n in result.rejects_by_rule.most_common()))
    print(f"\nOutbound records (first {len(records)} of {result.rows_out:,}, masked):")
    print(table(records, schema.names) if records else "(none)")
    print(f"\nOutbound file ({spec.output.format.kind}, first {len(records)} records as written):")
    print(outbound.rstrip("\r\n") or "(empty)")
    print(f"\nRejects (first {len(rejects)} of {result.rows_rejected:,}):")
    if rejects:
        rows = [
            {**r, "fields": " ".join(f"{k}={v}" for k, v in r["fields"].items() if v not in (None, ""))}
            for r in rejects
        ]
        print(table(rows, ["record", "line", "rule", "reason", "fields"], {"reason": 60, "fields": 80}))
    else:
        print("(none)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    vendor = commands.add_parser("vendor", help="Check a vendor spec and preview it on a sample file.")
    sub = vendor.add_subparsers(dest="vendor_command", required=True)
    check_cmd = sub.add_parser("check", help=check.__doc__)
    check_cmd.add_argument("spec", type=Path, metavar="SPEC.yaml")
    check_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    check_cmd.set_defaults(handler=check)
    preview_cmd = sub.add_parser("preview", help=preview.__doc__)
    preview_cmd.add_argument("spec", type=Path, metavar="SPEC.yaml")
    preview_cmd.add_argument("sample", type=Path, metavar="SAMPLE_FILE")
    preview_cmd.add_argument("--rows", type=int, default=10, help="records and rejects to show (default 10)")
    preview_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    preview_cmd.set_defaults(handler=preview)
