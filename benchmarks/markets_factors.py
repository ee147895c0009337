"""Factor benchmark: synthetic daily bars of N symbols over Y years, then the factors over all of them.

    uv run python -m benchmarks.markets_factors                          # 3,000 symbols x 10 years, US
    uv run python -m benchmarks.markets_factors --symbols 300 --years 2  # a quick look

Writes one bar file per session (as the bars asset does, without fsync) into a scratch folder under
/tmp, then times (a) the whole range as one factor pass (a 10-year backfill: one run, blocks of 250
sessions) and (b) the last session alone (the daily run: 251 files read). Prints figures and the
process's peak RSS; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets.lib.markets.factors import compute_factor_sessions
from batch_assets.lib.markets.layout import bars_key, bars_prefix
from batch_assets.lib.markets.synthetic import SyntheticSource
from batch_assets.lib.storage import LocalFolderStore


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--exchange", default="us", choices=["us", "krx"])
    parser.add_argument("--end", default="2026-11-20")
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)

    end = date.fromisoformat(args.end)
    sessions = exchange_sessions(args.exchange, end - timedelta(days=round(365.25 * args.years)), end)
    root = Path(tempfile.mkdtemp(prefix="batch-assets-markets-bench-"))
    store = LocalFolderStore(root)
    try:
        (root / bars_prefix(args.exchange)).mkdir(parents=True)
        started, cpu = time.perf_counter(), time.process_time()
        rows = 0
        for session, table in SyntheticSource(args.symbols).fetch_range(args.exchange, sessions):
            pq.write_table(table, root / bars_key(args.exchange, session))
            rows += table.num_rows
        generate = time.perf_counter() - started
        print(
            f"bars: {len(sessions)} sessions x {args.symbols} symbols = {rows:,} rows in {generate:.1f} s "
            f"({time.process_time() - cpu:.1f} CPU-s)"
        )

        started, cpu = time.perf_counter(), time.process_time()
        run = compute_factor_sessions(
            store, args.exchange, sessions, memory_limit=args.memory_limit, threads=args.threads
        )
        full = time.perf_counter() - started
        print(
            f"factors, whole range in one pass: {run.rows:,} rows in {full:.1f} s, "
            f"{time.process_time() - cpu:.1f} CPU-s "
            f"({run.rows / full:,.0f} rows/s, {full / len(sessions) * 1000:.0f} ms per session); "
            f"peak RSS so far {peak_rss_mb():.0f} MB"
        )

        started, cpu = time.perf_counter(), time.process_time()
        daily = compute_factor_sessions(
            store, args.exchange, sessions[-1:], memory_limit=args.memory_limit, threads=args.threads
        )
        one = time.perf_counter() - started
        print(
            f"factors, one session (251 bar files read): {daily.rows:,} rows in {one:.2f} s, "
            f"{time.process_time() - cpu:.2f} CPU-s"
        )
        print(f"peak RSS {peak_rss_mb():.0f} MB; DuckDB memory_limit {args.memory_limit}, threads {args.threads}")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
