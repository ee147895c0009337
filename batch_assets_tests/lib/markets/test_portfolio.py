"""Signals become targets, targets become orders, and orders reach the broker once."""

from datetime import date

import pytest

from batch_assets.lib.markets.broker import Broker, DuplicateClientOrderError, Order, PaperBroker
from batch_assets.lib.markets.portfolio import Holding, orders_for, place_orders, target_rows
from batch_assets.lib.markets.strategies import STRATEGIES, Signal
from batch_assets.lib.storage import LocalFolderStore

MON, TUE = date(2026, 11, 30), date(2026, 12, 1)  # Tuesday is the first session of December


def bars(**closes: float) -> dict[str, dict]:
    return {s: {"symbol": s, "close": c, "high": c * 1.1, "low": c * 0.9, "halted": False} for s, c in closes.items()}


def test_a_rebalance_sizes_each_pick_from_equity_and_the_previous_close_and_sells_dropped_names() -> None:
    """floor(0.1 * 1,000,000 / 30,000) = 3 shares; a held name no longer picked gets a target of 0."""
    rows = target_rows(
        STRATEGIES["short_term"],
        TUE,
        MON,
        [Signal("A", 2.0, 0.1), Signal("B", 1.0, 0.1)],
        bars(A=30_000.0, B=70_000.0),
        [Holding("Z", 5, 1_000.0)],
        1_000_000.0,
    )
    targets = {r["symbol"]: r["target_quantity"] for r in rows}
    assert targets == {"A": 3, "B": 1, "Z": 0}
    assert all(r["rebalance"] for r in rows)


def test_on_a_day_that_is_not_a_rebalance_day_the_target_is_the_holding() -> None:
    """Medium-term rebalances on a month's first session only: on Monday 30 November it holds."""
    rows = target_rows(
        STRATEGIES["medium_term"],
        MON,
        date(2026, 11, 27),
        [Signal("A", 1.0, 0.15)],
        bars(A=10.0),
        [Holding("Z", 5, 20.0)],
        1000.0,
    )
    assert [(r["symbol"], r["target_quantity"], r["rebalance"]) for r in rows] == [("Z", 5, False)]


def test_halted_or_unpriced_picks_stay_in_cash() -> None:
    closes = bars(A=10.0)
    closes["B"] = {"symbol": "B", "close": 10.0, "halted": True}
    rows = target_rows(
        STRATEGIES["short_term"],
        TUE,
        MON,
        [Signal("A", 1, 0.1), Signal("B", 1, 0.1), Signal("C", 1, 0.1)],
        closes,
        [],
        1000.0,
    )
    assert [r["symbol"] for r in rows] == ["A"]


def test_breakout_targets_carry_the_trigger_offset_of_the_previous_range() -> None:
    rows = target_rows(STRATEGIES["intraday_breakout"], TUE, MON, [Signal("A", 1, 0.2)], bars(A=100.0), [], 1000.0)
    assert rows[0]["order_type"] == "breakout"
    assert rows[0]["trigger_offset"] == pytest.approx(0.5 * (110.0 - 90.0))


def test_orders_are_the_difference_between_target_and_holding() -> None:
    targets = [
        {"strategy": "s", "symbol": "A", "target_quantity": 10, "order_type": "market", "trigger_offset": 0.0},
        {"strategy": "s", "symbol": "B", "target_quantity": 2, "order_type": "market", "trigger_offset": 0.0},
        {"strategy": "s", "symbol": "C", "target_quantity": 0, "order_type": "market", "trigger_offset": 0.0},
        {"strategy": "s", "symbol": "D", "target_quantity": 4, "order_type": "market", "trigger_offset": 0.0},
    ]
    held = {("s", "A"): 4, ("s", "B"): 5, ("s", "C"): 3, ("s", "D"): 4}
    orders = {o.symbol: (o.side, o.quantity) for o in orders_for("krx", TUE, targets, held)}
    assert orders == {"A": ("buy", 6), "B": ("sell", 3), "C": ("sell", 3)}


class CountingBroker(Broker):
    """A broker that counts what reaches it; ``lost`` ids are known to it but missing from our ledger."""

    def __init__(self, known: list[Order] = ()) -> None:
        self.book = {o.client_order_id: o for o in known}
        self.submitted: list[str] = []

    def submit(self, order: Order) -> None:
        if order.client_order_id in self.book:
            raise DuplicateClientOrderError(order.client_order_id)
        self.book[order.client_order_id] = order
        self.submitted.append(order.client_order_id)

    def orders(self, exchange, session):
        return list(self.book.values())

    def executions(self, exchange, session):
        return []

    def report_token(self, exchange, session):
        return str(len(self.book))


def test_placing_again_with_the_ledger_sends_nothing_twice() -> None:
    broker = CountingBroker()
    wanted = [Order.new("krx", TUE, "s", "A", "buy", 5), Order.new("krx", TUE, "s", "B", "sell", 1)]
    first = place_orders(broker, wanted, [])
    second = place_orders(broker, wanted, first.ledger)
    assert len(broker.submitted) == 2
    assert (len(second.placed), len(second.already_in_ledger)) == (0, 2)
    assert second.ledger == first.ledger


def test_an_order_the_broker_has_but_the_ledger_lost_is_recovered_not_placed_again() -> None:
    """A crash between the broker's acknowledgement and the ledger's publish: the id is refused and
    the broker's own copy (quantity 5, not the recomputed 7) goes into the ledger."""
    placed = Order.new("krx", TUE, "s", "A", "buy", 5)
    broker = CountingBroker([placed])
    result = place_orders(broker, [Order.new("krx", TUE, "s", "A", "buy", 7)], [])
    assert broker.submitted == []
    assert result.refused_as_duplicate == [placed.client_order_id]
    assert result.ledger == [placed]


def test_the_paper_broker_and_the_ledger_together_never_double_an_order(tmp_path) -> None:
    broker = PaperBroker(LocalFolderStore(tmp_path))
    wanted = [Order.new("us", TUE, "s", "AAPL", "buy", 5)]
    place_orders(broker, wanted, [])
    again = place_orders(broker, wanted, [])  # even without the ledger
    assert again.refused_as_duplicate == [wanted[0].client_order_id]
    assert len(broker.orders("us", TUE)) == 1


def test_a_strategy_that_decided_its_orders_for_the_session_places_no_more_even_if_its_target_changed() -> None:
    broker = CountingBroker()
    first = place_orders(broker, [Order.new("krx", TUE, "s", "A", "buy", 5)], [])
    changed = [Order.new("krx", TUE, "s", "C", "buy", 9), Order.new("krx", TUE, "t", "C", "buy", 1)]
    second = place_orders(broker, changed, first.ledger)
    assert second.not_placed == [changed[0].client_order_id]
    assert second.placed == [changed[1].client_order_id]  # another strategy's first decision
    assert len(broker.submitted) == 2
