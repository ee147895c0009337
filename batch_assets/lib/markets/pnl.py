"""Booking a session: fills onto positions, positions marked at the close, PnL per strategy.

Conventions (all amounts in the market's currency: KRW for KRX, USD for the US; markets are never
summed together):

- the book of a strategy is its positions plus one cash line (``kind='cash'``), so the previous
  session's positions file alone says what a strategy holds and what it is worth;
- average cost: a buy moves it to ``(q0*a0 + q*p) / (q0 + q)``; a sell leaves it; fees are not in it;
- realized PnL of a session = sum over sells of ``q * (p - average cost)`` minus all fees of the session;
- unrealized PnL = sum over positions of ``quantity * (mark - average cost)``, marked at the session's
  close (a halted or missing symbol keeps its previous mark);
- cash = previous cash - bought value + sold value - fees (capital on the first session);
- equity = cash + market value; daily PnL = equity - previous equity, which equals realized PnL +
  unrealized PnL - previous unrealized PnL;
- peak equity = max(previous peak, equity); drawdown = (peak - equity) / peak;
- gross exposure = market value / equity; max weight = the largest position's value / equity;
- turnover = traded value / previous equity.
Long only: a sell larger than the position is an error, never a short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from batch_assets.lib.markets.trading_layout import TOTAL

LEG_ORDER = {"entry": 0, "exit": 1}
CASH = "cash"
POSITION = "position"


class BookingError(ValueError):
    """Fills that cannot apply to the positions they are booked on."""


@dataclass
class Lot:
    quantity: int = 0
    average_cost: float = 0.0
    price: float = 0.0  # last mark
    price_source: str = ""


@dataclass
class StrategyBook:
    cash: float
    previous_equity: float
    previous_unrealized: float
    lots: dict[str, Lot] = field(default_factory=dict)
    realized: float = 0.0
    fees: float = 0.0
    traded_value: float = 0.0
    fill_count: int = 0

    def open_lots(self) -> dict[str, Lot]:
        return {s: lot for s, lot in sorted(self.lots.items()) if lot.quantity > 0}

    @property
    def market_value(self) -> float:
        return sum(lot.quantity * lot.price for lot in self.open_lots().values())

    @property
    def unrealized(self) -> float:
        return sum(lot.quantity * (lot.price - lot.average_cost) for lot in self.open_lots().values())


@dataclass
class SessionBook:
    session: date
    capital: float
    books: dict[str, StrategyBook]

    def position_rows(self) -> list[dict]:
        """The positions file: every open position, then each strategy's cash line."""
        rows = []
        for name, book in self.books.items():
            for symbol, lot in book.open_lots().items():
                rows.append(
                    {
                        "strategy": name,
                        "session": self.session,
                        "kind": POSITION,
                        "symbol": symbol,
                        "quantity": lot.quantity,
                        "average_cost": lot.average_cost,
                        "price": lot.price,
                        "price_source": lot.price_source,
                        "market_value": lot.quantity * lot.price,
                        "unrealized_pnl": lot.quantity * (lot.price - lot.average_cost),
                    }
                )
            rows.append(
                {
                    "strategy": name,
                    "session": self.session,
                    "kind": CASH,
                    "symbol": "",
                    "quantity": 0,
                    "average_cost": 0.0,
                    "price": 1.0,
                    "price_source": CASH,
                    "market_value": book.cash,
                    "unrealized_pnl": 0.0,
                }
            )
        return rows


def strategy_equity(position_rows: Iterable[dict] | None, strategy: str, capital: float) -> float:
    """A strategy's equity (cash + positions) in a positions file; ``capital`` before the first session."""
    if position_rows is None:
        return capital
    return sum(r["market_value"] for r in position_rows if r["strategy"] == strategy)


def book_session(
    session: date,
    strategies: Iterable[str],
    capital: float,
    previous_positions: Iterable[dict] | None,
    fills: Iterable[dict],
    closes: dict[str, float | None],
) -> SessionBook:
    """Apply the session's fills to the previous positions and mark them at the session's closes.

    ``previous_positions``: the previous session's positions file (None on the first session: every
    strategy starts with ``capital`` in cash). ``fills``: the session's fill rows; only rows with a
    positive quantity move positions. ``closes``: the session's close per symbol (None: keep the mark).
    """
    books = {name: StrategyBook(cash=capital, previous_equity=capital, previous_unrealized=0.0) for name in strategies}
    for row in previous_positions or []:
        book = _book_of(books, row["strategy"])
        if row["kind"] == CASH:
            book.cash = row["market_value"]
        else:
            book.lots[row["symbol"]] = Lot(row["quantity"], row["average_cost"], row["price"], "previous_close")
    for book in books.values():
        book.previous_equity = book.cash + book.market_value
        book.previous_unrealized = book.unrealized

    moving = [f for f in fills if (f.get("quantity") or 0) > 0]
    for f in sorted(moving, key=lambda f: (f["strategy"], f["symbol"], LEG_ORDER.get(f["leg"], 2), f["side"])):
        _apply_fill(_book_of(books, f["strategy"]), f)

    for book in books.values():
        for symbol, lot in book.lots.items():
            close = closes.get(symbol)
            if isinstance(close, int | float) and close > 0:
                lot.price, lot.price_source = float(close), "close"
    return SessionBook(session, capital, books)


def _book_of(books: dict[str, StrategyBook], name: str) -> StrategyBook:
    try:
        return books[name]
    except KeyError:
        raise BookingError(f"strategy {name!r} is not one of the booked strategies {sorted(books)}") from None


def _apply_fill(book: StrategyBook, f: dict) -> None:
    q, p, fee = int(f["quantity"]), float(f["price"]), float(f.get("fee") or 0.0)
    lot = book.lots.setdefault(f["symbol"], Lot())
    if f["side"] == "buy":
        lot.average_cost = (lot.quantity * lot.average_cost + q * p) / (lot.quantity + q)
        if lot.quantity == 0:
            lot.price, lot.price_source = p, "fill"
        lot.quantity += q
        book.cash -= q * p
    elif f["side"] == "sell":
        if q > lot.quantity:
            raise BookingError(
                f"{f['strategy']} sells {q} {f['symbol']} but holds {lot.quantity} ({f['client_order_id']})"
            )
        book.realized += q * (p - lot.average_cost)
        lot.quantity -= q
        if lot.quantity == 0:
            lot.average_cost = 0.0
        book.cash += q * p
    else:
        raise BookingError(f"unknown side {f['side']!r} in fill {f['client_order_id']}")
    book.cash -= fee
    book.fees += fee
    book.realized -= fee
    book.traded_value += q * p
    book.fill_count += 1


def pnl_rows(booked: SessionBook, currency: str, previous_pnl: Iterable[dict] | None) -> list[dict]:
    """The session's PnL: one row per strategy, then the market's TOTAL row.

    ``previous_pnl``: the previous session's PnL file, for the peak equities (None on the first session).
    """
    prior = {r["strategy"]: r for r in previous_pnl or []}
    rows = []
    for name, book in booked.books.items():
        values = {s: lot.quantity * lot.price for s, lot in book.open_lots().items()}
        rows.append(
            _row(
                booked,
                name,
                currency,
                booked.capital,
                book.cash,
                values,
                book.realized,
                book.unrealized,
                book.previous_equity,
                book.fees,
                prior[name]["peak_equity"] if name in prior else booked.capital,
                book.fill_count,
                book.traded_value,
            )
        )
    values: dict[str, float] = {}
    for book in booked.books.values():  # one symbol held by two strategies is one exposure
        for symbol, lot in book.open_lots().items():
            values[symbol] = values.get(symbol, 0.0) + lot.quantity * lot.price
    capital = booked.capital * len(booked.books)
    rows.append(
        _row(
            booked,
            TOTAL,
            currency,
            capital,
            sum(b.cash for b in booked.books.values()),
            values,
            sum(b.realized for b in booked.books.values()),
            sum(b.unrealized for b in booked.books.values()),
            sum(b.previous_equity for b in booked.books.values()),
            sum(b.fees for b in booked.books.values()),
            prior[TOTAL]["peak_equity"] if TOTAL in prior else capital,
            sum(b.fill_count for b in booked.books.values()),
            sum(b.traded_value for b in booked.books.values()),
        )
    )
    return rows


def _row(
    booked: SessionBook,
    strategy: str,
    currency: str,
    capital: float,
    cash: float,
    values: dict[str, float],
    realized: float,
    unrealized: float,
    previous_equity: float,
    fees: float,
    previous_peak: float,
    fill_count: int,
    traded_value: float,
) -> dict:
    market_value = sum(values.values())
    equity = cash + market_value
    peak = max(previous_peak, equity)
    top_symbol, top_value = max(values.items(), key=lambda kv: (kv[1], kv[0]), default=(None, 0.0))
    return {
        "session": booked.session,
        "strategy": strategy,
        "currency": currency,
        "capital": capital,
        "cash": cash,
        "market_value": market_value,
        "equity": equity,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "daily_pnl": equity - previous_equity,
        "cumulative_pnl": equity - capital,
        "fees": fees,
        "peak_equity": peak,
        "drawdown": (peak - equity) / peak if peak > 0 else 0.0,
        "gross_exposure": market_value / equity if equity > 0 else (float("inf") if market_value else 0.0),
        "max_weight": top_value / equity if equity > 0 else 0.0,
        "max_weight_symbol": top_symbol,
        "positions": len(values),
        "fills": fill_count,
        "turnover": traded_value / previous_equity if previous_equity > 0 else 0.0,
    }
