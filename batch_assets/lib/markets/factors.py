"""Daily factors of every symbol, computed in DuckDB with window functions over stored bars.

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
seed's last index), which DuckDB evaluates with window sums in O(1) per row. The index k is
relative to the block being computed, and blocks are at most ``BLOCK_SESSIONS`` + 250 sessions
long, so b^(-k) stays far inside float64 range.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch_assets.lib.markets.calendars import sessions_before
from batch_assets.lib.markets.layout import bars_key, bars_prefix, factors_key
from batch_assets.lib.markets.schema import FACTOR_COLUMNS, FACTOR_SCHEMA
from batch_assets.lib.storage import FileStore

LOOKBACK_SESSIONS = 250
WINDOW = LOOKBACK_SESSIONS + 1  # observations in the EMA/RSI window, the current one included
BLOCK_SESSIONS = 250  # target sessions computed per SQL pass
_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _ema(y: str, k0: int, n: int, alpha: float, m: int, name: str) -> str:
    """SQL for the EMA of column ``y`` (defined from index ``k0`` on) over a window of ``m`` values.

    Full window (k - m + 1 >= k0): the seed is the window's first n values, the tail the rest.
    Shorter history: the seed is the series' first n values (k0 .. k0+n-1), the tail the rest.
    """
    ln_b = f"ln({1 - alpha!r})"
    full = f"(k - {m - 1} >= {k0})"
    seed_end = f"(CASE WHEN {full} THEN k - {m - n} ELSE {k0 + n - 1} END)"
    seed = (
        f"CASE WHEN {full} THEN sum({y}) OVER (w ROWS BETWEEN {m - 1} PRECEDING AND {m - n} PRECEDING) "
        f"ELSE sum(CASE WHEN k < {k0 + n} THEN {y} END) OVER (w ROWS UNBOUNDED PRECEDING) END"
    )
    weighted = f"{y} * exp(-k * {ln_b})"
    tail = (
        f"CASE WHEN {full} THEN sum({weighted}) OVER (w ROWS BETWEEN {m - n - 1} PRECEDING AND CURRENT ROW) "
        f"ELSE sum(CASE WHEN k >= {k0 + n} THEN {weighted} END) OVER (w ROWS UNBOUNDED PRECEDING) END"
    )
    return (
        f"CASE WHEN k >= {seed_end} THEN exp((k - {seed_end}) * {ln_b}) * ({seed}) / {n} "
        f"+ {alpha!r} * exp(k * {ln_b}) * coalesce({tail}, 0) END AS {name}"
    )


FACTOR_SQL = f"""
CREATE OR REPLACE TEMP TABLE factor_block AS
WITH bars AS (
    SELECT symbol, session, adj_close, halted FROM read_parquet($files)
),
obs AS (
    SELECT symbol, session, adj_close AS px,
           row_number() OVER (PARTITION BY symbol ORDER BY session) - 1 AS k
    FROM bars
    WHERE NOT halted AND adj_close > 0
),
moves AS (
    SELECT symbol, session, k, px,
           px - lag(px) OVER w AS d,
           ln(px / lag(px) OVER w) AS r
    FROM obs
    WINDOW w AS (PARTITION BY symbol ORDER BY k)
),
series AS (
    SELECT *, greatest(d, 0) AS gain, greatest(-d, 0) AS loss FROM moves
),
computed AS (
    SELECT symbol, session,
           px / lag(px, 20) OVER w - 1 AS mom_20,
           px / lag(px, 60) OVER w - 1 AS mom_60,
           px / lag(px, 120) OVER w - 1 AS mom_120,
           CASE WHEN count(px) OVER (w ROWS 19 PRECEDING) = 20 THEN avg(px) OVER (w ROWS 19 PRECEDING) END AS sma_20,
           CASE WHEN count(px) OVER (w ROWS 59 PRECEDING) = 60 THEN avg(px) OVER (w ROWS 59 PRECEDING) END AS sma_60,
           {_ema("px", 0, 20, 2 / 21, WINDOW, "ema_20")},
           {_ema("gain", 1, 14, 1 / 14, WINDOW - 1, "avg_gain")},
           {_ema("loss", 1, 14, 1 / 14, WINDOW - 1, "avg_loss")},
           CASE WHEN count(r) OVER (w ROWS 19 PRECEDING) = 20
                THEN stddev_samp(r) OVER (w ROWS 19 PRECEDING) * sqrt(252) END AS vol_20
    FROM series
    WINDOW w AS (PARTITION BY symbol ORDER BY k)
)
SELECT b.symbol, b.session,
       c.mom_20, c.mom_60, c.mom_120, c.sma_20, c.sma_60, c.ema_20,
       CASE WHEN c.avg_gain + c.avg_loss > 0 THEN 100 * c.avg_gain / (c.avg_gain + c.avg_loss)
            WHEN c.avg_gain IS NOT NULL THEN 50.0 END AS rsi_14,
       c.vol_20
FROM bars AS b
LEFT JOIN computed AS c USING (symbol, session)
WHERE b.session >= $first AND b.session <= $last
"""


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


def compute_factor_table(con: duckdb.DuckDBPyConnection, files: Sequence[Path], first: date, last: date) -> pa.Table:
    """Factors of every bar from ``first`` to ``last`` in ``files`` (the earlier files are history)."""
    con.execute(FACTOR_SQL, {"files": [str(f) for f in files], "first": first, "last": last})
    table = con.sql("SELECT * FROM factor_block ORDER BY session, symbol").to_arrow_table()
    con.execute("DROP TABLE factor_block")
    return table.cast(FACTOR_SCHEMA)


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
                _publish_sessions(store, exchange, block, table, run)
                if log:
                    log(f"factors {exchange}: {block[0]}..{block[-1]} ({len(block)} sessions, {table.num_rows} rows)")
        finally:
            con.close()
    run.history_missing = sorted(missing_history)
    run.seconds = time.monotonic() - started
    return run


def _publish_sessions(store: FileStore, exchange: str, block: list[date], table: pa.Table, run: FactorRun) -> None:
    sessions = table["session"]
    for session in block:
        day = table.filter(pc.equal(sessions, pa.scalar(session, pa.date32())))
        with store.publish(factors_key(exchange, session)) as path:
            pq.write_table(day, path)
        run.sessions.append(session)
        run.rows += day.num_rows
        run.rows_by_session[session.isoformat()] = day.num_rows
        run.symbols.update(day["symbol"].to_pylist())
        for column in FACTOR_COLUMNS:
            run.null_counts[column] += day[column].null_count
        if session == block[-1]:
            run.preview = day.slice(0, 5).to_pylist()


__all__ = ["FACTOR_COLUMNS", "LOOKBACK_SESSIONS", "FactorRun", "MissingBarsError", "compute_factor_sessions"]
