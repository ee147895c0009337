"""The demo's commands: ``batch-assets seed-demo`` drops demo vendor files into the inbound area;
``batch-assets demo-markets`` backfills the markets through a running webserver."""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.settings import load_settings
from batch_assets.lib.specs import load_vendor_specs


def seed_demo(args: argparse.Namespace) -> int:
    """Drop demo files for every vendor into the inbound area, as vendors would."""
    from batch_assets.defs.resources import build_resources

    settings = load_settings()
    day = args.day or dt.datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
    store = build_resources(settings)["file_store"].store()
    with tempfile.TemporaryDirectory() as tmp:
        for spec in load_vendor_specs(settings.vendors_dir):
            for n in range(1, args.files + 1):
                name = file_name_for(spec, day, n)
                local = Path(tmp) / name
                seed = sum(spec.vendor_id.encode()) * 1_000 + n  # stable across runs, unlike hash()
                made = write_vendor_file(spec, local, args.records, invalid_share=args.invalid_share, seed=seed)
                key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, day)}{name}"
                with store.publish(key) as target:
                    local.replace(target)
                print(f"{store.uri(key)}  {made.records} records, {made.invalid} invalid")
    return 0


MARKETS = ("krx", "us")
# Bars kept before the first traded session: the factors' longest look-back is 250 sessions.
BAR_HISTORY_SESSIONS = 260
DEMO_TAGS = {"trigger": "demo"}


def _market_stages(api, market: str, trading_start: str) -> list[tuple[str, object, str, str]]:
    """(what, target, first, last) of each stage of one market's demo: bars, factors, trading to PnL."""
    from batch_assets.cli.runs import resolve_target
    from batch_assets.lib.markets.venues import first_session_from, get_venue, latest_completed_session

    bars = resolve_target(api, f"backfill_{market}_daily_bars_job", [])
    sessions = [dt.date.fromisoformat(k) for k in bars.partition_keys]
    last = latest_completed_session(get_venue(market), sessions, dt.datetime.now(dt.UTC)).isoformat()
    first = first_session_from(market, trading_start).isoformat()
    history = bars.partition_keys[max(0, bars.partition_keys.index(first) - BAR_HISTORY_SESSIONS)]
    return [
        ("daily bars", bars, history, last),
        ("factors", resolve_target(api, None, [f"factors/{market}/daily"]), first, last),
        ("trading to PnL", resolve_target(api, f"run_{market}_trading_pipeline_job", []), first, last),
    ]


def _wait_for_location(api, timeout: float) -> None:
    """The webserver answers before the code location is loaded; until then it knows no job."""
    from batch_assets.cli.runs import CliError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if any(j.name == "backfill_krx_daily_bars_job" for j in api.jobs()):
                return
        except CliError:
            pass  # not up yet
        if time.monotonic() > deadline:
            raise CliError(f"the webserver at {api.url} did not load batch_assets within {timeout:.0f}s")
        time.sleep(2)


def demo_markets(args: argparse.Namespace) -> int:
    """Backfill KRX and US bars, factors and the trading pipeline to daily PnL through a running webserver."""
    from batch_assets.cli.runs import BACKFILL_DONE, BACKFILL_SUCCEEDED, DagsterApi, launch_backfill, partition_range

    api = DagsterApi(args.url)
    _wait_for_location(api, args.timeout)
    trading_start = load_settings().trading_start
    plans = {m: _market_stages(api, m, trading_start) for m in MARKETS}
    # Stage by stage, both markets at once: a stage reads what the one before it wrote.
    for stage in range(len(plans[MARKETS[0]])):
        launched = {}
        for market, stages in plans.items():
            what, target, first, last = stages[stage]
            partitions = partition_range(target, first, last)
            title = f"demo: {market.upper()} {what} {first} to {last}"
            launched[market], _ = launch_backfill(api, target, partitions, DEMO_TAGS, title)
            print(f"{title}: {len(partitions)} sessions, {api.url}/runs/b/{launched[market]}", flush=True)
        for market, backfill_id in launched.items():
            while (status := (api.backfill(backfill_id) or {}).get("status")) not in BACKFILL_DONE:
                time.sleep(3)
            if status not in BACKFILL_SUCCEEDED:
                print(f"demo: {market.upper()} backfill {backfill_id} ended {status}: see the UI", flush=True)
                return 1
    print("demo: markets done; see Assets > market, factors, trading, pnl", flush=True)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    seed = commands.add_parser("seed-demo", help=seed_demo.__doc__)
    seed.add_argument("--day", help="YYYY-MM-DD (default: today in BATCH_ASSETS_TIMEZONE)")
    seed.add_argument("--files", type=int, default=2, help="files per vendor")
    seed.add_argument("--records", type=int, default=500, help="records per file")
    seed.add_argument("--invalid-share", type=float, default=0.02)
    seed.set_defaults(handler=seed_demo)

    markets = commands.add_parser("demo-markets", help=demo_markets.__doc__)
    markets.add_argument("--url", default="http://127.0.0.1:3000", help="the Dagster webserver")
    markets.add_argument("--timeout", type=float, default=300, help="seconds to wait for the webserver")
    markets.set_defaults(handler=demo_markets)
