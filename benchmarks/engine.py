"""Engine benchmark: our chunked DuckDB transform against plain Python, pandas and polars on one spec.

    uv run python -m benchmarks.engine                       # (a) 200 files x 10K and (b) one 5M file
    uv run python -m benchmarks.engine --case small --repeat 3
    uv run python -m benchmarks.engine --case big --impl engine,polars

Each implementation runs in its own subprocess (imports excluded from its timing; the process reports
its own peak RSS, VmHWM), in rotating order, on the same acme_retail files. Every run must agree
on rows in/out/rejected and on the rejects by rule, and must write byte-identical outbound and
rejects files: anything else stops the benchmark with exit code 1. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.generate import OUT, REPO, generate_file

SPEC = REPO / "vendors" / "acme_retail.yaml"
KEY = b"benchmark-hash-key"
IMPLS = ["engine", "python", "pandas", "polars"]
CASES = {"small": (200, 10_000), "big": (1, 5_000_000)}


def load_spec():
    """The spec without the loader's SQL check, so the baselines' processes never import DuckDB."""
    import yaml

    from batch_assets.lib.specs.model import VendorSpec

    return VendorSpec.model_validate(yaml.safe_load(SPEC.read_text()))


# ---------------------------------------------------------------- one implementation (child process)


def run_engine(spec, jobs: list[tuple[Path, Path]], options: dict) -> Iterator:
    """The product's two steps over the list of files, as a vendor day runs them: every file staged
    through one TransformSession's transform_files (staged Parquet + rejects, as stage_vendor_day
    does), then, the session closed, each outbound file written from its staged records as the
    outbound asset writes it. Yields each file's counts once its outbound file is written."""
    from batch_assets.lib.engine import DEFAULT_CHUNK_SIZE, FileJob, TransformSession
    from batch_assets.lib.engine.vendor_day import _write_outbound  # the outbound asset's writer
    from benchmarks.baselines.common import OUTBOUND, REJECTS, Counts

    chunk_size = options.get("chunk_size", DEFAULT_CHUNK_SIZE)
    session_options = {k: v for k, v in options.items() if k != "chunk_size"}
    file_jobs = [FileJob(source, out_dir / "staged.parquet", out_dir / REJECTS) for source, out_dir in jobs]
    with TransformSession(spec, {"BATCH_ASSETS_HASH_KEY": KEY}, **session_options) as session:
        results = dict(session.transform_files(file_jobs, chunk_size=chunk_size))
    for job in file_jobs:
        result = results[job]
        if isinstance(result, Exception):
            raise result
        _write_outbound(spec, [job.staged], job.staged.parent / OUTBOUND, chunk_size)
        yield Counts(result.rows_in, result.rows_out, result.rows_rejected, result.rejects_by_rule)


def child(impl: str, sources: list[Path], out_root: Path, options: dict, keep: bool) -> dict:
    spec = load_spec()
    if impl == "engine":
        import batch_assets.lib.engine  # noqa: F401  (imports before the clock starts, as for the others)

        def run(jobs: list[tuple[Path, Path]]) -> Iterator:
            return run_engine(spec, jobs, options)
    else:
        from benchmarks.baselines.common import Plan

        module = __import__(f"benchmarks.baselines.{impl}_{'rows' if impl == 'python' else 'frames'}", fromlist=["run"])
        plan = Plan(spec, KEY)

        def run(jobs: list[tuple[Path, Path]]) -> Iterator:
            return (module.run(plan, source, out_dir) for source, out_dir in jobs)

    from collections import Counter

    totals = {"rows_in": 0, "rows_out": 0, "rows_rejected": 0, "rejects_by_rule": Counter()}
    digest = hashlib.sha256()
    jobs = [(source, out_root / impl / source.stem) for source in sources]
    for _, out_dir in jobs:
        out_dir.mkdir(parents=True, exist_ok=True)
    seconds = cpu = 0.0
    runs, out_dirs = run(jobs), iter([out_dir for _, out_dir in jobs])
    # Only the work is timed: every step of ``runs`` (however it spreads its work over them, setup
    # and teardown included), not the checks of each file's outputs between them.
    while True:
        started, cpu_started = time.perf_counter(), time.process_time()
        counts = next(runs, None)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        if counts is None:
            break
        out_dir = next(out_dirs)
        for name in ("rows_in", "rows_out", "rows_rejected"):
            totals[name] += getattr(counts, name)
        totals["rejects_by_rule"].update(counts.rejects_by_rule)
        for name in ("outbound.csv", "rejects.jsonl"):
            digest.update(_file_digest(out_dir / name).encode())
        if not keep:
            shutil.rmtree(out_dir)
    totals["rejects_by_rule"] = dict(sorted(totals["rejects_by_rule"].items()))
    return {**totals, "seconds": seconds, "cpu_seconds": cpu, "digest": digest.hexdigest()[:16]}


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child would report its parent's peak if the parent was ever larger."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- the benchmark (parent process)


def measure(impl: str, sources: list[Path], out_root: Path, options: dict, keep: bool) -> dict:
    """Run one implementation in a fresh process; it reports its figures, its peak RSS and its CPU time.

    ``engine@/path/to/checkout`` runs the engine of another checkout: a change measured side by side.
    """
    name, _, tree = impl.partition("@")
    label = f"{name}@{Path(tree).name}" if tree else name
    request = json.dumps(
        {"impl": name, "sources": [str(s) for s in sources], "out": str(out_root / label), "options": options}
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (tree, str(REPO)) if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.engine", "--child", request] + (["--keep"] if keep else []),
        cwd=tree or REPO,  # the working directory comes first on sys.path
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate()
    if process.returncode:
        raise SystemExit(f"{impl} failed (exit {process.returncode}):\n{stderr[-3000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    figures["impl"] = label
    figures["peak_rss_mb"] = figures.pop("child_peak_rss_kb") / 1024
    figures["process_cpu_seconds"] = figures.pop("child_cpu_seconds")
    return figures


def prepare(case: str, files: int, records: int, log=print) -> list[Path]:
    if case == "big":
        path = OUT / f"acme_retail_{records}.csv"
        generate_file(path, records, seed=5, log=log)
        return [path]
    folder = OUT / f"engine_small_{files}x{records}"
    sources = []
    for i in range(files):
        path = folder / f"orders_{i:04d}.csv"
        generate_file(path, records, seed=1_000 + i, log=lambda _msg: None)
        sources.append(path)
    log(f"{files} files of {records:,} records under {folder}")
    return sources


def report(case: str, runs: list[dict], sources: list[Path]) -> None:
    """The best run of each implementation, and how many times faster the engine is (wall and CPU)."""
    size_mb = sum(s.stat().st_size for s in sources) / 1e6
    best: dict[str, dict] = {}
    for run in runs:
        if run["impl"] not in best or run["seconds"] < best[run["impl"]]["seconds"]:
            best[run["impl"]] = run
    reference = best.get("engine") or next(iter(best.values()))
    records = runs[0]["rows_in"]
    print(
        f"\n{case}: {len(sources)} file(s), {records:,} records, {size_mb:,.0f} MB (best of {len(runs) // len(best)})"
    )
    header = ("implementation", "records/s", "MB/s", "wall s", "cpu s", "peak RSS MB", "x wall", "x cpu")
    print("{:20s} {:>11s} {:>7s} {:>8s} {:>8s} {:>12s} {:>7s} {:>7s}".format(*header))
    for impl, run in best.items():
        print(
            f"{impl:20s} {records / run['seconds']:11,.0f} {size_mb / run['seconds']:7.1f} {run['seconds']:8.2f} "
            f"{run['cpu_seconds']:8.2f} {run['peak_rss_mb']:12.0f} {run['seconds'] / reference['seconds']:7.2f} "
            f"{run['cpu_seconds'] / reference['cpu_seconds']:7.2f}"
        )
    print(f"x wall, x cpu: how many times the time of {reference['impl']} (above 1: {reference['impl']} is faster)")


def check_agreement(case: str, runs: list[dict]) -> None:
    """Every run must have the same counts and bytes; a baseline that disagrees is not doing the same work."""
    keys = ("rows_in", "rows_out", "rows_rejected", "rejects_by_rule", "digest")
    first = runs[0]
    for run in runs[1:]:
        differ = [k for k in keys if run[k] != first[k]]
        if differ:
            detail = "\n".join(f"  {k}: {first['impl']}={first[k]!r} {run['impl']}={run[k]!r}" for k in differ)
            raise SystemExit(f"FAIL {case}: {run['impl']} disagrees with {first['impl']}:\n{detail}")
    print(
        f"{case}: all {len(runs)} runs agree: {first['rows_out']:,} out, {first['rows_rejected']:,} rejected, "
        f"outbound + rejects digest {first['digest']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument(
        "--impl",
        default=",".join(IMPLS),
        help=f"comma-separated, of {IMPLS}; engine@DIR: the engine of another checkout",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each implementation (best is reported)")
    parser.add_argument("--small-files", type=int, default=CASES["small"][0], help="files of the small case")
    parser.add_argument("--small-records", type=int, default=CASES["small"][1], help="records per small file")
    parser.add_argument("--big-records", type=int, default=CASES["big"][1], help="records of the big file")
    parser.add_argument("--chunk-size", type=int, help="engine: records per chunk (default: the engine's)")
    parser.add_argument("--threads", type=int, help="engine: DuckDB threads (default: the engine's)")
    parser.add_argument("--memory-limit", help="engine: DuckDB memory_limit (default: the engine's)")
    parser.add_argument("--keep", action="store_true", help="keep every output under benchmarks/out/engine_runs")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import resource

        request = json.loads(args.child)
        figures = child(
            request["impl"], [Path(s) for s in request["sources"]], Path(request["out"]), request["options"], args.keep
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures["child_peak_rss_kb"] = peak_rss_kb()
        figures["child_cpu_seconds"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(figures))
        return 0
    impls = args.impl.split(",")
    options = {
        k: v
        for k, v in {"chunk_size": args.chunk_size, "threads": args.threads, "memory_limit": args.memory_limit}.items()
        if v is not None
    }
    out_root = OUT / "engine_runs"
    all_runs = []
    load = os.getloadavg()
    print(f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"engine options: {options or 'the defaults'}")
    for case in CASES if args.case == "all" else [args.case]:
        sizes = {"small": (args.small_files, args.small_records), "big": (1, args.big_records)}[case]
        sources = prepare(case, *sizes)
        runs = []
        for rep in range(args.repeat):
            order = impls[rep % len(impls) :] + impls[: rep % len(impls)]  # rotate: no one always runs first
            for impl in order:
                run = measure(impl, sources, out_root, options, args.keep)
                run["case"] = case
                rate = run["rows_in"] / run["seconds"]
                print(
                    f"  {case} {run['impl']:12s} {rate:11,.0f} records/s  wall {run['seconds']:7.2f} s  "
                    f"cpu {run['cpu_seconds']:7.2f} s  peak RSS {run['peak_rss_mb']:5.0f} MB",
                    flush=True,
                )
                runs.append(run)
        check_agreement(case, runs)
        report(case, runs, sources)
        all_runs += runs
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(all_runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
