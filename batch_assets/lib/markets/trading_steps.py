"""The steps of a trading session over the file store, one per asset, Dagster-free.

target -> orders (placed through the broker) -> fills (from the broker) -> positions -> PnL.
Every step reads its inputs from the store and returns rows; the caller publishes them. A session
builds on the previous session's positions file (positions and cash), so sessions are booked in
order: a step that needs the previous session's book and does not find it stops with
``MissingInputError`` instead of assuming a flat book (which would buy everything again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.broker import FINAL_STATUSES, Broker, Order
from batch_assets.lib.markets.calendars import as_date, previous_session
from batch_assets.lib.markets.pnl import CASH, SessionBook, book_session, pnl_rows, strategy_equity
from batch_assets.lib.markets.portfolio import Holding, Placement, orders_for, place_orders, target_rows
from batch_assets.lib.markets.strategies import STRATEGIES, get_strategy
from batch_assets.lib.markets.venues import get_venue
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import FileStore


class MissingInputError(RuntimeError):
    """An input file the step needs is not in the store; the message names it and what writes it."""


@dataclass(frozen=True)
class Book:
    """A market's books: which market, in what currency, with how much capital per strategy."""

    exchange: str
    currency: str
    capital: float
    strategies: tuple[str, ...] = tuple(STRATEGIES)


def market_book(market: str, settings: Settings) -> Book:
    venue = get_venue(market)
    capital = settings.trading_capital_krw if venue.currency == "KRW" else settings.trading_capital_usd
    return Book(market, venue.currency, capital)


def previous_traded_session(market: str, session: date, first: date) -> date | None:
    """The session before ``session``, or None for the first traded session (the book starts flat)."""
    previous = previous_session(market, session)
    return previous if previous is not None and previous >= first else None


def sessions_for_check(
    partition_keys: list[str] | None, tagged: str | None, store: FileStore, prefix: str
) -> list[date]:
    """The sessions a check judges: its run's partitions, else the session the run's tag names
    (a checks-only run has no partition), else the latest session written under ``prefix``."""
    if partition_keys:
        return sorted(as_date(k) for k in partition_keys)
    if tagged:
        return [as_date(tagged)]
    names = [info.key.rsplit("/", 1)[-1].removesuffix(".parquet") for info in store.list(prefix)]
    return [as_date(max(names))] if names else []


def require_rows(store: FileStore, key: str, writer: str) -> list[dict]:
    rows = tl.read_rows(store, key)
    if rows is None:
        raise MissingInputError(f"{key} is not in the store ({writer})")
    return rows


def previous_positions(store: FileStore, book: Book, previous: date | None) -> list[dict] | None:
    """The positions file of ``previous`` (None before the first traded session: a flat book)."""
    if previous is None:
        return None
    return require_rows(
        store,
        tl.positions_key(book.exchange, previous),
        f"trading/{book.exchange}/positions: book the sessions in order, e.g. record_{book.exchange}_daily_pnl_job",
    )


def build_target(store: FileStore, book: Book, strategy_name: str, session: date, previous: date | None) -> list[dict]:
    """A strategy's target portfolio for ``session`` from the previous session's factors, bars and book."""
    strategy = get_strategy(strategy_name)
    positions = previous_positions(store, book, previous)
    if previous is None:
        factors, bars = [], {}
    else:
        factors = require_rows(store, tl.factors_key(book.exchange, previous), f"factors/{book.exchange}/daily")
        bar_rows = require_rows(store, tl.bars_key(book.exchange, previous), f"market/{book.exchange}/daily_bars")
        bars = {b["symbol"]: b for b in bar_rows}
    holdings = [
        Holding(p["symbol"], p["quantity"], p["price"])
        for p in positions or []
        if p["strategy"] == strategy_name and p["kind"] != CASH
    ]
    equity = strategy_equity(positions, strategy_name, book.capital)
    return target_rows(strategy, session, previous, strategy.signals(factors), bars, holdings, equity)


def wanted_orders(store: FileStore, book: Book, session: date, previous: date | None) -> tuple[list[Order], list[str]]:
    """The orders the written targets of ``session`` call for, and the strategies without a target yet."""
    positions = previous_positions(store, book, previous)
    holdings = {(p["strategy"], p["symbol"]): p["quantity"] for p in positions or [] if p["kind"] != CASH}
    targets, missing = [], []
    for name in book.strategies:
        rows = tl.read_rows(store, tl.target_key(book.exchange, name, session))
        if rows is None:
            missing.append(name)
        else:
            targets.extend(rows)
    return orders_for(book.exchange, session, targets, holdings), missing


def read_ledger(store: FileStore, book: Book, session: date) -> list[Order]:
    return [Order.from_row(r) for r in tl.read_rows(store, tl.orders_key(book.exchange, session)) or []]


def place_session_orders(
    store: FileStore, broker: Broker, book: Book, session: date, previous: date | None
) -> tuple[Placement, list[str]]:
    """Place what the targets call for and is not in the session's ledger yet; the new ledger."""
    wanted, missing = wanted_orders(store, book, session, previous)
    return place_orders(broker, wanted, read_ledger(store, book, session)), missing


def record_fills(broker: Broker, book: Book, session: date) -> list[dict]:
    """Every order's outcome as the broker reports it now (rows of ``FILL_SCHEMA``)."""
    return sorted(broker.executions(book.exchange, session), key=lambda r: (r["strategy"], r["symbol"], r["leg"]))


def open_order_ids(fill_rows: list[dict]) -> list[str]:
    return sorted({r["client_order_id"] for r in fill_rows if r["status"] not in FINAL_STATUSES})


def book_positions(
    store: FileStore, book: Book, session: date, previous: date | None, *, require_close: bool
) -> SessionBook:
    """The book after ``session``: the previous positions, the session's fills, marked at its closes.

    ``require_close``: PnL needs the session's closes; positions alone may be marked at the
    previous close (``price_source='previous_close'`` kept from before) while the bars are not in.
    """
    positions = previous_positions(store, book, previous)
    fills = require_rows(store, tl.fills_key(book.exchange, session), f"trading/{book.exchange}/fills")
    bars = tl.read_rows(store, tl.bars_key(book.exchange, session))
    if bars is None and require_close:
        raise MissingInputError(
            f"{tl.bars_key(book.exchange, session)} is not in the store (market/{book.exchange}/daily_bars): "
            "PnL is marked at the session's close"
        )
    closes = {b["symbol"]: (None if b.get("halted") else b.get("close")) for b in bars or []}
    return book_session(session, book.strategies, book.capital, positions, fills, closes)


def session_pnl(store: FileStore, book: Book, session: date, previous: date | None) -> list[dict]:
    """The session's PnL rows: the book marked at the close, with the previous PnL's peaks."""
    booked = book_positions(store, book, session, previous, require_close=True)
    previous_pnl = None
    if previous is not None:
        previous_pnl = require_rows(
            store, tl.pnl_key(book.exchange, previous), f"pnl/{book.exchange}/daily: book the sessions in order"
        )
    return pnl_rows(booked, book.currency, previous_pnl)
