"""Daily PnL per market (in its own currency) and the monthly strategy-governance review."""

from datetime import timedelta

import dagster as dg

from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.calendars import as_date, exchange_sessions
from batch_assets.lib.markets.risk import RiskLimits, governance_review
from batch_assets.lib.markets.strategies import STRATEGIES
from batch_assets.lib.markets.trading_steps import market_book, previous_traded_session, session_pnl
from batch_assets.lib.markets.venues import first_session_from, get_venue
from batch_assets.lib.settings import Settings

OWNERS = ["team:trading"]
GROUP = "pnl"
GOVERNANCE = dg.AssetKey(["pnl", "strategy_governance"])
GOVERNANCE_TIMEZONE = "Asia/Seoul"  # months as the seed's scheduler counts them
GOVERNANCE_COLUMNS = [
    "market",
    "strategy",
    "currency",
    "monthly_pnl",
    "worst_drawdown",
    "sessions_booked",
    "verdict",
    "reasons",
]
PNL_COLUMNS = ["strategy", "equity", "realized_pnl", "unrealized_pnl", "daily_pnl", "drawdown", "gross_exposure"]


def pnl_key(market: str) -> dg.AssetKey:
    return dg.AssetKey(["pnl", market, "daily"])


def _md(rows: list[dict], columns: list[str]) -> str:
    def cell(value: object) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def build_pnl_asset(market: str, partitions_def: dg.PartitionsDefinition, settings: Settings) -> dg.AssetsDefinition:
    venue = get_venue(market)
    book = market_book(market, settings)
    first = first_session_from(market, settings.trading_start)
    key = pnl_key(market)

    @dg.asset(
        key=key,
        deps=[
            dg.AssetKey(["trading", market, "positions"]),
            dg.AssetKey(["trading", market, "fills"]),
            dg.AssetKey(["market", market, "daily_bars"]),
            # Not its own previous session (see trading/<m>/positions): a range run books in order.
        ],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"parquet"},
        owners=OWNERS,
        tags={"market": market},
        description=f"{market.upper()} daily PnL per strategy and in total, in {venue.currency}: realized, "
        "unrealized at the close, equity, drawdown and exposure.",
    )
    def daily_pnl(context: dg.AssetExecutionContext, file_store: FileStoreResource) -> dg.MaterializeResult:
        store = file_store.store()
        sessions = sorted(as_date(k) for k in context.partition_keys)
        rows: list[dict] = []
        for session in sessions:
            rows = session_pnl(store, book, session, previous_traded_session(market, session, first))
            tl.write_rows(store, tl.pnl_key(market, session), rows, tl.PNL_SCHEMA)
        total = rows[-1]
        uri = store.uri(tl.pnl_key(market, sessions[-1]))
        return dg.MaterializeResult(
            metadata={
                "sessions": len(sessions),
                "last_session": str(sessions[-1]),
                "currency": venue.currency,
                "total_daily_pnl": total["daily_pnl"],
                "total_equity": total["equity"],
                "total_drawdown": total["drawdown"],
                "pnl": dg.MetadataValue.md(_md(rows, PNL_COLUMNS)),
                "location": dg.MetadataValue.url(uri) if uri.startswith("s3") else dg.MetadataValue.path(uri),
                "dagster/row_count": len(rows),
            }
        )

    return daily_pnl


def governance_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    start = as_date(settings.trading_start).replace(day=1)
    return dg.MonthlyPartitionsDefinition(start_date=start.isoformat(), timezone=GOVERNANCE_TIMEZONE)


def build_governance_asset(markets: tuple[str, ...], settings: Settings, limits: RiskLimits) -> dg.AssetsDefinition:
    firsts = {m: first_session_from(m, settings.trading_start) for m in markets}

    # Dagster maps time windows only within one timezone: a Seoul month maps to the KRX sessions it
    # holds, but not to New York sessions, so those are declared as a dependency on all partitions.
    deps = [
        dg.AssetDep(pnl_key(m))
        if get_venue(m).timezone == GOVERNANCE_TIMEZONE
        else dg.AssetDep(pnl_key(m), partition_mapping=dg.AllPartitionMapping())
        for m in markets
    ]

    @dg.asset(
        key=GOVERNANCE,
        deps=deps,
        partitions_def=governance_partitions(settings),
        group_name=GROUP,
        kinds={"parquet"},
        owners=OWNERS,
        description="Monthly governance review of every strategy in every market: the month's PnL, worst "
        "drawdown and booked sessions, with a verdict (ok, review, suspend).",
        check_specs=[
            dg.AssetCheckSpec(
                "strategies_within_mandate",
                asset=GOVERNANCE,
                description=f"No strategy lost more than {limits.monthly_loss.warn:.0%} of its capital in the "
                f"month or fell {limits.drawdown.warn:.0%} from its peak (WARN: review; ERROR past "
                f"{limits.monthly_loss.error:.0%} / {limits.drawdown.error:.0%}: suspend), and every session "
                "was booked.",
            )
        ],
    )
    def strategy_governance(context: dg.AssetExecutionContext, file_store: FileStoreResource):
        store = file_store.store()
        month_start = as_date(context.partition_key)
        month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        month = f"{month_start:%Y-%m}"
        rows: list[dict] = []
        for market in markets:
            expected = [s for s in exchange_sessions(market, month_start, month_end) if s >= firsts[market]]
            booked = [r for s in expected for r in tl.read_rows(store, tl.pnl_key(market, s)) or []]
            rows += governance_review(month, market, expected, booked, list(STRATEGIES), limits)
        tl.write_rows(store, tl.governance_key(month), rows, tl.GOVERNANCE_SCHEMA)
        suspend = [f"{r['market']}:{r['strategy']}" for r in rows if r["verdict"] == "suspend"]
        review = [f"{r['market']}:{r['strategy']}" for r in rows if r["verdict"] == "review"]
        yield dg.MaterializeResult(
            metadata={
                "month": month,
                "review": dg.MetadataValue.md(_md(rows, GOVERNANCE_COLUMNS)),
                "location": store.uri(tl.governance_key(month)),
                "dagster/row_count": len(rows),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="strategies_within_mandate",
                    passed=not (suspend or review),
                    severity=dg.AssetCheckSeverity.ERROR if suspend else dg.AssetCheckSeverity.WARN,
                    description=f"{len(suspend)} to suspend, {len(review)} to review" if suspend or review else None,
                    metadata={
                        "suspend": dg.MetadataValue.json(suspend),
                        "review": dg.MetadataValue.json(review),
                        "reasons": dg.MetadataValue.json(
                            {f"{r['market']}:{r['strategy']}": r["reasons"] for r in rows if r["reasons"]}
                        ),
                    },
                )
            ],
        )

    return strategy_governance
