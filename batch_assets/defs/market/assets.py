"""Daily bars of one exchange: fetched from the configured source, one Parquet file per session."""

import time
from collections.abc import Iterator
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch_assets.defs.market.checks import HIGH_LOW, PRICES, VOLUME, bar_check_specs, gap_result, rule_result
from batch_assets.defs.market.resources import MarketDataResource
from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.markets import checks
from batch_assets.lib.markets.calendars import get_exchange, previous_session
from batch_assets.lib.markets.collector import CollectorError
from batch_assets.lib.markets.layout import bars_key, bars_prefix
from batch_assets.lib.markets.preview import markdown_table
from batch_assets.lib.markets.schema import BarDataError, conform_bars
from batch_assets.lib.markets.sources import BarSource, SourceConfigError
from batch_assets.lib.storage import FileStore

OWNERS = ["team:markets"]
GROUP = "market"
SESSIONS_LISTED = 62  # rows_by_session is listed for ranges up to about a quarter


def bars_asset_key(exchange: str) -> dg.AssetKey:
    return dg.AssetKey(["market", exchange, "daily_bars"])


def _stored_symbols(store: FileStore, key: str) -> list[str] | None:
    if store.stat(key) is None:
        return None
    return pq.read_table(pa.BufferReader(store.read_bytes(key)), columns=["symbol"])["symbol"].to_pylist()


def _fetched(source: BarSource, exchange: str, sessions: list[date]) -> Iterator[tuple[date, pa.Table]]:
    """The source's bars per session, conformed; a source that fails fails the run with its own words."""
    try:
        for session, fetched in source.fetch_range(exchange, sessions):
            yield session, conform_bars(fetched, session, source.kind)
    except (CollectorError, BarDataError) as error:
        raise dg.Failure(description=f"{source.describe()}: {error}") from error


def build_bar_asset(exchange: str, partitions_def: dg.PartitionsDefinition, first_session: str) -> dg.AssetsDefinition:
    """``market/<exchange>/daily_bars``, with its checks, over the exchange's session partitions."""
    ex = get_exchange(exchange)
    key = bars_asset_key(exchange)
    start = date.fromisoformat(first_session)

    @dg.asset(
        key=key,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=bar_check_specs(key),
        group_name=GROUP,
        owners=OWNERS,
        kinds={"python", "parquet"},
        tags={"exchange": exchange},
        description=f"{ex.name} daily OHLCV bars of every symbol, one Parquet file per session.",
    )
    def daily_bars(
        context: dg.AssetExecutionContext, market_data: MarketDataResource, file_store: FileStoreResource
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        sessions = [date.fromisoformat(k) for k in context.partition_keys]
        try:
            selected = market_data.source_for(exchange)
        except SourceConfigError as error:
            raise dg.Failure(description=str(error)) from error
        source = selected.source
        context.log.info(f"{exchange} bars {sessions[0]}..{sessions[-1]}: {source.describe()} ({selected.reason})")
        store = file_store.store()
        before = previous_session(exchange, sessions[0])
        previous = _stored_symbols(store, bars_key(exchange, before)) if before and before >= start else None
        not_compared = [] if previous is not None else [sessions[0].isoformat()]
        tallies = {
            HIGH_LOW: checks.RuleTally("high >= max(open, close) and low <= min(open, close)"),
            VOLUME: checks.RuleTally("volume >= 0"),
            PRICES: checks.RuleTally("prices present and > 0 unless halted"),
        }
        missing: dict[str, list[str]] = {}
        rows = halted = 0
        rows_by_session: dict[str, int] = {}
        symbols: set[str] = set()
        last = None
        for session, table in _fetched(source, exchange, sessions):
            with store.publish(bars_key(exchange, session)) as path:
                pq.write_table(table, path)
            day = session.isoformat()
            tallies[HIGH_LOW].add(day, checks.high_low_violations(table))
            tallies[VOLUME].add(day, checks.negative_volume(table))
            tallies[PRICES].add(day, checks.non_positive_prices(table))
            if gone := checks.missing_symbols(previous, table):
                missing[day] = gone
            previous = table["symbol"].to_pylist()
            rows += table.num_rows
            halted += pc.sum(table["halted"]).as_py() or 0
            rows_by_session[day] = table.num_rows
            symbols.update(previous)
            last = table
        metadata = {
            "sessions": len(sessions),
            "first_session": sessions[0].isoformat(),
            "last_session": sessions[-1].isoformat(),
            "rows": rows,
            "symbols": len(symbols),
            "halted_rows": halted,
            "source": source.describe(),
            "source_kind": source.kind,
            "source_reason": selected.reason,
            "location": dg.MetadataValue.text(store.uri(bars_prefix(exchange))),
            "duration_seconds": round(time.monotonic() - started, 3),
            "preview": dg.MetadataValue.md(markdown_table(last.slice(0, 5).to_pylist() if last else [])),
            "dagster/row_count": rows,
        }
        if len(rows_by_session) <= SESSIONS_LISTED:
            metadata["rows_by_session"] = dg.MetadataValue.json(rows_by_session)
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[*(rule_result(n, t) for n, t in tallies.items()), gap_result(missing, not_compared)],
        )

    return daily_bars
