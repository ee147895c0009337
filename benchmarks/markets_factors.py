"""Markets benchmark: synthetic daily bars of N symbols over Y years, the factors over all of them, and
the bar backfill as one run against one run per session.

    uv run python -m benchmarks.markets_factors                          # 3,000 symbols x 10 years, US
    uv run python -m benchmarks.markets_factors --symbols 300 --years 2  # a quick look

Writes one bar file per session (as the bars asset does, without fsync) into a scratch folder under
/tmp, then times (a) the whole range as one factor pass (a 10-year backfill: one run, blocks of 250
sessions) and (b) the last session alone (the daily run: 251 files read). Then materializes the
bars asset itself (synthetic source) on a temporary instance: (c) the whole range as one run, as
``BackfillPolicy.single_run()`` launches it, and (d) one run per session, timed on ``--per-day-sample``
sessions and extrapolated to the range (all of them with ``--per-day-sample 0``). The runs are
in-process (``dg.materialize``): a daemon-launched run adds ~3-5 CPU-s of process start each
(docs/performance.md). Prints figures and the process's peak RSS; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets.lib.markets.factors import BLOCK_SESSIONS, compute_factor_sessions
from batch_assets.lib.markets.layout import bars_key, bars_prefix
from batch_assets.lib.markets.synthetic import SyntheticSource
from batch_assets.lib.storage import LocalFolderStore


def peak_rss_mb() -> float:
    """VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec from the launching process."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def bar_backfill(exchange: str, sessions: list[date], symbols: int, sample: int) -> None:
    """The bars asset over ``sessions``: one run for the range, then one run per session (sampled)."""
    import dagster as dg

    from batch_assets.defs.market.assets import build_bar_asset
    from batch_assets.defs.market.resources import MarketDataResource
    from batch_assets.defs.resources import FileStoreResource
    from batch_assets.lib.markets.calendars import session_partition_args

    first = sessions[0].isoformat()
    partitions = dg.DailyPartitionsDefinition(**session_partition_args(exchange, first))
    asset = build_bar_asset(exchange, partitions, first)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # a run's event log, not its chatter
    with tempfile.TemporaryDirectory(prefix="batch-assets-bars-bench-") as scratch:
        resources = {
            "market_data": MarketDataResource(source="synthetic", synthetic_symbols=symbols),
            "file_store": FileStoreResource(root=str(Path(scratch) / "data")),
        }
        home = Path(scratch) / "home"
        home.mkdir()
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            started, cpu = time.perf_counter(), time.process_time()
            range_tags = {
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": sessions[-1].isoformat(),
            }
            dg.materialize([asset], resources=resources, instance=instance, tags=range_tags, run_config=quiet)
            one_run = time.perf_counter() - started
            print(
                f"bar backfill, {len(sessions)} sessions as one run: {one_run:.1f} s, "
                f"{time.process_time() - cpu:.1f} CPU-s; peak RSS so far {peak_rss_mb():.0f} MB"
            )
            # Spread the sample over the range; every run writes its session again, as a re-run would.
            picked = sessions if sample <= 0 else sessions[:: max(1, len(sessions) // sample)][:sample]
            started, cpu = time.perf_counter(), time.process_time()
            for session in picked:
                key = session.isoformat()
                dg.materialize([asset], resources=resources, instance=instance, partition_key=key, run_config=quiet)
            per_day, per_day_cpu = time.perf_counter() - started, time.process_time() - cpu
    scale = len(sessions) / len(picked)
    estimate = "measured" if len(picked) == len(sessions) else f"extrapolated from {len(picked)} runs"
    print(
        f"bar backfill, one run per session: {per_day / len(picked):.2f} s, {per_day_cpu / len(picked):.2f} CPU-s "
        f"per run; {len(sessions)} runs: {per_day * scale:,.0f} s, {per_day_cpu * scale:,.0f} CPU-s ({estimate}); "
        f"{per_day * scale / one_run:.0f}x the single run"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--exchange", default="us", choices=["us", "krx"])
    parser.add_argument("--end", default="2026-11-20")
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--per-day-sample", type=int, default=25, help="runs timed for one-run-per-session (0: all)")
    parser.add_argument("--skip-backfill", action="store_true", help="factors only")
    parser.add_argument(
        "--block-sessions",
        default=str(BLOCK_SESSIONS),
        help="comma-separated target sessions per pass, timed side by side (e.g. 250,1000)",
    )
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

        for block in (int(b) for b in args.block_sessions.split(",")):
            started, cpu = time.perf_counter(), time.process_time()
            run = compute_factor_sessions(
                store,
                args.exchange,
                sessions,
                memory_limit=args.memory_limit,
                threads=args.threads,
                block_sessions=block,
            )
            full = time.perf_counter() - started
            print(
                f"factors, whole range in one pass, blocks of {block} sessions: {run.rows:,} rows in {full:.1f} s, "
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
        if not args.skip_backfill:
            bar_backfill(args.exchange, sessions, args.symbols, args.per_day_sample)
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
