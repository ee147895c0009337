"""Building blocks for trading and PnL tests: the two slices on given settings, and the bars and
factors files of the market-data contract written straight into a local store.

The bar and factor assets belong to the market-data slices; here they are executable stand-ins
with the same keys and partitions, so these tests do not depend on that slice's sources.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from batch_assets.defs.pnl.definitions import build_pnl
from batch_assets.defs.resources import build_resources
from batch_assets.defs.trading.definitions import build_trading
from batch_assets.defs.trading.resources import build_broker_resource
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.calendars import session_partition_args
from batch_assets.lib.markets.layout import bars_key, factors_key
from batch_assets.lib.markets.schema import BAR_SCHEMA, FACTOR_SCHEMA
from batch_assets.lib.markets.trading_steps import (
    book_positions,
    build_target,
    market_book,
    place_session_orders,
    previous_traded_session,
    record_fills,
    session_pnl,
)
from batch_assets.lib.markets.venues import first_session_from
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore

# Mon 16 .. Fri 20 November 2026 are KRX and NYSE sessions.
MON, TUE, WED, THU, FRI = (dt.date(2026, 11, d) for d in (16, 17, 18, 19, 20))


def trading_settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", trading_start=MON.isoformat(), trading_max_volume_share=0.1)


def store_of(settings: Settings) -> LocalFolderStore:
    return LocalFolderStore(settings.data_dir)


def _stand_in(key: list[str], market: str, settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        partitions_def=dg.DailyPartitionsDefinition(**session_partition_args(market, settings.markets_start)),
        group_name=key[0],
        owners=["team:markets"],
        description="Stand-in for the market-data slice's asset (tests write its files directly).",
    )
    def _asset() -> None:
        return None

    return _asset


_DEFS: dict[str, dg.Definitions] = {}


def slice_defs(settings: Settings) -> dg.Definitions:
    """The trading and PnL slices with stand-ins and resources (built once per distinct settings)."""
    key = settings.model_dump_json()
    if key not in _DEFS:
        _DEFS[key] = _build_slice_defs(settings)
    return _DEFS[key]


def _build_slice_defs(settings: Settings) -> dg.Definitions:
    stand_ins = [
        _stand_in([area, m, name], m, settings)
        for m in ("krx", "us")
        for area, name in (("market", "daily_bars"), ("factors", "daily"))
    ]
    return dg.Definitions.merge(
        build_trading(settings),
        build_pnl(settings),
        dg.Definitions(assets=stand_ins, resources=build_resources(settings)),
    )


def run_job(
    settings: Settings,
    job_name: str,
    *,
    session: dt.date | None = None,
    sessions: tuple[dt.date, dt.date] | None = None,
    selection: list[str] | None = None,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute one of the slices' jobs in process, on one session or a range in one run."""
    job = slice_defs(settings).resolve_job_def(job_name)
    run_tags = dict(tags or {})
    if sessions:
        run_tags |= {
            "dagster/asset_partition_range_start": sessions[0].isoformat(),
            "dagster/asset_partition_range_end": sessions[1].isoformat(),
        }
    return job.execute_in_process(
        partition_key=session.isoformat() if session else None,
        asset_selection=[dg.AssetKey.from_user_string(k) for k in selection] if selection else None,
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=run_tags,
        raise_on_error=False,
    )


def write_bars(store, market: str, session: dt.date, prices: dict[str, tuple], volume: int = 10_000_000) -> None:
    """``prices``: symbol -> (open, high, low, close) or (open, high, low, close, halted)."""
    rows = []
    for symbol, p in prices.items():
        o, h, low, c = p[:4]
        halted = p[4] if len(p) > 4 else False
        rows.append(
            dict(
                symbol=symbol,
                session=session,
                open=o,
                high=h,
                low=low,
                close=c,
                adj_close=c,
                volume=volume,
                halted=halted,
                source="test",
            )
        )
    with store.publish(bars_key(market, session)) as path:
        pq.write_table(pa.Table.from_pylist(rows, schema=BAR_SCHEMA), path)


def factor_row(symbol: str, session: dt.date, **values: float) -> dict:
    """A symbol no strategy picks unless ``values`` say otherwise."""
    base = dict(
        mom_20=-0.01, mom_60=-0.01, mom_120=-0.01, sma_20=9.0, sma_60=10.0, ema_20=9.0, rsi_14=50.0, vol_20=0.02
    )
    return {"symbol": symbol, "session": session, **base, **values}


def write_factors(store, market: str, session: dt.date, rows: list[dict]) -> None:
    with store.publish(factors_key(market, session)) as path:
        pq.write_table(pa.Table.from_pylist(rows, schema=FACTOR_SCHEMA), path)


def rows(store, key: str) -> list[dict]:
    found = tl.read_rows(store, key)
    assert found is not None, f"{key} was not written"
    return found


# The same library steps the assets run, called directly: quick set-ups for tests whose subject
# is something else (a schedule's tick, a check), without a Dagster run per step.


def _context(settings: Settings, market: str, session: dt.date):
    store = store_of(settings)
    previous = previous_traded_session(market, session, first_session_from(market, settings.trading_start))
    return store, market_book(market, settings), previous


def trade_directly(settings: Settings, market: str, session: dt.date, strategies=("short_term",)) -> None:
    """Write the strategies' targets for ``session`` and place their orders, as the executor job does."""
    store, book, previous = _context(settings, market, session)
    for name in strategies:
        tl.write_rows(
            store,
            tl.target_key(market, name, session),
            build_target(store, book, name, session, previous),
            tl.TARGET_SCHEMA,
        )
    broker = build_broker_resource(settings).broker(store)
    placement, _ = place_session_orders(store, broker, book, session, previous)
    tl.write_rows(store, tl.orders_key(market, session), [o.to_row() for o in placement.ledger], tl.ORDER_SCHEMA)


def book_directly(settings: Settings, market: str, session: dt.date) -> None:
    """Record the fills, positions and PnL of ``session``, as the daily-pnl job does."""
    store, book, previous = _context(settings, market, session)
    broker = build_broker_resource(settings).broker(store)
    tl.write_rows(store, tl.fills_key(market, session), record_fills(broker, book, session), tl.FILL_SCHEMA)
    booked = book_positions(store, book, session, previous, require_close=False)
    tl.write_rows(store, tl.positions_key(market, session), booked.position_rows(), tl.POSITION_SCHEMA)
    tl.write_rows(store, tl.pnl_key(market, session), session_pnl(store, book, session, previous), tl.PNL_SCHEMA)
