"""PnL on small books computed by hand: buys, partial sells, marks at the close, two currencies."""

from datetime import date

import pytest

from batch_assets.lib.markets.pnl import BookingError, book_session, pnl_rows
from batch_assets.lib.markets.trading_layout import TOTAL

D1, D2, D3 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)


def fill(symbol: str, side: str, quantity: int, price: float, *, strategy: str = "s", fee: float = 0.0, leg="entry"):
    return {
        "client_order_id": f"{strategy}-{symbol}-{side}",
        "strategy": strategy,
        "symbol": symbol,
        "side": side,
        "leg": leg,
        "quantity": quantity,
        "price": price,
        "fee": fee,
        "status": "filled",
    }


def by_strategy(rows: list[dict]) -> dict[str, dict]:
    return {r["strategy"]: r for r in rows}


def positions_of(booked) -> dict[tuple[str, str], dict]:
    return {(r["strategy"], r["symbol"]): r for r in booked.position_rows()}


def test_a_buy_is_marked_at_the_close_and_costs_only_cash() -> None:
    """Buy 10 @ 100, close 110: unrealized 100, realized 0, cash 1000 - 1000, equity 1100."""
    booked = book_session(D1, ["s"], 1000.0, None, [fill("A", "buy", 10, 100.0)], {"A": 110.0})
    pnl = by_strategy(pnl_rows(booked, "KRW", None))["s"]
    position = positions_of(booked)[("s", "A")]
    assert (position["quantity"], position["average_cost"], position["price"]) == (10, 100.0, 110.0)
    assert position["unrealized_pnl"] == pytest.approx(100.0)
    assert pnl["cash"] == pytest.approx(0.0)
    assert pnl["realized_pnl"] == pytest.approx(0.0)
    assert pnl["unrealized_pnl"] == pytest.approx(100.0)
    assert pnl["equity"] == pytest.approx(1100.0)
    assert pnl["daily_pnl"] == pytest.approx(100.0)
    assert pnl["gross_exposure"] == pytest.approx(1100.0 / 1100.0)


def test_a_partial_sell_realizes_against_the_average_cost_and_keeps_the_rest_unrealized() -> None:
    """Day 1: buy 10 @ 100 and 10 @ 120 (average 110), close 115. Day 2: sell 5 @ 130, close 125.

    Realized day 2 = 5 * (130 - 110) = 100; unrealized = 15 * (125 - 110) = 225, previously
    20 * (115 - 110) = 100; daily PnL = 100 + 225 - 100 = 225 = equity 2000-2200+650+1875 - (2000-2200+2300).
    """
    day1 = book_session(
        D1, ["s"], 2000.0, None, [fill("A", "buy", 10, 100.0), fill("A", "buy", 10, 120.0)], {"A": 115.0}
    )
    pnl1 = pnl_rows(day1, "KRW", None)
    assert positions_of(day1)[("s", "A")]["average_cost"] == pytest.approx(110.0)
    assert by_strategy(pnl1)["s"]["equity"] == pytest.approx(2000 - 2200 + 20 * 115)

    day2 = book_session(D2, ["s"], 2000.0, day1.position_rows(), [fill("A", "sell", 5, 130.0)], {"A": 125.0})
    pnl2 = by_strategy(pnl_rows(day2, "KRW", pnl1))["s"]
    position = positions_of(day2)[("s", "A")]
    assert (position["quantity"], position["average_cost"]) == (15, pytest.approx(110.0))
    assert pnl2["realized_pnl"] == pytest.approx(100.0)
    assert pnl2["unrealized_pnl"] == pytest.approx(225.0)
    assert pnl2["daily_pnl"] == pytest.approx(225.0)
    assert pnl2["daily_pnl"] == pytest.approx(pnl2["realized_pnl"] + pnl2["unrealized_pnl"] - 100.0)
    assert pnl2["cash"] == pytest.approx(2000 - 2200 + 650)
    assert pnl2["equity"] == pytest.approx(2000 - 2200 + 650 + 15 * 125)
    assert pnl2["cumulative_pnl"] == pytest.approx(pnl2["equity"] - 2000)


def test_selling_everything_closes_the_position_and_fees_are_realized_costs() -> None:
    """Buy 10 @ 50 (fee 1), next day sell 10 @ 60 (fee 1.2): realized day 2 = 100 - 1.2, day 1 = -1."""
    day1 = book_session(D1, ["s"], 1000.0, None, [fill("A", "buy", 10, 50.0, fee=1.0)], {"A": 55.0})
    pnl1 = by_strategy(pnl_rows(day1, "USD", None))["s"]
    assert pnl1["realized_pnl"] == pytest.approx(-1.0)
    assert pnl1["daily_pnl"] == pytest.approx(50.0 - 1.0)
    day2 = book_session(D2, ["s"], 1000.0, day1.position_rows(), [fill("A", "sell", 10, 60.0, fee=1.2)], {"A": 58.0})
    pnl2 = by_strategy(pnl_rows(day2, "USD", pnl_rows(day1, "USD", None)))["s"]
    assert ("s", "A") not in positions_of(day2)
    assert pnl2["realized_pnl"] == pytest.approx(100.0 - 1.2)
    assert pnl2["unrealized_pnl"] == 0
    assert pnl2["equity"] == pytest.approx(1000 - 500 - 1 + 600 - 1.2)
    assert pnl2["fees"] == pytest.approx(1.2)


def test_a_day_trade_books_entry_then_exit_and_leaves_no_position() -> None:
    """The breakout's exit leg sells at the close what the entry bought at the trigger."""
    fills = [fill("A", "sell", 3, 105.0, leg="exit"), fill("A", "buy", 3, 101.0, leg="entry")]
    booked = book_session(D1, ["s"], 1000.0, None, fills, {"A": 105.0})
    pnl = by_strategy(pnl_rows(booked, "KRW", None))["s"]
    assert ("s", "A") not in positions_of(booked)
    assert pnl["realized_pnl"] == pytest.approx(12.0)
    assert pnl["equity"] == pytest.approx(1012.0)


def test_a_halted_symbol_keeps_its_previous_mark() -> None:
    day1 = book_session(D1, ["s"], 1000.0, None, [fill("A", "buy", 1, 100.0)], {"A": 100.0})
    day2 = book_session(D2, ["s"], 1000.0, day1.position_rows(), [], {"A": None})
    position = positions_of(day2)[("s", "A")]
    assert (position["price"], position["price_source"]) == (100.0, "previous_close")


def test_selling_more_than_held_is_an_error_not_a_short() -> None:
    with pytest.raises(BookingError, match="sells 5 A but holds 0"):
        book_session(D1, ["s"], 1000.0, None, [fill("A", "sell", 5, 10.0)], {})


def test_strategies_are_booked_apart_and_the_total_sums_them() -> None:
    fills = [fill("A", "buy", 10, 100.0, strategy="x"), fill("A", "buy", 5, 100.0, strategy="y")]
    booked = book_session(D1, ["x", "y"], 10_000.0, None, fills, {"A": 120.0})
    rows = by_strategy(pnl_rows(booked, "KRW", None))
    assert rows["x"]["unrealized_pnl"] == pytest.approx(200.0)
    assert rows["y"]["unrealized_pnl"] == pytest.approx(100.0)
    assert rows[TOTAL]["capital"] == 20_000.0
    assert rows[TOTAL]["equity"] == pytest.approx(20_300.0)
    # One symbol held by two strategies is one exposure in the total.
    assert rows[TOTAL]["max_weight"] == pytest.approx(15 * 120 / 20_300)


def test_two_markets_are_booked_in_their_own_currency_and_never_summed() -> None:
    """A KRW book and a USD book: each PnL row carries its currency; each TOTAL is its own market's."""
    krx = pnl_rows(
        book_session(D1, ["s"], 100_000_000.0, None, [fill("005930", "buy", 100, 70_000.0)], {"005930": 71_000.0}),
        "KRW",
        None,
    )
    us = pnl_rows(
        book_session(D1, ["s"], 100_000.0, None, [fill("AAPL", "buy", 100, 200.0)], {"AAPL": 202.0}), "USD", None
    )
    assert {r["currency"] for r in krx} == {"KRW"}
    assert {r["currency"] for r in us} == {"USD"}
    assert by_strategy(krx)[TOTAL]["daily_pnl"] == pytest.approx(100 * 1_000.0)
    assert by_strategy(us)[TOTAL]["daily_pnl"] == pytest.approx(100 * 2.0)


def test_drawdown_runs_from_the_peak_equity_across_sessions() -> None:
    day1 = book_session(D1, ["s"], 1000.0, None, [fill("A", "buy", 10, 100.0)], {"A": 120.0})
    pnl1 = pnl_rows(day1, "KRW", None)
    day2 = book_session(D2, ["s"], 1000.0, day1.position_rows(), [], {"A": 90.0})
    pnl2 = pnl_rows(day2, "KRW", pnl1)
    day3 = book_session(D3, ["s"], 1000.0, day2.position_rows(), [], {"A": 95.0})
    pnl3 = by_strategy(pnl_rows(day3, "KRW", pnl2))["s"]
    assert pnl3["peak_equity"] == pytest.approx(1200.0)
    assert pnl3["drawdown"] == pytest.approx((1200 - 950) / 1200)
