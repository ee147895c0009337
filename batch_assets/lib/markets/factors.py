"""Daily factors of every symbol, from stored bars: DuckDB reads them, numpy computes the windows.

Conventions (all on the adjusted close, all windows counted in the symbol's trading sessions):

- The series is a symbol's *observations*: its bars that are not halted and have a positive
  adjusted close. A halted bar is no observation (it has no trade): its factors are null and a
  window that spans it reaches one session further back.
- Each session's factors are a function of that session's bars and the ``LOOKBACK_SESSIONS``
  (250) exchange sessions before it, nothing older: a partition recomputed alone or inside any
  backfill range gives the same values, and the asset declares exactly that dependency.
- ``mom_N = close_t / close_{t-N} - 1`` for N = 20, 60, 120 (null with fewer than N earlier
  observations).
- ``sma_N`` = mean of the last N closes (N = 20, 60; null with fewer than N).
- ``ema_20``: alpha = 2 / (20 + 1), seeded with the SMA of the first 20 values, then
  ``ema = alpha * close + (1 - alpha) * ema``. The recursion starts at the oldest observation of
  the 251-observation window ending at t (or at the symbol's first observation when it has
  fewer): with a shorter history this is exactly TA-Lib's EMA; with a full window the seed's weight
  is (19/21)^231 < 1e-10, so it matches TA-Lib's full-history EMA to ~1e-10 relative.
- ``rsi_14``: Wilder's RSI. Gains and losses of close-to-close changes; average gain and loss
  seeded with the SMA of the first 14, then ``avg = (13 * avg + x) / 14`` (alpha = 1/14);
  ``rsi = 100 * avg_gain / (avg_gain + avg_loss)``, 50 when both are 0 (no movement). Same
  window rule as the EMA (the 250 changes inside the 251 observations): TA-Lib's RSI exactly
  on a shorter history, within ~1e-6 of its full-history RSI with a full window.
- ``vol_20`` = sample standard deviation (n - 1) of the last 20 log returns ln(close_t /
  close_{t-1}) times sqrt(252), annualised; null with fewer than 20 returns.

EMA and Wilder averages are recursive; over a bounded window they have the closed form
``ema_t = b^(t-s) * sma_seed + alpha * b^t * sum_{k=s+1..t} x_k * b^(-k)`` (b = 1 - alpha, s the
seed's last index), evaluated with running sums in O(1) per value. The observations of a block are
laid out as a panel (one row per symbol, column k = its k-th observation), so every window is a
slice along a row and running sums never cross symbols. The index k is relative to the block being
computed, and blocks are at most ``BLOCK_SESSIONS`` + 250 sessions long, so b^(-k) stays far inside
float64 range (and a window sum taken as a difference of running sums stays accurate: the terms
before the window weigh less than b^230 of it).
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.lib.stride_tricks import sliding_window_view

from batch_assets.lib.markets.calendars import sessions_before
from batch_assets.lib.markets.layout import bars_key, bars_prefix, factors_key
from batch_assets.lib.markets.schema import FACTOR_COLUMNS, FACTOR_SCHEMA
from batch_assets.lib.storage import FileStore

LOOKBACK_SESSIONS = 250
WINDOW = LOOKBACK_SESSIONS + 1  # observations in the EMA/RSI window, the current one included
# Target sessions per pass. Larger blocks re-read less history but hold more: peak RSS ~0.6 GB at
# 250 on 3,000 symbols, ~1 GB at 500.
BLOCK_SESSIONS = 250
PUBLISHERS = 2  # threads writing session files
_EPOCH = date(1970, 1, 1)
_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _lag(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` n observations earlier (NaN for the first n)."""
    out = np.full_like(x, np.nan)
    out[:, n:] = x[:, :-n]
    return out


def _prefix(x: np.ndarray) -> np.ndarray:
    """Running sums with a leading 0: the sum of x[a..b-1] is c[b] - c[a]."""
    c = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(x, axis=1, out=c[:, 1:])
    return c


def _mean(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    c = _prefix(x)
    out[:, n - 1 :] = (c[:, n:] - c[:, :-n]) / n
    return out


def _stdev(x: np.ndarray, n: int, rows: int = 256) -> np.ndarray:
    """Sample stdev of the last n values, two-pass per window (no cancellation on flat series);
    by slices of rows so the windows' temporaries stay small."""
    out = np.full_like(x, np.nan)
    if x.shape[1] >= n:
        windows = sliding_window_view(x, n, axis=1)
        for r in range(0, x.shape[0], rows):
            out[r : r + rows, n - 1 :] = windows[r : r + rows].std(axis=2, ddof=1)
    return out


def _ema(y: np.ndarray, k0: int, n: int, alpha: float, m: int) -> np.ndarray:
    """EMA of ``y`` (defined from observation k0 on) over a window of ``m`` values, NaN before the seed.

    The seed is the n values ending at ``s = max(k - (m - n), k0 + n - 1)`` (the window's first n,
    or the series' first n with a shorter history), the tail the values after it up to k.
    """
    ln_b = math.log(1 - alpha)
    k = np.arange(y.shape[1])
    valid = k >= k0 + n - 1
    kv = k[valid]
    s = np.maximum(kv - (m - n), k0 + n - 1)
    c = _prefix(y)
    seed = c[:, s + 1] - c[:, s + 1 - n]
    cw = _prefix(y * np.exp(-k * ln_b))
    tail = cw[:, kv + 1] - cw[:, s + 1]
    out = np.full_like(y, np.nan)
    out[:, valid] = np.exp((kv - s) * ln_b) * seed / n + alpha * np.exp(kv * ln_b) * tail
    return out


def _factor_panels(x: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """Each factor of ``x`` (symbols x observations, NaN after a symbol's last), one at a time."""
    for n in (20, 60, 120):
        yield f"mom_{n}", x / _lag(x, n) - 1
    yield "sma_20", _mean(x, 20)
    yield "sma_60", _mean(x, 60)
    yield "ema_20", _ema(x, 0, 20, 2 / 21, WINDOW)
    d = x - _lag(x, 1)
    d[:, :1] = 0.0  # no change before the first observation; never inside a window
    gain = _ema(np.maximum(d, 0.0), 1, 14, 1 / 14, WINDOW - 1)
    loss = _ema(np.maximum(-d, 0.0), 1, 14, 1 / 14, WINDOW - 1)
    both = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        yield "rsi_14", np.where(both > 0, 100 * gain / both, np.where(np.isnan(gain), np.nan, 50.0))
        r = np.log(x / _lag(x, 1))
    yield "vol_20", _stdev(r, 20) * math.sqrt(252)


class MissingBarsError(RuntimeError):
    """Bars of a session whose factors were asked for are not in the store."""


@dataclass
class FactorRun:
    """What a factor computation did, for the materialization metadata."""

    sessions: list[date] = field(default_factory=list)
    rows: int = 0
    symbols: set[str] = field(default_factory=set)
    history_missing: list[date] = field(default_factory=list)  # earlier sessions without a bars file
    seconds: float = 0.0
    preview: list[dict] = field(default_factory=list)
    rows_by_session: dict[str, int] = field(default_factory=dict)
    null_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FACTOR_COLUMNS, 0))


# Unordered: a DuckDB ORDER BY of a block cost more CPU, and held ~200 MB more, than numpy's sorts.
BARS_SQL = "SELECT symbol, session, adj_close, halted FROM read_parquet($files)"


def compute_factor_table(con: duckdb.DuckDBPyConnection, files: Sequence[Path], first: date, last: date) -> pa.Table:
    """Factors of every bar from ``first`` to ``last`` in ``files`` (the earlier files are history),
    ordered by session and symbol."""
    bars = con.sql(BARS_SQL, params={"files": [str(f) for f in files]}).to_arrow_table()
    days = _days(bars["session"])
    x, cell, by_symbol = _observation_panel(bars, days)
    # Output rows: the bars of first..last, every one (a non-observation gets nulls), by session
    # and symbol (a stable sort by session of rows already ordered by symbol).
    chosen = by_symbol[(days[by_symbol] >= _day(first)) & (days[by_symbol] <= _day(last))]
    del by_symbol
    order = chosen[np.argsort(days[chosen], kind="stable")]
    cell = cell[order]
    found = cell >= 0
    columns = {"symbol": bars["symbol"].take(order), "session": bars["session"].take(order)}
    for name, panel in _factor_panels(x):
        values = np.full(len(order), np.nan)
        values[found] = panel.ravel()[cell[found]]
        columns[name] = pa.array(values, from_pandas=True)  # NaN is null: no factor is NaN otherwise
    return pa.table(columns).select(FACTOR_SCHEMA.names).cast(FACTOR_SCHEMA)


def _observation_panel(bars: pa.Table, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observations' closes as a panel (one row per symbol, column k = its k-th observation),
    each bar's cell in it (-1 for a non-observation), and the bars' order by symbol and session."""
    codes = _symbol_ranks(bars["symbol"])
    # By symbol, then session: two stable sorts, the second a radix sort of small integers.
    by_day = np.argsort(days, kind="stable")
    by_symbol = by_day[np.argsort(codes[by_day], kind="stable")]
    del by_day
    observed = pc.and_(pc.invert(bars["halted"]), pc.greater(bars["adj_close"], 0.0))
    at = by_symbol[pc.fill_null(observed, False).to_numpy(zero_copy_only=False)[by_symbol]]
    new = np.empty(len(at), bool)
    new[:1] = True
    np.not_equal(codes[at[1:]], codes[at[:-1]], out=new[1:])
    row = np.cumsum(new) - 1
    k = np.arange(len(at)) - np.flatnonzero(new)[row]
    width = int(k.max()) + 1 if len(k) else 0
    x = np.full((int(new.sum()), width), np.nan)
    x[row, k] = bars["adj_close"].to_numpy()[at]
    cell = np.full(bars.num_rows, -1)
    cell[at] = row * width + k
    return x, cell, by_symbol


def _symbol_ranks(symbols: pa.ChunkedArray) -> np.ndarray:
    """Each row's symbol as its rank among the distinct symbols in byte order (DuckDB's ORDER BY);
    16-bit when they fit, which numpy sorts by radix."""
    encoded = symbols.combine_chunks().dictionary_encode()
    ranks = np.empty(len(encoded.dictionary), np.uint16 if len(encoded.dictionary) <= 1 << 16 else np.int64)
    ranks[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(ranks))
    return ranks[encoded.indices.to_numpy()]


def _days(sessions: pa.ChunkedArray) -> np.ndarray:
    """Dates as days since 1970 (date32's storage): numpy compares these far faster than dates."""
    return pc.cast(sessions, pa.int32()).to_numpy()


def _day(session: date) -> int:
    return (session - _EPOCH).days


def connect(memory_limit: str = "512MB", threads: int = 2, temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{_limit(memory_limit)}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir is not None:
        con.execute("SET temp_directory = $dir", {"dir": str(temp_dir)})
    return con


def _limit(value: str) -> str:
    # Settings text goes into a SET statement, which takes no parameters: allow only a size.
    if not _SIZE.fullmatch(value.strip()):
        raise ValueError(f"memory limit {value!r} is not a size like '512MB'")
    return value.strip()


def compute_factor_sessions(
    store: FileStore,
    exchange: str,
    sessions: Sequence[date],
    *,
    first_available: date | None = None,
    memory_limit: str = "512MB",
    threads: int = 2,
    block_sessions: int = BLOCK_SESSIONS,
    log: Callable[[str], None] | None = None,
) -> FactorRun:
    """Compute and publish ``factors/<exchange>/daily/<session>.parquet`` for each of ``sessions``.

    Reads the bars of the sessions and of the ``LOOKBACK_SESSIONS`` before each block from the
    store (sessions before ``first_available``, the partitions' start, are not looked for).
    Raises MissingBarsError when a target session has no bars file; missing history is reported.
    """
    started = time.monotonic()
    run = FactorRun()
    targets = sorted(set(sessions))
    if not targets:
        return run
    available = {info.key for info in store.list(bars_prefix(exchange)) if info.key.endswith(".parquet")}
    absent = [s for s in targets if bars_key(exchange, s) not in available]
    if absent:
        shown = ", ".join(str(s) for s in absent[:10]) + (" …" if len(absent) > 10 else "")
        raise MissingBarsError(
            f"no {exchange} bars for {len(absent)} session(s) to compute factors of: {shown}; "
            f"materialize market/{exchange}/daily_bars for them first"
        )
    missing_history: set[date] = set()
    with tempfile.TemporaryDirectory(prefix="factors-") as tmp:
        folder = Path(tmp)
        local: dict[date, Path] = {}
        con = connect(memory_limit, threads, folder / "spill")
        # Sessions are written by a small pool while the next block is computed: encoding and
        # fsync overlap the numpy work, and at most two blocks' tables are held at once.
        pool = ThreadPoolExecutor(PUBLISHERS, thread_name_prefix="factors-publish")
        writes: list[Future] = []
        try:
            for start in range(0, len(targets), block_sessions):
                block = targets[start : start + block_sessions]
                history = [
                    s
                    for s in sessions_before(exchange, block[0], LOOKBACK_SESSIONS)
                    if first_available is None or s >= first_available
                ]
                needed = [s for s in history if s not in block] + block
                for session in [s for s in local if s < needed[0]]:
                    local.pop(session).unlink(missing_ok=True)
                for session in needed:
                    key = bars_key(exchange, session)
                    if key not in available:
                        missing_history.add(session)
                    elif session not in local:
                        local[session] = folder / f"{session.isoformat()}.parquet"
                        store.download(key, local[session])
                files = [local[s] for s in needed if s in local]
                table = compute_factor_table(con, files, block[0], block[-1])
                _wait(writes)
                writes = _publish_sessions(pool, store, exchange, block, table, run)
                if log:
                    log(f"factors {exchange}: {block[0]}..{block[-1]} ({len(block)} sessions, {table.num_rows} rows)")
            _wait(writes)
        finally:
            pool.shutdown(cancel_futures=True)
            con.close()
    run.history_missing = sorted(missing_history)
    run.seconds = time.monotonic() - started
    return run


def _publish_sessions(
    pool: Executor, store: FileStore, exchange: str, block: list[date], table: pa.Table, run: FactorRun
) -> list[Future]:
    """Start writing each session of ``block`` to its own file; count them in ``run``."""
    # The table is ordered by session: each session is a slice, found by binary search.
    days = _days(table["session"])
    wanted = np.array([_day(s) for s in block])
    starts, ends = np.searchsorted(days, wanted, "left"), np.searchsorted(days, wanted, "right")
    writes = []
    for session, start, end in zip(block, starts.tolist(), ends.tolist(), strict=True):
        day = table.slice(start, end - start)
        writes.append(pool.submit(_publish_table, store, factors_key(exchange, session), day))
        run.sessions.append(session)
        run.rows_by_session[session.isoformat()] = day.num_rows
    run.rows += table.num_rows
    run.symbols.update(pc.unique(table["symbol"]).to_pylist())
    for column in FACTOR_COLUMNS:
        run.null_counts[column] += table[column].null_count
    run.preview = day.slice(0, 5).to_pylist()
    return writes


def _publish_table(store: FileStore, key: str, table: pa.Table) -> None:
    with store.publish(key) as path:
        # Dictionary pages only where values repeat: on the float columns they cost half the write
        # time and made the files bigger.
        pq.write_table(table, path, use_dictionary=["symbol", "session"])


def _wait(writes: list[Future]) -> None:
    for write in writes:
        write.result()  # raises a failed write's error


__all__ = ["FACTOR_COLUMNS", "LOOKBACK_SESSIONS", "FactorRun", "MissingBarsError", "compute_factor_sessions"]
