"""Where trading reads and writes in the file store, the Parquet schemas, and small-table I/O.

Inputs (the bars and factors slice's contract, keys from ``layout``):
  market/{ex}/daily_bars/{session}.parquet
  factors/{ex}/daily/{session}.parquet
Outputs, one file per session, each published atomically (a rerun replaces it):
  trading/{ex}/target_portfolio/{strategy}/{session}.parquet
  trading/{ex}/orders/{session}.parquet      the order ledger of the session
  trading/{ex}/fills/{session}.parquet       every order's outcome, one row per fill leg
  trading/{ex}/positions/{session}.parquet   open positions and cash after the session, marked at its close
  pnl/{ex}/daily/{session}.parquet           PnL per strategy and a TOTAL row, in the market's currency
  pnl/strategy_governance/{YYYY-MM}.parquet  the monthly governance review

Session tables are small (one row per symbol at most), so they are read whole.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from batch_assets.lib.markets import layout
from batch_assets.lib.markets.calendars import as_date
from batch_assets.lib.storage import FileStore

TOTAL = "TOTAL"  # the strategy name of a market's total row in the PnL table
# Run tags of checks-only runs, set by the schedules that start them: the session to judge, and the
# tick's time (so "after the close" is judged at the tick, not whenever the run happens to start).
SESSION_TAG = "batch_assets/session"
TICK_TIME_TAG = "batch_assets/tick_time"


def bars_key(ex: str, session: date | str) -> str:
    return layout.bars_key(ex, as_date(session))


def factors_key(ex: str, session: date | str) -> str:
    return layout.factors_key(ex, as_date(session))


def target_key(ex: str, strategy: str, session: date | str) -> str:
    return f"trading/{ex}/target_portfolio/{strategy}/{session}.parquet"


def orders_key(ex: str, session: date | str) -> str:
    return f"trading/{ex}/orders/{session}.parquet"


def fills_key(ex: str, session: date | str) -> str:
    return f"trading/{ex}/fills/{session}.parquet"


def positions_key(ex: str, session: date | str) -> str:
    return f"trading/{ex}/positions/{session}.parquet"


def pnl_key(ex: str, session: date | str) -> str:
    return f"pnl/{ex}/daily/{session}.parquet"


def governance_key(month: str) -> str:
    return f"pnl/strategy_governance/{month}.parquet"


TARGET_SCHEMA = pa.schema(
    [
        ("strategy", pa.string()),
        ("session", pa.date32()),
        ("symbol", pa.string()),
        ("score", pa.float64()),
        ("weight", pa.float64()),
        ("reference_price", pa.float64()),
        ("target_quantity", pa.int64()),
        ("rebalance", pa.bool_()),
        ("order_type", pa.string()),
        ("trigger_offset", pa.float64()),
    ]
)

ORDER_SCHEMA = pa.schema(
    [
        ("client_order_id", pa.string()),
        ("exchange", pa.string()),
        ("session", pa.date32()),
        ("strategy", pa.string()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.int64()),
        ("order_type", pa.string()),
        ("trigger_offset", pa.float64()),
    ]
)

FILL_SCHEMA = pa.schema(
    [
        ("client_order_id", pa.string()),
        ("session", pa.date32()),
        ("strategy", pa.string()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("leg", pa.string()),
        ("ordered_quantity", pa.int64()),
        ("quantity", pa.int64()),
        ("price", pa.float64()),
        ("fee", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)

POSITION_SCHEMA = pa.schema(
    [
        ("strategy", pa.string()),
        ("session", pa.date32()),
        ("kind", pa.string()),  # 'position', or 'cash': the strategy's cash line (symbol '', value = cash)
        ("symbol", pa.string()),
        ("quantity", pa.int64()),
        ("average_cost", pa.float64()),
        ("price", pa.float64()),
        ("price_source", pa.string()),
        ("market_value", pa.float64()),
        ("unrealized_pnl", pa.float64()),
    ]
)

PNL_SCHEMA = pa.schema(
    [
        ("session", pa.date32()),
        ("strategy", pa.string()),
        ("currency", pa.string()),
        ("capital", pa.float64()),
        ("cash", pa.float64()),
        ("market_value", pa.float64()),
        ("equity", pa.float64()),
        ("realized_pnl", pa.float64()),
        ("unrealized_pnl", pa.float64()),
        ("daily_pnl", pa.float64()),
        ("cumulative_pnl", pa.float64()),
        ("fees", pa.float64()),
        ("peak_equity", pa.float64()),
        ("drawdown", pa.float64()),
        ("gross_exposure", pa.float64()),
        ("max_weight", pa.float64()),
        ("max_weight_symbol", pa.string()),
        ("positions", pa.int64()),
        ("fills", pa.int64()),
        ("turnover", pa.float64()),
    ]
)


GOVERNANCE_SCHEMA = pa.schema(
    [
        ("month", pa.string()),
        ("market", pa.string()),
        ("strategy", pa.string()),
        ("currency", pa.string()),
        ("sessions_expected", pa.int64()),
        ("sessions_booked", pa.int64()),
        ("monthly_pnl", pa.float64()),
        ("monthly_return", pa.float64()),
        ("worst_drawdown", pa.float64()),
        ("fills", pa.int64()),
        ("average_turnover", pa.float64()),
        ("end_equity", pa.float64()),
        ("verdict", pa.string()),
        ("reasons", pa.string()),
    ]
)


def read_rows(store: FileStore, key: str) -> list[dict] | None:
    """The rows of a small Parquet file, or None when there is no file at ``key``."""
    try:
        data = store.read_bytes(key)
    except FileNotFoundError:
        return None
    return pq.read_table(pa.BufferReader(data)).to_pylist()


def write_rows(store: FileStore, key: str, rows: list[dict], schema: pa.Schema) -> int:
    """Publish ``rows`` atomically as a Parquet file at ``key`` (readers see the old file or the new one)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with store.publish(key) as path:
        pq.write_table(table, path)
    return table.num_rows
