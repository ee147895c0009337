"""From a strategy's signals to its target portfolio, and from the target to the orders.

Sizing: on a rebalance day each pick's target quantity is ``floor(weight * equity / price)``,
where ``equity`` is the strategy's equity at the previous session's close (its capital on the
first session) and ``price`` the previous session's close: both known before the open. Names held
but no longer picked get a target of 0 (sold). On other days the target is what the strategy
holds (no orders). Breakout picks are day trades: the target is the entry, with its trigger
offset ``k * (high - low)`` of the previous session.

Orders are the difference between the target and the holding, one per (strategy, symbol):
a buy for more, a sell for less, none when equal. A symbol the target does not mention is left alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from batch_assets.lib.markets.broker import Broker, DuplicateClientOrderError, Order
from batch_assets.lib.markets.strategies import Signal, Strategy


@dataclass(frozen=True)
class Holding:
    symbol: str
    quantity: int
    price: float  # the last mark (previous session's close)


def target_rows(
    strategy: Strategy,
    session: date,
    previous: date | None,
    signals: Iterable[Signal],
    previous_bars: dict[str, dict],
    holdings: Iterable[Holding],
    equity: float,
) -> list[dict]:
    """The strategy's target portfolio for ``session`` (rows of ``trading_layout.TARGET_SCHEMA``)."""
    held = {h.symbol: h for h in holdings}
    base = {"strategy": strategy.name, "session": session, "order_type": strategy.order_style}
    if not strategy.rebalances_on(session, previous):
        return [
            {
                **base,
                "symbol": h.symbol,
                "score": None,
                "weight": h.quantity * h.price / equity if equity > 0 else 0.0,
                "reference_price": h.price,
                "target_quantity": h.quantity,
                "rebalance": False,
                "order_type": "market",
                "trigger_offset": 0.0,
            }
            for h in sorted(held.values(), key=lambda h: h.symbol)
        ]
    rows = []
    for signal in signals:
        bar = previous_bars.get(signal.symbol)
        price = bar.get("close") if bar else None
        if bar is None or bar.get("halted") or not isinstance(price, int | float) or not price > 0:
            continue  # no tradable reference price: the slot stays in cash
        quantity = math.floor(signal.weight * max(equity, 0.0) / price)
        offset = 0.0
        if strategy.order_style == "breakout":
            high, low = bar.get("high"), bar.get("low")
            offset = strategy.breakout_k * (high - low) if high is not None and low is not None else math.inf
            if not math.isfinite(offset):
                continue
        rows.append(
            {
                **base,
                "symbol": signal.symbol,
                "score": signal.score,
                "weight": signal.weight,
                "reference_price": float(price),
                "target_quantity": quantity,
                "rebalance": True,
                "trigger_offset": offset,
            }
        )
    picked = {r["symbol"] for r in rows}
    for h in sorted(held.values(), key=lambda h: h.symbol):
        if h.symbol not in picked:
            rows.append(
                {
                    **base,
                    "symbol": h.symbol,
                    "score": None,
                    "weight": 0.0,
                    "reference_price": h.price,
                    "target_quantity": 0,
                    "rebalance": True,
                    "order_type": "market",
                    "trigger_offset": 0.0,
                }
            )
    return rows


def orders_for(
    exchange: str, session: date, targets: Iterable[dict], holdings: dict[tuple[str, str], int]
) -> list[Order]:
    """The orders that take each (strategy, symbol) from its holding to its target."""
    orders = []
    for t in sorted(targets, key=lambda t: (t["strategy"], t["symbol"])):
        held = holdings.get((t["strategy"], t["symbol"]), 0)
        if t["order_type"] == "breakout":
            delta, kind = t["target_quantity"], "breakout"  # a day trade: entry now, exit at the close
        else:
            delta, kind = t["target_quantity"] - held, "market"
        if delta == 0:
            continue
        side = "buy" if delta > 0 else "sell"
        orders.append(
            Order.new(exchange, session, t["strategy"], t["symbol"], side, abs(delta), kind, t["trigger_offset"] or 0.0)
        )
    return orders


@dataclass
class Placement:
    """What placing a session's orders did: the ledger afterwards and counts for metadata."""

    ledger: list[Order]
    placed: list[str]
    already_in_ledger: list[str]
    refused_as_duplicate: list[str]
    not_placed: list[str]  # wanted, but its strategy's orders of the session were already decided


def place_orders(broker: Broker, wanted: Iterable[Order], ledger: Iterable[Order]) -> Placement:
    """Send every wanted order the ledger does not hold yet; never send an id twice.

    Idempotent per (strategy, session): the ledger (the session's orders file) is written after
    all of a run's orders were sent, so a strategy found in it has decided its orders for the
    session, and a rerun sends nothing more for it, even if its target changed meanwhile. A run
    that died while sending left no ledger: the rerun sends everything again, the broker refuses
    the ids it already has, and those orders are taken into the ledger as the broker holds them.
    A rerun never cancels or resizes an order already placed.
    """
    book = {o.client_order_id: o for o in ledger}
    decided = {o.strategy for o in book.values()}
    placed, already, refused, not_placed = [], [], [], []
    for order in wanted:
        if order.client_order_id in book:
            already.append(order.client_order_id)
            continue
        if order.strategy in decided:
            not_placed.append(order.client_order_id)
            continue
        try:
            broker.submit(order)
            placed.append(order.client_order_id)
        except DuplicateClientOrderError:
            refused.append(order.client_order_id)
        book[order.client_order_id] = order
    if refused:
        # The broker's copy is the order that was really placed.
        known = {o.client_order_id: o for o in broker.orders(*_market_session(book.values()))}
        book.update({coid: known[coid] for coid in refused if coid in known})
    return Placement(sorted(book.values(), key=lambda o: o.client_order_id), placed, already, refused, not_placed)


def _market_session(orders: Iterable[Order]) -> tuple[str, date]:
    first = next(iter(orders))
    return first.exchange, first.session
