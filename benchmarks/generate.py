"""Benchmark data: a vendor day at a scale factor, or one big file, generated fast and deterministically.

    uv run python -m benchmarks.generate day --scale 0.01            # 25 files, 250,000 records
    uv run python -m benchmarks.generate day --scale 1.0 --jobs 2    # the seed's day: 2,500 files, 25M records
    uv run python -m benchmarks.generate file --records 5000000      # one acme_retail CSV
    uv run python -m benchmarks.generate check                       # the engine rejects what was broken

A day is written to ``<out>/files/<vendor>/<file>`` with ``<out>/vendors/*.yaml`` (the five demo
specs, then copies of them under new ids) and ``<out>/manifest.json`` (every file's records and
invalid records). The same arguments reuse an existing manifest instead of writing it again.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from batch_assets.lib.specs import VendorSpec, load_vendor_specs
from benchmarks.bulk_data import VERSION, PlannedFile, derived_specs, plan_day, write_bulk_file

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
SEED_FILES, SEED_RECORDS = 2_500, 25_000_000  # the seed's day (003): files of 1K-100K records, 10K on average


@dataclass
class Manifest:
    scale: float
    seed: int
    vendors: int
    invalid_share: float
    generator: int = VERSION
    files: list[dict] = field(default_factory=list)  # vendor_id, file_name, path, kind, records, invalid, bytes
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(f["records"] for f in self.files)

    @property
    def invalid(self) -> int:
        return sum(f["invalid"] for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.files)

    def same_request(self, other: Manifest) -> bool:
        keys = ("scale", "seed", "vendors", "invalid_share", "generator")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def default_vendors(scale: float) -> int:
    """About 100 vendors for the seed's day, never fewer than the five demo ones."""
    return max(5, min(100, round(100 * scale)))


def _write_one(spec: VendorSpec, target: Path, planned: PlannedFile, invalid_share: float) -> dict:
    made = write_bulk_file(spec, target, planned.records, invalid_share=invalid_share, seed=planned.seed)
    return {
        "vendor_id": planned.vendor_id,
        "file_name": planned.file_name,
        "path": planned.path,
        "kind": spec.input.kind,
        "records": made.records,
        "invalid": made.invalid,
        "bytes": target.stat().st_size,
    }


def write_vendors_dir(specs: list[VendorSpec], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        (folder / f"{spec.vendor_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def generate_day(
    out: Path,
    scale: float,
    *,
    seed: int = 6,
    vendors: int | None = None,
    invalid_share: float = 0.02,
    jobs: int = 1,
    base_vendors: Path = REPO / "vendors",
    force: bool = False,
    log=print,
) -> Manifest:
    """The seed's day at ``scale`` under ``out`` (reused when already generated with the same arguments)."""
    vendors = vendors or default_vendors(scale)
    wanted = Manifest(scale=scale, seed=seed, vendors=vendors, invalid_share=invalid_share)
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not force:
        existing = Manifest(**{"generator": 0, **json.loads(manifest_path.read_text())})
        if existing.same_request(wanted):
            log(f"reusing {manifest_path}: {len(existing.files):,} files, {existing.records:,} records")
            return existing
    files = max(1, round(SEED_FILES * scale))
    records = files * (SEED_RECORDS // SEED_FILES)  # 10K records per file on average, as in the seed
    specs = derived_specs(load_vendor_specs(base_vendors), vendors)
    by_id = {s.vendor_id: s for s in specs}
    plan = plan_day(specs, files=files, records=records, seed=seed)
    write_vendors_dir(specs, out / "vendors")
    for spec in specs:
        (out / "files" / spec.vendor_id).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_write_one, by_id[p.vendor_id], out / "files" / p.path, p, invalid_share)
            for p in sorted(plan, key=lambda p: -p.records)  # largest first: the pool ends together
        ]
        wanted.files = sorted((f.result() for f in futures), key=lambda f: f["path"])
    wanted.seconds = time.monotonic() - started
    manifest_path.write_text(json.dumps(asdict(wanted), indent=1))
    log(
        f"wrote {len(wanted.files):,} files, {wanted.records:,} records ({wanted.invalid:,} invalid), "
        f"{wanted.bytes / 1e6:,.0f} MB in {wanted.seconds:.1f} s "
        f"({wanted.records / wanted.seconds:,.0f} records/s with {jobs} process(es)) under {out}"
    )
    return wanted


def generate_file(
    out: Path, records: int, *, vendor: str = "acme_retail", seed: int = 5, invalid_share: float = 0.02, log=print
) -> dict:
    """One big file for ``vendor`` (reused when ``out`` and its ``.json`` note match the arguments)."""
    note = out.with_suffix(out.suffix + ".json")
    request = {"vendor": vendor, "records": records, "seed": seed, "invalid_share": invalid_share, "generator": VERSION}
    if out.exists() and note.exists():
        made = json.loads(note.read_text())
        if {k: made.get(k) for k in request} == request:
            log(f"reusing {out}: {records:,} records")
            return made
    spec = next(s for s in load_vendor_specs(REPO / "vendors") if s.vendor_id == vendor)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    made = write_bulk_file(spec, out, records, invalid_share=invalid_share, seed=seed)
    seconds = time.monotonic() - started
    result = {**request, "invalid": made.invalid, "bytes": out.stat().st_size, "seconds": round(seconds, 2)}
    note.write_text(json.dumps(result, indent=1))
    size = result["bytes"] / 1e6
    log(f"wrote {out}: {records:,} records ({made.invalid:,} invalid), {size:,.0f} MB in {seconds:.1f} s")
    return result


def check(records: int = 3_000, invalid_share: float = 0.1, log=print) -> int:
    """Each demo vendor's generated file through the engine: exactly the broken records are rejected.

    The benchmarks compare implementations by these counts, so the generator must know them.
    """
    import tempfile

    from batch_assets.lib.engine import transform_file

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for spec in load_vendor_specs(REPO / "vendors"):
            made = write_bulk_file(spec, work / "input", records, invalid_share=invalid_share, seed=4)
            twice = write_bulk_file(spec, work / "again", records, invalid_share=invalid_share, seed=4)
            result = transform_file(
                spec,
                work / "input",
                work / "staged.parquet",
                work / "rejects.jsonl",
                keys={m.secret_env: b"check" for m in spec.masking.values()},
                chunk_size=700,  # several chunks: duplicates across chunks too
            )
            same = (work / "input").read_bytes() == (work / "again").read_bytes() and made.invalid == twice.invalid
            ok = result.rows_in == records and result.rows_rejected == made.invalid and same
            failures += not ok
            log(
                f"{'ok  ' if ok else 'FAIL'} {spec.vendor_id:18s} {spec.input.kind:12s} {made.invalid:5,} broken, "
                f"{result.rows_rejected:5,} rejected by {len(result.rejects_by_rule)} rules; reproducible: {same}"
            )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    day = commands.add_parser("day", help="the seed's day at a scale factor")
    day.add_argument("--scale", type=float, default=0.01, help="1.0 = 2,500 files, 25M records")
    day.add_argument("--out", type=Path, help="default: benchmarks/out/day-<scale>")
    day.add_argument("--vendors", type=int, help="default: 100 x scale, at least 5")
    day.add_argument("--jobs", type=int, default=1, help="generator processes")
    day.add_argument("--force", action="store_true", help="write again even if the manifest matches")
    commands.add_parser("check", help="the engine rejects exactly the generated broken records")
    one = commands.add_parser("file", help="one big file")
    one.add_argument("--records", type=int, default=5_000_000)
    one.add_argument("--vendor", default="acme_retail")
    one.add_argument("--out", type=Path, help="default: benchmarks/out/<vendor>_<records>.<ext>")
    for command in (day, one):  # check uses its own fixed seed and share
        command.add_argument("--seed", type=int, default=6)
        command.add_argument("--invalid-share", type=float, default=0.02)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "day":
        out = args.out or OUT / f"day-{args.scale:g}"
        generate_day(
            out,
            args.scale,
            seed=args.seed,
            vendors=args.vendors,
            invalid_share=args.invalid_share,
            jobs=args.jobs,
            force=args.force,
        )
    else:
        ext = {"csv": "csv", "json": "json", "jsonl": "jsonl", "xml": "xml", "fixed_width": "dat"}
        spec = next(s for s in load_vendor_specs(REPO / "vendors") if s.vendor_id == args.vendor)
        out = args.out or OUT / f"{args.vendor}_{args.records}.{ext[spec.input.kind]}"
        generate_file(out, args.records, vendor=args.vendor, seed=args.seed, invalid_share=args.invalid_share)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
