"""One market's trading sessions: target portfolios -> orders -> fills -> positions, per session.

They are one subsettable multi-asset because each session builds on the previous session's
positions: a run over a range of sessions (a backfill, a catch-up) does every selected step of a
session before the next session, which separate assets could not guarantee (Dagster refuses the
cycle target -> orders -> fills -> positions -> next session's target as declared dependencies).
Scheduled runs select only their steps, e.g. one strategy's target and the orders.
"""

from datetime import date

import dagster as dg

from batch_assets.defs.resources import FileStoreResource
from batch_assets.defs.trading.partitions import PREVIOUS_SESSION
from batch_assets.defs.trading.resources import BrokerResource
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.calendars import as_date
from batch_assets.lib.markets.pnl import CASH
from batch_assets.lib.markets.strategies import STRATEGIES
from batch_assets.lib.markets.trading_steps import (
    book_positions,
    build_target,
    market_book,
    open_order_ids,
    place_session_orders,
    previous_traded_session,
    record_fills,
)
from batch_assets.lib.markets.venues import first_session_from, get_venue
from batch_assets.lib.settings import Settings

OWNERS = ["team:trading"]
GROUP = "trading"


def target_key(market: str, strategy: str) -> dg.AssetKey:
    return dg.AssetKey(["trading", market, "target_portfolio", strategy])


def step_key(market: str, step: str) -> dg.AssetKey:
    return dg.AssetKey(["trading", market, step])


def bars_asset(market: str) -> dg.AssetKey:
    return dg.AssetKey(["market", market, "daily_bars"])


def factors_asset(market: str) -> dg.AssetKey:
    return dg.AssetKey(["factors", market, "daily"])


def _preview(rows: list[dict], columns: list[str], limit: int = 10) -> str:
    if not rows:
        return "_no rows_"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more_")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def build_trading_assets(market: str, partitions_def: dg.PartitionsDefinition, settings: Settings) -> list:
    """The market's trading multi-asset (targets of every strategy, orders, fills, positions)."""
    venue = get_venue(market)
    book = market_book(market, settings)
    first = first_session_from(market, settings.trading_start)
    bars, factors = bars_asset(market), factors_asset(market)
    targets = {name: target_key(market, name) for name in STRATEGIES}
    orders, fills, positions = (step_key(market, s) for s in ("orders", "fills", "positions"))
    tags = {"market": market}
    specs = [
        *(
            dg.AssetSpec(
                key,
                deps=[
                    dg.AssetDep(factors, partition_mapping=PREVIOUS_SESSION),
                    dg.AssetDep(bars, partition_mapping=PREVIOUS_SESSION),
                ],
                description=f"{market.upper()} {name} target portfolio per session: {STRATEGIES[name].description}",
                group_name=GROUP,
                kinds={"parquet"},
                owners=OWNERS,
                tags={**tags, "strategy": name},
                skippable=True,
            )
            for name, key in targets.items()
        ),
        dg.AssetSpec(
            orders,
            deps=list(targets.values()),
            description=f"{market.upper()} order ledger per session: each (strategy, symbol) difference between "
            "target and holding, placed once through the broker under a deterministic client order id.",
            group_name=GROUP,
            kinds={"parquet"},
            owners=OWNERS,
            tags=tags,
            skippable=True,
        ),
        dg.AssetSpec(
            fills,
            deps=[orders, bars],
            description=f"{market.upper()} fills per session as the broker reports them, one row per fill leg "
            f"(open, filled, partially filled, expired), in {venue.currency}.",
            group_name=GROUP,
            kinds={"parquet"},
            owners=OWNERS,
            tags=tags,
            skippable=True,
        ),
        dg.AssetSpec(
            positions,
            # No declared dependency on its own previous session, though the book carries over: the
            # backfill daemon would split a range around it, and a range run books in order anyway.
            deps=[fills, bars],
            description=f"{market.upper()} positions and cash of every strategy after each session, "
            f"marked at the session's close ({venue.currency}).",
            group_name=GROUP,
            kinds={"parquet"},
            owners=OWNERS,
            tags=tags,
            skippable=True,
        ),
    ]

    @dg.multi_asset(
        name=f"trade_{market}_sessions",
        specs=specs,
        partitions_def=partitions_def,
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Placing orders is check-then-write at the paper broker: one placing step at a time.
        pool="broker_orders",
        op_tags={"market": market},
    )
    def trade_sessions(context: dg.AssetExecutionContext, file_store: FileStoreResource, broker: BrokerResource):
        store = file_store.store()
        brk = broker.broker(store)
        selected = context.selected_asset_keys
        sessions = sorted(as_date(k) for k in context.partition_keys)
        meta: dict[dg.AssetKey, dict] = {k: {} for k in selected}
        for session in sessions:
            previous = previous_traded_session(market, session, first)
            for name, key in targets.items():
                if key in selected:
                    rows = build_target(store, book, name, session, previous)
                    tl.write_rows(store, tl.target_key(market, name, session), rows, tl.TARGET_SCHEMA)
                    _add(meta[key], rows=len(rows), buys=sum(1 for r in rows if r["target_quantity"] > 0))
                    meta[key]["rebalance"] = bool(rows[0]["rebalance"]) if rows else None
                    meta[key]["preview"] = (
                        rows,
                        ["symbol", "score", "weight", "reference_price", "target_quantity", "rebalance"],
                    )
            if orders in selected:
                placement, missing = place_session_orders(store, brk, book, session, previous)
                ledger = [o.to_row() for o in placement.ledger]
                tl.write_rows(store, tl.orders_key(market, session), ledger, tl.ORDER_SCHEMA)
                _add(
                    meta[orders],
                    orders_in_ledger=len(ledger),
                    placed=len(placement.placed),
                    already_in_ledger=len(placement.already_in_ledger),
                    refused_as_duplicate=len(placement.refused_as_duplicate),
                    not_placed_strategy_decided=len(placement.not_placed),
                )
                meta[orders]["strategies_without_target"] = missing
                meta[orders]["preview"] = (ledger, ["strategy", "symbol", "side", "quantity", "order_type"])
                if placement.placed:
                    context.log.info(f"{market} {session}: placed {len(placement.placed)} order(s)")
            if fills in selected:
                rows = record_fills(brk, book, session)
                tl.write_rows(store, tl.fills_key(market, session), rows, tl.FILL_SCHEMA)
                statuses: dict[str, int] = {}
                for r in rows:
                    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
                _add(
                    meta[fills],
                    fill_legs=sum(1 for r in rows if r["quantity"] > 0),
                    open_orders=len(open_order_ids(rows)),
                )
                meta[fills]["statuses"] = statuses
                meta[fills]["preview"] = (rows, ["strategy", "symbol", "side", "leg", "quantity", "price", "status"])
            if positions in selected:
                booked = book_positions(store, book, session, previous, require_close=False)
                rows = booked.position_rows()
                tl.write_rows(store, tl.positions_key(market, session), rows, tl.POSITION_SCHEMA)
                held = [r for r in rows if r["kind"] != CASH]
                meta[positions].update(
                    positions=len(held),
                    market_value=sum(r["market_value"] for r in held),
                    cash=sum(r["market_value"] for r in rows if r["kind"] == CASH),
                    preview=(held, ["strategy", "symbol", "quantity", "average_cost", "price", "unrealized_pnl"]),
                )
        last = sessions[-1]
        locations = {
            **{key: tl.target_key(market, name, last) for name, key in targets.items()},
            orders: tl.orders_key(market, last),
            fills: tl.fills_key(market, last),
            positions: tl.positions_key(market, last),
        }
        for key in [*targets.values(), orders, fills, positions]:
            if key in selected:
                yield dg.MaterializeResult(
                    asset_key=key, metadata=_metadata(meta[key], sessions, store.uri(locations[key]), venue.currency)
                )

    return [trade_sessions]


def _add(meta: dict, **counts: int) -> None:
    for name, value in counts.items():
        meta[name] = meta.get(name, 0) + value


def _metadata(meta: dict, sessions: list[date], uri: str, currency: str) -> dict:
    out: dict[str, object] = {"sessions": len(sessions), "last_session": str(sessions[-1]), "currency": currency}
    for name, value in meta.items():
        if name == "preview":
            rows, columns = value
            out["preview"] = dg.MetadataValue.md(_preview(rows, columns))
        elif isinstance(value, dict | list):
            out[name] = dg.MetadataValue.json(value)
        elif value is not None:
            out[name] = value
    out["location"] = dg.MetadataValue.url(uri) if uri.startswith("s3") else dg.MetadataValue.path(uri)
    return out
