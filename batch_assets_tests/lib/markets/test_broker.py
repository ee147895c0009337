"""The paper broker: deterministic fills from the session's bar, and no client order id twice."""

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_assets.lib.markets.broker import DuplicateClientOrderError, Order, PaperBroker, client_order_id
from batch_assets.lib.markets.layout import bars_key
from batch_assets.lib.markets.schema import BAR_SCHEMA
from batch_assets.lib.storage import LocalFolderStore

S = date(2026, 11, 20)


def bar(symbol: str, o: float, h: float, low: float, c: float, volume: int = 1_000_000, halted: bool = False) -> dict:
    return {
        "symbol": symbol,
        "session": S,
        "open": o,
        "high": h,
        "low": low,
        "close": c,
        "adj_close": c,
        "volume": volume,
        "halted": halted,
        "source": "test",
    }


def write_bars(store: LocalFolderStore, rows: list[dict], exchange: str = "krx") -> None:
    with store.publish(bars_key(exchange, S)) as path:
        pq.write_table(pa.Table.from_pylist(rows, schema=BAR_SCHEMA), path)


@pytest.fixture
def store(tmp_path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path)


def test_client_order_ids_are_derived_from_market_session_strategy_and_symbol() -> None:
    """The same decision gets the same id on every rerun; another day or symbol another id."""
    one = client_order_id("krx", S, "short_term", "005930")
    assert one == client_order_id("krx", S, "short_term", "005930")
    assert one != client_order_id("krx", date(2026, 11, 19), "short_term", "005930")
    assert one != client_order_id("krx", S, "long_term", "005930")
    assert one != client_order_id("us", S, "short_term", "005930")
    assert one.startswith("bt-") and len(one) == 27


def test_the_paper_broker_refuses_a_client_order_id_it_has_seen(store) -> None:
    broker = PaperBroker(store)
    order = Order.new("krx", S, "short_term", "A", "buy", 10)
    broker.submit(order)
    with pytest.raises(DuplicateClientOrderError, match=order.client_order_id):
        broker.submit(Order.new("krx", S, "short_term", "A", "buy", 99))
    assert broker.orders("krx", S) == [order]


def test_orders_stay_open_until_the_sessions_bar_is_in_then_fill_at_the_close(store) -> None:
    broker = PaperBroker(store)
    broker.submit(Order.new("krx", S, "s", "A", "buy", 10))
    before = broker.report_token("krx", S)
    assert [r["status"] for r in broker.executions("krx", S)] == ["open"]
    write_bars(store, [bar("A", 100, 110, 95, 105)])
    assert broker.report_token("krx", S) != before
    (row,) = broker.executions("krx", S)
    assert (row["status"], row["quantity"], row["price"]) == ("filled", 10, 105.0)


def test_fill_at_open_uses_the_open_price_and_fees_are_basis_points_of_the_value(store) -> None:
    write_bars(store, [bar("A", 100, 110, 95, 105)])
    broker = PaperBroker(store, fill_at="open", fee_bps=10)
    broker.submit(Order.new("krx", S, "s", "A", "sell", 10))
    (row,) = broker.executions("krx", S)
    assert (row["side"], row["price"], row["fee"]) == ("sell", 100.0, pytest.approx(1.0))


def test_halted_missing_and_volume_capped_orders_do_not_fill_in_full(store) -> None:
    write_bars(store, [bar("A", 100, 110, 95, 105, halted=True), bar("B", 10, 11, 9, 10, volume=50)])
    broker = PaperBroker(store, max_volume_share=0.1)
    for symbol in ("A", "B", "C"):
        broker.submit(Order.new("krx", S, "s", symbol, "buy", 20))
    rows = {r["symbol"]: r for r in broker.executions("krx", S)}
    assert (rows["A"]["status"], rows["A"]["quantity"]) == ("expired", 0)
    assert "halted" in rows["A"]["reason"]
    assert (rows["B"]["status"], rows["B"]["quantity"]) == ("partially_filled", 5)
    assert (rows["C"]["status"], rows["C"]["reason"]) == ("expired", "no bar for the symbol in the session")


def test_a_breakout_buys_at_the_trigger_and_sells_at_the_close_only_if_the_high_reaches_it(store) -> None:
    write_bars(store, [bar("A", 100, 112, 99, 108), bar("B", 100, 104, 99, 101)])
    broker = PaperBroker(store)
    broker.submit(Order.new("krx", S, "intraday_breakout", "A", "buy", 3, "breakout", 10.0))
    broker.submit(Order.new("krx", S, "intraday_breakout", "B", "buy", 3, "breakout", 10.0))
    rows = broker.executions("krx", S)
    a = [(r["leg"], r["side"], r["quantity"], r["price"]) for r in rows if r["symbol"] == "A"]
    assert a == [("entry", "buy", 3, 110.0), ("exit", "sell", 3, 108.0)]
    (b,) = [r for r in rows if r["symbol"] == "B"]
    assert (b["status"], b["reason"]) == ("not_triggered", "high 104.0 < trigger 110.0")
