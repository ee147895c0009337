"""Daily factors of one exchange: momentum, moving averages, RSI and volatility from stored bars."""

from datetime import date

import dagster as dg

from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.markets.calendars import get_exchange
from batch_assets.lib.markets.factors import LOOKBACK_SESSIONS, MissingBarsError, compute_factor_sessions
from batch_assets.lib.markets.layout import factors_prefix
from batch_assets.lib.markets.preview import markdown_table

OWNERS = ["team:markets"]
GROUP = "factors"
HISTORY_COMPLETE = "bar_history_complete"
SESSIONS_LISTED = 62


def factors_asset_key(exchange: str) -> dg.AssetKey:
    return dg.AssetKey(["factors", exchange, "daily"])


def build_factor_asset(
    exchange: str,
    partitions_def: dg.PartitionsDefinition,
    first_session: str,
    memory_limit: str = "512MB",
    threads: int = 2,
) -> dg.AssetsDefinition:
    """``factors/<exchange>/daily`` from ``market/<exchange>/daily_bars`` and its 250 earlier sessions."""
    ex = get_exchange(exchange)
    key = factors_asset_key(exchange)
    bars = dg.AssetKey(["market", exchange, "daily_bars"])
    start = date.fromisoformat(first_session)

    @dg.asset(
        key=key,
        # A session's factors read its bars and the LOOKBACK_SESSIONS sessions before it.
        deps=[dg.AssetDep(bars, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-LOOKBACK_SESSIONS))],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            dg.AssetCheckSpec(
                HISTORY_COMPLETE,
                asset=key,
                description=f"Bars of all {LOOKBACK_SESSIONS} sessions before each computed session were in the store.",
            )
        ],
        group_name=GROUP,
        owners=OWNERS,
        kinds={"duckdb", "parquet"},
        tags={"exchange": exchange},
        description=f"{ex.name} daily factors of every symbol (momentum, SMA, EMA, RSI, volatility), "
        "one Parquet file per session.",
    )
    def daily_factors(context: dg.AssetExecutionContext, file_store: FileStoreResource) -> dg.MaterializeResult:
        sessions = [date.fromisoformat(k) for k in context.partition_keys]
        store = file_store.store()
        try:
            run = compute_factor_sessions(
                store,
                exchange,
                sessions,
                first_available=start,
                memory_limit=memory_limit,
                threads=threads,
                log=context.log.info,
            )
        except MissingBarsError as error:
            raise dg.Failure(description=str(error)) from error
        metadata = {
            "sessions": len(run.sessions),
            "first_session": sessions[0].isoformat(),
            "last_session": sessions[-1].isoformat(),
            "rows": run.rows,
            "symbols": len(run.symbols),
            "lookback_sessions": LOOKBACK_SESSIONS,
            "history_sessions_missing": len(run.history_missing),
            "null_counts": dg.MetadataValue.json(run.null_counts),
            "location": dg.MetadataValue.text(store.uri(factors_prefix(exchange))),
            "duration_seconds": round(run.seconds, 3),
            "preview": dg.MetadataValue.md(markdown_table(run.preview)),
            "dagster/row_count": run.rows,
        }
        if len(run.rows_by_session) <= SESSIONS_LISTED:
            metadata["rows_by_session"] = dg.MetadataValue.json(run.rows_by_session)
        missing = [d.isoformat() for d in run.history_missing]
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name=HISTORY_COMPLETE,
                    passed=not missing,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"missing_sessions": len(missing), "missing": dg.MetadataValue.json(missing[:50])},
                    description=(
                        f"no bars for {len(missing)} earlier session(s) ({', '.join(missing[:5])}"
                        f"{' …' if len(missing) > 5 else ''}): windows over them reach further back"
                    )
                    if missing
                    else None,
                )
            ],
        )

    return daily_factors
