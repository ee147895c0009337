"""Orders, the broker interface, and the deterministic paper broker.

A client order id is derived from (market, session, strategy, symbol), so the same decision
always carries the same id, and a broker refuses an id it has seen: a rerun can never place a
second order for a strategy, symbol and trading day. Real brokers (KIS, Alpaca, IBKR…) enforce
unique client order ids themselves; an adapter maps their "duplicate" error to
``DuplicateClientOrderError``.

The paper broker fills from the session's daily bar (``market/{ex}/daily_bars/{session}.parquet``):

- ``market`` orders fill at the session's close (``fill_at="close"``, the default: like a
  market-on-close order, valid whenever during the session it was placed, e.g. at 09:10 KST after
  the open) or at its open (``fill_at="open"``: only honest for orders placed before the open);
- ``breakout`` orders (buy only) trigger at ``open + trigger_offset``: if the session's high reaches
  the trigger, the entry fills at the trigger and the exit leg sells the same quantity at the close;
  otherwise the order ends ``not_triggered``;
- at most ``max_volume_share`` of the session's volume fills (the rest expires: ``partially_filled``);
- no bar, a halted symbol or a missing price: the order expires with the reason;
- until the session's bar exists, every order of the session is ``open``;
- a fee of ``fee_bps`` basis points of the traded value is charged on every fill.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import date
from typing import Literal

from batch_assets.lib.markets.calendars import as_date
from batch_assets.lib.markets.trading_layout import bars_key, read_rows
from batch_assets.lib.storage import FileStore

OrderType = Literal["market", "breakout"]
# 'not_triggered': a breakout whose trigger was not reached, the expected outcome on most days.
FINAL_STATUSES = frozenset({"filled", "partially_filled", "expired", "rejected", "not_triggered"})
SETTLED_STATUSES = frozenset({"filled", "not_triggered"})  # nothing to follow up


def client_order_id(exchange: str, session: date | str, strategy: str, symbol: str) -> str:
    """The one id of the order a strategy places for a symbol on a trading day."""
    digest = hashlib.sha256(f"{exchange}|{session}|{strategy}|{symbol}".encode()).hexdigest()
    return f"bt-{digest[:24]}"


@dataclass(frozen=True)
class Order:
    client_order_id: str
    exchange: str
    session: date
    strategy: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: int
    order_type: OrderType = "market"
    trigger_offset: float = 0.0

    @classmethod
    def new(
        cls,
        exchange: str,
        session: date,
        strategy: str,
        symbol: str,
        side: Literal["buy", "sell"],
        quantity: int,
        order_type: OrderType = "market",
        trigger_offset: float = 0.0,
    ) -> Order:
        if quantity <= 0:
            raise ValueError(f"order quantity must be positive, got {quantity} for {symbol}")
        coid = client_order_id(exchange, session, strategy, symbol)
        return cls(coid, exchange, session, strategy, symbol, side, quantity, order_type, trigger_offset)

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> Order:
        return cls(**{**row, "session": as_date(row["session"]), "quantity": int(row["quantity"])})


class DuplicateClientOrderError(Exception):
    """The broker already has an order with this client order id; nothing new was placed."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"client order id {client_order_id} was already used; the order was not placed again")
        self.client_order_id = client_order_id


class Broker(ABC):
    """Where orders go and where their fills come from."""

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Place ``order``; raise DuplicateClientOrderError if its client order id was used before."""

    @abstractmethod
    def orders(self, exchange: str, session: date) -> list[Order]:
        """Every order the broker holds for the market's session."""

    @abstractmethod
    def executions(self, exchange: str, session: date) -> list[dict]:
        """Every order's outcome so far: one row per fill leg (``trading_layout.FILL_SCHEMA``),
        or one row with quantity 0 for an order still ``open`` or ``expired``."""

    @abstractmethod
    def report_token(self, exchange: str, session: date) -> str:
        """A short string that changes whenever ``executions`` may have changed (cheap to compute)."""


class PaperBroker(Broker):
    """A deterministic broker over the file store: its book is one JSON file per order."""

    def __init__(
        self,
        store: FileStore,
        *,
        fill_at: Literal["open", "close"] = "close",
        fee_bps: float = 0.0,
        max_volume_share: float | None = None,
        root: str = "broker/paper",
    ) -> None:
        if fill_at not in ("open", "close"):
            raise ValueError(f"fill_at must be 'open' or 'close', got {fill_at!r}")
        self.store = store
        self.fill_at = fill_at
        self.fee_bps = fee_bps
        self.max_volume_share = max_volume_share
        self.root = root

    def _book_prefix(self, exchange: str, session: date) -> str:
        return f"{self.root}/{exchange}/{session}/"

    def submit(self, order: Order) -> None:
        key = f"{self._book_prefix(order.exchange, order.session)}{order.client_order_id}.json"
        # Check-then-write: two runs placing the same order at the same instant could both pass
        # the check. The orders assets run in the 'broker_orders' pool (limit 1) for that reason;
        # a real broker checks uniqueness on its side.
        if self.store.stat(key) is not None:
            raise DuplicateClientOrderError(order.client_order_id)
        with self.store.publish(key) as path:
            path.write_text(json.dumps(order.to_row(), default=str, sort_keys=True), encoding="utf-8")

    def orders(self, exchange: str, session: date) -> list[Order]:
        return [
            Order.from_row(json.loads(self.store.read_bytes(info.key)))
            for info in self.store.list(self._book_prefix(exchange, session))
            if info.key.endswith(".json")
        ]

    def report_token(self, exchange: str, session: date) -> str:
        book = [f"{i.key}@{i.version}" for i in self.store.list(self._book_prefix(exchange, session))]
        bar = self.store.stat(bars_key(exchange, session))
        text = "|".join([*book, f"bars@{bar.version if bar else '-'}", self.fill_at, str(self.fee_bps)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def executions(self, exchange: str, session: date) -> list[dict]:
        orders = sorted(self.orders(exchange, session), key=lambda o: o.client_order_id)
        bars = read_rows(self.store, bars_key(exchange, session))
        by_symbol = {b["symbol"]: b for b in bars} if bars is not None else None
        rows: list[dict] = []
        for order in orders:
            rows.extend(self._execute(order, by_symbol))
        return rows

    def _execute(self, order: Order, bars: dict[str, dict] | None) -> list[dict]:
        def row(leg: str, side: str, quantity: int, price: float | None, status: str, reason: str = "") -> dict:
            fee = quantity * price * self.fee_bps / 10_000 if quantity and price else 0.0
            return {
                "client_order_id": order.client_order_id,
                "session": order.session,
                "strategy": order.strategy,
                "symbol": order.symbol,
                "side": side,
                "leg": leg,
                "ordered_quantity": order.quantity,
                "quantity": quantity,
                "price": price,
                "fee": fee,
                "status": status,
                "reason": reason,
            }

        if bars is None:
            return [row("entry", order.side, 0, None, "open", "the session's bar is not in yet")]
        bar = bars.get(order.symbol)
        if bar is None:
            return [row("entry", order.side, 0, None, "expired", "no bar for the symbol in the session")]
        if bar.get("halted"):
            return [row("entry", order.side, 0, None, "expired", "trading in the symbol was halted")]
        quantity = order.quantity
        if self.max_volume_share is not None:
            quantity = min(quantity, math.floor((bar.get("volume") or 0) * self.max_volume_share))
        if quantity <= 0:
            return [row("entry", order.side, 0, None, "expired", "no volume to fill against")]
        status = "filled" if quantity == order.quantity else "partially_filled"
        short = "" if status == "filled" else f"{order.quantity - quantity} over the volume cap expired"

        if order.order_type == "market":
            price = bar.get(self.fill_at)
            if not _positive(price):
                return [row("entry", order.side, 0, None, "expired", f"no {self.fill_at} price")]
            return [row("entry", order.side, quantity, float(price), status, short)]

        if order.order_type == "breakout":
            if order.side != "buy":
                return [row("entry", order.side, 0, None, "rejected", "breakout orders buy")]
            open_, high, close = bar.get("open"), bar.get("high"), bar.get("close")
            if not (_positive(open_) and _positive(high) and _positive(close)):
                return [row("entry", "buy", 0, None, "expired", "no open, high or close price")]
            trigger = open_ + order.trigger_offset
            if high < trigger:
                return [row("entry", "buy", 0, None, "not_triggered", f"high {high} < trigger {trigger}")]
            return [
                row("entry", "buy", quantity, float(max(open_, trigger)), status, short),
                row("exit", "sell", quantity, float(close), status, "day trade closed at the close"),
            ]
        return [row("entry", order.side, 0, None, "rejected", f"unknown order type {order.order_type!r}")]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0
