"""The whole markets chain on the real slices: synthetic bars -> factors -> strategies, orders,
fills, positions -> daily PnL, each stage one run over a range, as the demo and a backfill do it.

The slice tests stand in for the bars and factors with hand-written files; this one proves the
slices meet through their asset keys and files, with nothing written by hand.
"""

import dagster as dg
import pytest

from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets.lib.storage import LocalFolderStore

MARKET = "krx"
# 45 sessions of bars: the short-term strategy's factors (20-session momentum, RSI 14) exist from
# the 21st, so the last 8 sessions trade with real picks.
BARS_FROM, TRADE_FROM, TO = "2026-08-03", "2026-09-23", "2026-10-06"


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dg.Definitions:
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BATCH_ASSETS_TRADING_START", TRADE_FROM)
    monkeypatch.setenv("BATCH_ASSETS_SYNTHETIC_SYMBOLS", "12")
    monkeypatch.setenv("BATCH_ASSETS_PARTITIONS_START", "2026-08-01")
    from batch_assets.definitions import defs as load

    return load()


def run_range(defs: dg.Definitions, instance, first: str, last: str, job: str | None = None, asset: str = ""):
    job_def = defs.resolve_job_def(job) if job else defs.resolve_implicit_global_asset_job_def()
    result = job_def.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        asset_selection=[dg.AssetKey.from_user_string(asset)] if asset else None,
    )
    assert result.success
    return result


def test_synthetic_bars_flow_through_factors_and_trading_into_daily_pnl(defs, tmp_path) -> None:
    """Bars, factors and PnL must materialize from nothing but the embedded defaults (the demo's promise)."""
    store = LocalFolderStore(tmp_path / "data")
    with dg.DagsterInstance.ephemeral() as instance:
        run_range(defs, instance, BARS_FROM, TO, job=f"backfill_{MARKET}_daily_bars_job")
        run_range(defs, instance, TRADE_FROM, TO, asset=f"factors/{MARKET}/daily")
        trading = run_range(defs, instance, TRADE_FROM, TO, job=f"run_{MARKET}_trading_pipeline_job")

        sessions = [s.isoformat() for s in exchange_sessions(MARKET, TRADE_FROM, TO)]
        pnl = {s: {r["strategy"]: r for r in tl.read_rows(store, tl.pnl_key(MARKET, s))} for s in sessions}
        fills = [r for s in sessions for r in tl.read_rows(store, tl.fills_key(MARKET, s)) or []]
        assert fills, "no strategy traded in 8 sessions of synthetic bars"
        total = [pnl[s][tl.TOTAL] for s in sessions]
        # Daily PnL adds up to the cumulative PnL: the book carried from session to session.
        assert sum(t["daily_pnl"] for t in total) == pytest.approx(total[-1]["cumulative_pnl"], abs=1e-3)
        materialized = {e.asset_key.to_user_string() for e in trading.get_asset_materialization_events() if e.asset_key}
        assert {f"pnl/{MARKET}/daily", f"trading/{MARKET}/positions"} <= materialized

        # A rerun of the range sends no order twice: the ledgers are unchanged.
        orders = [tl.read_rows(store, tl.orders_key(MARKET, s)) for s in sessions]
        run_range(defs, instance, TRADE_FROM, TO, job=f"run_{MARKET}_trading_pipeline_job")
        assert [tl.read_rows(store, tl.orders_key(MARKET, s)) for s in sessions] == orders
