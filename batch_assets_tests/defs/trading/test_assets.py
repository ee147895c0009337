"""A KRX book over three sessions through the real jobs: targets, orders, fills, positions, PnL.

Capital 100,000,000 KRW per strategy; the short-term strategy puts 10% in each pick; the paper
broker fills at the close. Prices are chosen so every figure can be checked by hand.
"""

import dagster as dg
import pytest

from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.broker import PaperBroker, client_order_id
from batch_assets_tests.defs.trading.helpers import (
    MON,
    TUE,
    WED,
    book_directly,
    factor_row,
    rows,
    run_job,
    store_of,
    trade_directly,
    trading_settings,
    write_bars,
    write_factors,
)


@pytest.fixture
def book(tmp_path):
    """Monday booked flat (the first traded session); Monday's factors pick A and B for Tuesday."""
    settings = trading_settings(tmp_path)
    store = store_of(settings)
    write_bars(store, "krx", MON, {"A": (10_000, 10_000, 10_000, 10_000), "B": (20_000, 20_000, 20_000, 20_000)})
    book_directly(settings, "krx", MON)
    write_factors(
        store,
        "krx",
        MON,
        [factor_row("A", MON, mom_20=0.05), factor_row("B", MON, mom_20=0.04), factor_row("C", MON)],
    )
    write_bars(store, "krx", TUE, {"A": (10_100, 10_600, 10_000, 10_500), "B": (19_500, 19_800, 18_800, 19_000)})
    return settings, store


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_the_first_session_starts_flat_with_the_capital_in_cash(book) -> None:
    settings, store = book
    pnl = {r["strategy"]: r for r in rows(store, tl.pnl_key("krx", MON))}
    assert pnl["short_term"]["equity"] == 100_000_000
    assert pnl["TOTAL"]["capital"] == 5 * 100_000_000
    assert [r["kind"] for r in rows(store, tl.positions_key("krx", MON))] == ["cash"] * 5


def test_a_partial_sell_realizes_pnl_and_the_rest_is_marked_at_the_close(book) -> None:
    """Tue: buy 1000 A @ 10,500 and 500 B @ 19,000 (10% of 100M each at Monday's close, filled at
    Tuesday's close). Wed: Tuesday's factors keep only A: target floor(10M / 10,500) = 952, so sell
    48 A @ 11,000 (realized 48 * 500 = 24,000) and 500 B @ 20,000 (realized 500,000); the 952 A left
    are marked at 11,000: unrealized 952 * 500 = 476,000; daily PnL 1,000,000."""
    settings, store = book
    trade_directly(settings, "krx", TUE)
    book_directly(settings, "krx", TUE)
    tue = {p["symbol"]: p for p in rows(store, tl.positions_key("krx", TUE)) if p["strategy"] == "short_term"}
    assert (tue["A"]["quantity"], tue["A"]["average_cost"]) == (1000, 10_500)
    assert (tue["B"]["quantity"], tue["B"]["average_cost"]) == (500, 19_000)
    assert tue[""]["market_value"] == 100_000_000 - 10_500_000 - 9_500_000  # the cash line

    write_factors(store, "krx", TUE, [factor_row("A", TUE, mom_20=0.05), factor_row("B", TUE)])
    write_bars(store, "krx", WED, {"A": (10_800, 11_200, 10_700, 11_000), "B": (20_000, 20_100, 19_900, 20_000)})
    assert run_job(settings, "execute_krx_short_term_strategy_job", session=WED).success
    orders = {o["symbol"]: (o["side"], o["quantity"]) for o in rows(store, tl.orders_key("krx", WED))}
    assert orders == {"A": ("sell", 48), "B": ("sell", 500)}
    result = run_job(settings, "record_krx_daily_pnl_job", session=WED)
    assert result.success

    pnl = {r["strategy"]: r for r in rows(store, tl.pnl_key("krx", WED))}["short_term"]
    assert pnl["currency"] == "KRW"
    assert pnl["realized_pnl"] == pytest.approx(48 * 500 + 500 * 1_000)
    assert pnl["unrealized_pnl"] == pytest.approx(952 * 500)
    assert pnl["daily_pnl"] == pytest.approx(1_000_000)
    assert pnl["equity"] == pytest.approx(101_000_000)
    assert materializations(result)["pnl/krx/daily"]["total_daily_pnl"].value == pytest.approx(1_000_000)


def test_rematerializing_the_orders_never_places_an_order_twice(book) -> None:
    """The ledger and the client order ids make placing idempotent per (strategy, session)."""
    settings, store = book
    first = run_job(settings, "execute_krx_short_term_strategy_job", session=TUE)
    second = run_job(settings, "execute_krx_short_term_strategy_job", session=TUE)
    assert first.success and second.success
    assert materializations(first)["trading/krx/orders"]["placed"].value == 2
    again = materializations(second)["trading/krx/orders"]
    assert (again["placed"].value, again["already_in_ledger"].value) == (0, 2)

    # Even a changed target (now C is the pick) places nothing more for the strategy that day.
    write_factors(store, "krx", MON, [factor_row("C", MON, mom_20=0.09)])
    write_bars(store, "krx", MON, {"A": (1, 1, 1, 1), "B": (1, 1, 1, 1), "C": (5_000, 5_000, 5_000, 5_000)})
    third = run_job(settings, "execute_krx_short_term_strategy_job", session=TUE)
    assert materializations(third)["trading/krx/orders"]["not_placed_strategy_decided"].value == 1

    broker = PaperBroker(store)
    placed = broker.orders("krx", TUE)
    assert sorted(o.symbol for o in placed) == ["A", "B"]
    assert {o["client_order_id"] for o in rows(store, tl.orders_key("krx", TUE))} == {
        client_order_id("krx", TUE, "short_term", s) for s in ("A", "B")
    }


def test_orders_of_a_session_without_its_bar_stay_open_and_positions_keep_the_previous_marks(book) -> None:
    settings, store = book
    store.delete(tl.bars_key("krx", TUE))
    trade_directly(settings, "krx", TUE)
    result = run_job(settings, "confirm_krx_fills_job", session=TUE)
    assert result.success
    assert {f["status"] for f in rows(store, tl.fills_key("krx", TUE))} == {"open"}
    assert materializations(result)["trading/krx/fills"]["open_orders"].value == 2
    # PnL is marked at the close: without the session's bar it is refused, naming the file.
    pnl = run_job(settings, "record_krx_daily_pnl_job", session=TUE)
    assert not pnl.success
    assert "market/krx/daily_bars/2026-11-17.parquet is not in the store" in str(
        pnl.get_step_failure_events()[0].event_specific_data.error
    )


def test_a_session_whose_previous_book_is_missing_refuses_to_trade(book) -> None:
    """Trading on an unbooked previous session would treat the book as flat and buy everything again."""
    settings, store = book
    store.delete(tl.positions_key("krx", MON))
    result = run_job(settings, "execute_krx_short_term_strategy_job", session=TUE)
    assert not result.success
    assert "trading/krx/positions/2026-11-16.parquet is not in the store" in str(
        result.get_step_failure_events()[0].event_specific_data.error
    )


def test_a_range_run_books_each_session_before_trading_the_next(tmp_path) -> None:
    """A backfill (one run over Mon..Wed) does every step of a session before the next session."""
    settings = trading_settings(tmp_path)
    store = store_of(settings)
    for day, price in ((MON, 10_000), (TUE, 10_500), (WED, 11_000)):
        write_bars(store, "krx", day, {"A": (price, price, price, price)})
        write_factors(store, "krx", day, [factor_row("A", day, mom_20=0.05)])
    result = run_job(settings, "run_krx_trading_pipeline_job", sessions=(MON, WED))
    assert result.success
    wed = {r["strategy"]: r for r in rows(store, tl.pnl_key("krx", WED))}
    # Bought 1000 A at Tuesday's close (10,500), marked at 11,000 on Wednesday.
    assert wed["short_term"]["cumulative_pnl"] == pytest.approx(1000 * 500)
    metas = materializations(result)
    assert metas["trading/krx/positions"]["sessions"].value == 3
