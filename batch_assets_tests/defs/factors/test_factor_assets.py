"""A 30-session backfill of bars and factors is one run; its factors match an independent calculation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import talib

from batch_assets.lib.markets.calendars import exchange_sessions, sessions_before
from batch_assets.lib.markets.layout import bars_key, bars_prefix, factors_key, factors_prefix
from batch_assets.lib.markets.schema import FACTOR_SCHEMA
from batch_assets.lib.markets.synthetic import SyntheticSource
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.defs.market.helpers import BARS, FACTORS, checks_of, metadata_of, run_assets

LAST = date(2026, 11, 20)
BACKFILL = sessions_before("krx", LAST, 29) + [LAST]
HISTORY = sessions_before("krx", BACKFILL[0], 250)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", markets_start=HISTORY[0].isoformat(), synthetic_symbols=8)


def test_a_30_session_backfill_is_one_run_and_its_factors_match_an_independent_calculation(settings) -> None:
    instance = dg.DagsterInstance.ephemeral()
    store = LocalFolderStore(settings.data_dir)
    # The bars of the 250 earlier sessions are already stored (written in place: a 250-partition
    # run, or 250 fsynced publishes, would only add time).
    (store.root / bars_prefix("krx")).mkdir(parents=True)
    for session, table in SyntheticSource(symbols=8).fetch_range("krx", HISTORY):
        pq.write_table(table, store.root / bars_key("krx", session))
    result = run_assets(
        settings, [BARS["krx"], FACTORS["krx"]], BACKFILL[0].isoformat(), BACKFILL[-1].isoformat(), instance
    )
    assert result.success
    assert len(instance.get_runs()) == 1  # the whole backfill in one run
    partitions = {
        (e.asset_key, e.partition)
        for e in result.get_asset_materialization_events()
        if e.asset_key in (BARS["krx"], FACTORS["krx"])
    }
    assert partitions == {(k, s.isoformat()) for k in (BARS["krx"], FACTORS["krx"]) for s in BACKFILL}
    meta = metadata_of(result, FACTORS["krx"])
    assert meta["sessions"] == 30 and meta["rows"] == 240 and meta["history_sessions_missing"] == 0
    assert checks_of(result)["factors/krx/daily:bar_history_complete"].passed

    assert len(list(store.list(factors_prefix("krx")))) == 30
    bars = pa.concat_tables([pq.read_table(store.root / o.key) for o in store.list(bars_prefix("krx"))])
    assert bars.num_rows == 280 * 8
    factors = pa.concat_tables([pq.read_table(store.root / factors_key("krx", s)) for s in BACKFILL])
    assert factors.schema == FACTOR_SCHEMA
    checked = 0
    for symbol in pc.unique(bars["symbol"]).to_pylist():
        mine = bars.filter(pc.equal(bars["symbol"], symbol)).sort_by("session")
        traded = mine.filter(pc.invert(mine["halted"]))
        adj = traded["adj_close"].to_numpy()
        days = traded["session"].to_pylist()
        ema, rsi, sma = talib.EMA(adj, 20), talib.RSI(adj, 14), talib.SMA(adj, 60)
        returns = np.diff(np.log(adj))
        vol = {i: np.std(returns[i - 20 : i], ddof=1) for i in range(20, len(adj))}
        ours = {r["session"]: r for r in factors.filter(pc.equal(factors["symbol"], symbol)).to_pylist()}
        for i, day in enumerate(days):
            if day not in ours:
                continue
            row = ours[day]
            assert row["mom_120"] == pytest.approx(adj[i] / adj[i - 120] - 1, rel=1e-12)
            assert row["sma_60"] == pytest.approx(sma[i], rel=1e-12)
            assert row["ema_20"] == pytest.approx(ema[i], rel=1e-9)
            assert row["rsi_14"] == pytest.approx(rsi[i], abs=1e-5)
            assert row["vol_20"] == pytest.approx(vol[i] * np.sqrt(252), rel=1e-9)
            checked += 1
    halted = bars.filter(pc.and_(bars["halted"], pc.greater_equal(bars["session"], pa.scalar(BACKFILL[0]))))
    assert checked == 240 - halted.num_rows


def test_factors_of_a_session_without_bars_fail_with_what_to_do(settings) -> None:
    result = run_assets(settings, [FACTORS["us"]], "2026-11-20")
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert message == (
        "no us bars for 1 session(s) to compute factors of: 2026-11-20; materialize market/us/daily_bars for them first"
    )


def test_factors_with_missing_history_warn_and_still_write(settings) -> None:
    sessions = exchange_sessions("us", "2026-11-02", "2026-11-20")
    assert run_assets(settings, [BARS["us"], FACTORS["us"]], sessions[0].isoformat(), sessions[-1].isoformat()).success
    result = run_assets(settings, [FACTORS["us"]], "2026-11-20")
    assert result.success
    check = checks_of(result)["factors/us/daily:bar_history_complete"]
    assert not check.passed and check.metadata["missing_sessions"].value == 250 - (len(sessions) - 1)
    assert pq.read_table(LocalFolderStore(settings.data_dir).root / factors_key("us", date(2026, 11, 20))).num_rows == 8
