"""Factor values against independent references on 20 years of real S&P 500 prices.

The references: TA-Lib (C, SMA-seeded EMA and Wilder RSI — the conventions we document), the
`ta` package (pandas ewm, seeded differently: compared after more than 10x the window), and
plain numpy/pandas for momentum and volatility.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import talib
from arch.data import sp500
from ta.momentum import RSIIndicator
from ta.trend import EMAIndicator

from batch_assets.lib.markets.calendars import exchange_sessions, sessions_before
from batch_assets.lib.markets.factors import (
    LOOKBACK_SESSIONS,
    MissingBarsError,
    compute_factor_sessions,
    compute_factor_table,
    connect,
)
from batch_assets.lib.markets.layout import bars_key, factors_key
from batch_assets.lib.markets.schema import BAR_SCHEMA, FACTOR_SCHEMA
from batch_assets.lib.storage import LocalFolderStore


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    frame = sp500.load()
    return frame[frame.index.year >= 2000]


def bars_table(symbol: str, sessions: list[date], adj: np.ndarray, halted: list[bool] | None = None) -> pa.Table:
    n = len(sessions)
    prices = pa.array(adj, pa.float64())
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "session": pa.array(sessions, pa.date32()),
            "open": prices,
            "high": prices,
            "low": prices,
            "close": prices,
            "adj_close": prices,
            "volume": pa.array([0 if h else 100 for h in (halted or [False] * n)], pa.int64()),
            "halted": pa.array(halted or [False] * n, pa.bool_()),
            "source": pa.array(["folder"] * n, pa.string()),
        },
        schema=BAR_SCHEMA,
    )


def column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(float)


@pytest.fixture(scope="module")
def spx_factors(spx: pd.DataFrame, tmp_path_factory) -> tuple[np.ndarray, pa.Table]:
    adj = spx["Adj Close"].to_numpy(float)
    sessions = [d.date() for d in spx.index]
    path = tmp_path_factory.mktemp("spx") / "spx.parquet"
    pq.write_table(bars_table("SPX", sessions, adj), path)
    con = connect()
    try:
        table = compute_factor_table(con, [path], sessions[0], sessions[-1])
    finally:
        con.close()
    assert table.schema == FACTOR_SCHEMA
    return adj, table


def assert_close(ours: np.ndarray, ref: np.ndarray, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "null where the reference has a value, or the reverse"
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


def test_sma_and_momentum_match_talib_and_numpy(spx_factors) -> None:
    adj, table = spx_factors
    assert_close(column(table, "sma_20"), talib.SMA(adj, 20), rtol=1e-12)
    assert_close(column(table, "sma_60"), talib.SMA(adj, 60), rtol=1e-12)
    for n in (20, 60, 120):
        ref = np.full(len(adj), np.nan)
        ref[n:] = adj[n:] / adj[:-n] - 1
        assert_close(column(table, f"mom_{n}"), ref, rtol=1e-12, atol=1e-15)


def test_ema_matches_talib_exactly_and_ta_after_ten_windows(spx_factors) -> None:
    """Within 251 observations ours is TA-Lib's recursion; beyond, the seed's weight is < 1e-10."""
    adj, table = spx_factors
    ours = column(table, "ema_20")
    assert_close(ours, talib.EMA(adj, 20), rtol=1e-9)
    ta_ema = EMAIndicator(pd.Series(adj), window=20, fillna=False).ema_indicator().to_numpy()
    np.testing.assert_allclose(ours[200:], ta_ema[200:], rtol=1e-8)


def test_wilder_rsi_matches_talib_and_ta_after_ten_windows(spx_factors) -> None:
    adj, table = spx_factors
    ours = column(table, "rsi_14")
    ref = talib.RSI(adj, 14)
    assert_close(ours[:251], ref[:251], atol=1e-9)  # the recursion from the first change: exact
    assert_close(ours, ref, atol=1e-5)  # a 250-change window: the seed weighs (13/14)^236 ~ 3e-8
    ta_rsi = RSIIndicator(pd.Series(adj), window=14, fillna=False).rsi().to_numpy()
    np.testing.assert_allclose(ours[140:], ta_rsi[140:], atol=1e-3)
    np.testing.assert_allclose(ours[500:], ta_rsi[500:], atol=1e-5)


def test_volatility_is_the_annualised_sample_stdev_of_20_log_returns(spx_factors) -> None:
    adj, table = spx_factors
    returns = pd.Series(np.log(adj)).diff()
    ref = (returns.rolling(20).std(ddof=1) * np.sqrt(252)).to_numpy()
    assert_close(column(table, "vol_20"), ref, rtol=1e-9)
    assert 0.05 < np.nanmedian(column(table, "vol_20")) < 0.4  # the S&P's usual 10-25% a year


def test_short_histories_give_nulls_not_guesses(tmp_path: Path) -> None:
    sessions = exchange_sessions("us", "2026-10-01", "2026-10-14")  # 10 sessions
    path = tmp_path / "short.parquet"
    pq.write_table(bars_table("NEW", sessions, np.linspace(10, 11, len(sessions))), path)
    table = compute_factor_table(connect(), [path], sessions[0], sessions[-1])
    last = table.slice(len(sessions) - 1).to_pylist()[0]
    assert all(last[c] is None for c in ("mom_20", "sma_20", "ema_20", "rsi_14", "vol_20", "mom_120"))


def test_flat_prices_give_a_neutral_rsi(tmp_path: Path) -> None:
    sessions = exchange_sessions("us", "2026-09-01", "2026-10-30")
    path = tmp_path / "flat.parquet"
    pq.write_table(bars_table("FLAT", sessions, np.full(len(sessions), 50.0)), path)
    table = compute_factor_table(connect(), [path], sessions[-1], sessions[-1])
    row = table.to_pylist()[0]
    assert row["rsi_14"] == 50.0 and row["vol_20"] == 0.0 and row["mom_20"] == 0.0


def test_a_halted_bar_is_no_observation(tmp_path: Path) -> None:
    """A suspended stock did not trade: its row gets null factors and the windows skip it."""
    sessions = exchange_sessions("us", "2026-06-01", "2026-10-30")
    adj = np.linspace(100, 130, len(sessions))
    halted = [i == len(sessions) - 5 for i in range(len(sessions))]
    adj_with_zero = np.where(halted, 0.0, adj)
    path = tmp_path / "halt.parquet"
    pq.write_table(bars_table("SUSP", sessions, adj_with_zero, halted), path)
    table = compute_factor_table(connect(), [path], sessions[0], sessions[-1])
    rows = table.to_pylist()
    assert all(rows[-5][c] is None for c in ("mom_20", "sma_20", "ema_20", "rsi_14", "vol_20"))
    traded = adj[[not h for h in halted]]
    assert rows[-1]["mom_20"] == pytest.approx(traded[-1] / traded[-21] - 1, rel=1e-12)


@pytest.fixture
def spx_store(spx: pd.DataFrame, tmp_path: Path) -> tuple[LocalFolderStore, list[date], pd.DataFrame]:
    """The last 320 S&P sessions of 2018 (plus a second, scaled symbol) as per-session bar files."""
    store = LocalFolderStore(tmp_path / "data")
    tail = spx.iloc[-320:]
    sessions = [d.date() for d in tail.index]
    adj = tail["Adj Close"].to_numpy(float)
    (store.root / bars_key("us", sessions[0])).parent.mkdir(parents=True)
    for i, session in enumerate(sessions):
        day = pa.concat_tables(
            [bars_table("SPX", [session], adj[i : i + 1]), bars_table("SPX2", [session], adj[i : i + 1] * 2)]
        )
        # Written in place rather than published: 320 fsyncs would only slow the test down.
        pq.write_table(day, store.root / bars_key("us", session))
    return store, sessions, tail


def read_factors(store: LocalFolderStore, session: date) -> pa.Table:
    return pq.read_table(store.root / factors_key("us", session))


def test_a_session_alone_equals_the_same_session_inside_a_range(spx_store) -> None:
    """Each session's factors depend on its 250-session lookback only, so a daily run and any
    backfill range write the same values."""
    store, sessions, tail = spx_store
    targets = sessions[-30:]
    run = compute_factor_sessions(store, "us", targets, block_sessions=7)
    assert run.sessions == targets and run.rows == 60 and not run.history_missing
    in_range = read_factors(store, targets[10])
    compute_factor_sessions(store, "us", [targets[10]])
    alone = read_factors(store, targets[10])
    for name in FACTOR_SCHEMA.names[2:]:
        np.testing.assert_allclose(column(in_range, name), column(alone, name), rtol=1e-12)
    # The lookback is 250 sessions, so with 290 sessions before the targets every factor exists;
    # the full-history TA-Lib values agree within the documented bounds.
    adj = tail["Adj Close"].to_numpy(float)
    last = read_factors(store, targets[-1]).to_pylist()
    assert [r["symbol"] for r in last] == ["SPX", "SPX2"]
    assert last[0]["ema_20"] == pytest.approx(talib.EMA(adj, 20)[-1], rel=1e-9)
    assert last[0]["rsi_14"] == pytest.approx(talib.RSI(adj, 14)[-1], abs=1e-5)
    assert last[1]["mom_120"] == pytest.approx(adj[-1] / adj[-121] - 1, rel=1e-12)


def test_missing_bars_of_a_target_session_fail_and_missing_history_is_reported(spx_store) -> None:
    store, sessions, _ = spx_store
    store.delete(bars_key("us", sessions[-100]))
    run = compute_factor_sessions(store, "us", sessions[-1:])
    assert run.history_missing == [sessions[-100]]
    assert sessions_before("us", sessions[-1], LOOKBACK_SESSIONS)[0] == sessions[-251]
    next_session = sessions[-1] + timedelta(days=2)  # 2018-12-31 is a Monday, 2019-01-02 a Wednesday
    with pytest.raises(MissingBarsError, match="no us bars for 1 session"):
        compute_factor_sessions(store, "us", [next_session])


def test_a_range_split_in_blocks_equals_each_symbol_computed_alone(tmp_path: Path) -> None:
    """Blocks lay all symbols out side by side and publish sessions while the next block is
    computed: symbols listed at different dates, stored in no particular order, must neither
    mix nor depend on where a block starts."""
    sessions = exchange_sessions("us", "2025-03-03", "2026-10-30")
    rng = np.random.default_rng(7)
    listed = {"ZED": 0, "AAA": 120, "MID": len(sessions) - 200}  # MID has a short history throughout
    prices = {s: 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(sessions)))) for s in listed}
    store = LocalFolderStore(tmp_path / "data")
    (store.root / bars_key("us", sessions[0])).parent.mkdir(parents=True)
    for i, session in enumerate(sessions):
        day = [bars_table(s, [session], prices[s][i : i + 1]) for s in ("ZED", "MID", "AAA") if i >= listed[s]]
        pq.write_table(pa.concat_tables(day), store.root / bars_key("us", session))
    targets = sessions[-45:]
    run = compute_factor_sessions(store, "us", targets, block_sessions=10)
    assert run.sessions == targets and run.rows == 3 * 45 and run.symbols == set(listed)
    con = connect()
    try:
        for symbol, first in listed.items():
            path = tmp_path / f"{symbol}.parquet"
            pq.write_table(bars_table(symbol, sessions[first:], prices[symbol][first:]), path)
            alone = compute_factor_table(con, [path], targets[0], targets[-1])
            for i, session in enumerate(targets):
                day = read_factors(store, session)
                assert day["symbol"].to_pylist() == ["AAA", "MID", "ZED"]
                row = day.filter(pa.compute.equal(day["symbol"], symbol))
                for name in FACTOR_SCHEMA.names[2:]:
                    np.testing.assert_allclose(column(row, name), column(alone.slice(i, 1), name), rtol=1e-12)
    finally:
        con.close()


def test_bars_without_a_single_observation_give_null_factors(tmp_path: Path) -> None:
    """A block where every bar is halted has an empty observation panel: rows, not an error."""
    sessions = exchange_sessions("us", "2026-10-01", "2026-10-09")
    path = tmp_path / "halted.parquet"
    pq.write_table(bars_table("SUSP", sessions, np.zeros(len(sessions)), [True] * len(sessions)), path)
    table = compute_factor_table(connect(), [path], sessions[0], sessions[-1])
    assert table.num_rows == len(sessions)
    assert all(table[name].null_count == len(sessions) for name in FACTOR_SCHEMA.names[2:])
