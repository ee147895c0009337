"""The bar rules: a halted bar passes the price rules; broken bars are named."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from batch_assets.lib.markets import checks
from batch_assets.lib.markets.schema import BarDataError, conform_bars

SESSION = date(2026, 11, 20)


def bars(*rows: tuple) -> pa.Table:
    names = ("symbol", "open", "high", "low", "close", "volume", "halted")
    types = (pa.string(), pa.float64(), pa.float64(), pa.float64(), pa.float64(), pa.int64(), pa.bool_())
    table = pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})
    return conform_bars(table, SESSION, "test")


def test_a_trading_halt_row_passes_every_price_rule() -> None:
    table = bars(("A", 10.0, 11.0, 9.0, 10.5, 100, False), ("H", 0.0, 0.0, 0.0, 10.0, 0, True))
    assert checks.high_low_violations(table).num_rows == 0
    assert checks.non_positive_prices(table).num_rows == 0
    assert checks.negative_volume(table).num_rows == 0


def test_an_empty_or_all_halted_session_passes_the_price_rules() -> None:
    for table in (bars(), bars(("H", 0.0, 0.0, 0.0, 10.0, 0, True))):
        assert checks.high_low_violations(table).num_rows == 0
        assert checks.non_positive_prices(table).num_rows == 0


def test_broken_bars_are_found() -> None:
    table = bars(
        ("HIGH", 10.0, 10.2, 9.0, 10.5, 100, False),  # high below close
        ("LOW", 10.0, 11.0, 10.1, 10.5, 100, False),  # low above open
        ("ZERO", 0.0, 11.0, 9.0, 10.5, 100, False),  # zero open, not halted
        ("NULL", 10.0, None, 9.0, 10.5, 100, False),  # missing high, not halted
        ("NEG", 10.0, 11.0, 9.0, 10.5, -1, False),
    )
    assert checks.high_low_violations(table)["symbol"].to_pylist() == ["HIGH", "LOW", "ZERO"]
    assert checks.non_positive_prices(table)["symbol"].to_pylist() == ["NULL", "ZERO"]
    assert checks.negative_volume(table)["symbol"].to_pylist() == ["NEG"]


def test_missing_symbols_are_named_and_a_halted_bar_counts_as_present() -> None:
    table = bars(("A", 1.0, 1.0, 1.0, 1.0, 1, False), ("H", 0.0, 0.0, 0.0, 1.0, 0, True))
    assert checks.missing_symbols(["A", "B", "H", "C"], table) == ["B", "C"]
    assert checks.missing_symbols(None, table) == []


def test_a_tally_keeps_counts_sessions_and_a_few_examples() -> None:
    tally = checks.RuleTally("rule")
    tally.add("2026-11-19", pa.table({"symbol": ["A"] * 12, "session": [SESSION] * 12}))
    tally.add("2026-11-20", pa.table({"symbol": [], "session": pa.array([], pa.date32())}))
    assert not tally.passed and tally.failures == 12 and tally.sessions == ["2026-11-19"]
    assert len(tally.examples) == checks.EXAMPLES and tally.examples[0]["session"] == "2026-11-20"


def test_bars_of_another_session_or_a_repeated_symbol_cannot_be_stored() -> None:
    with pytest.raises(BarDataError, match="appear more than once"):
        bars(("A", 1.0, 1.0, 1.0, 1.0, 1, False), ("A", 1.0, 1.0, 1.0, 1.0, 1, False))
    table = pa.table({"symbol": ["A"], "session": [date(2026, 11, 19)], "open": [1.0], "high": [1.0]})
    table = table.append_column("low", pa.array([1.0])).append_column("close", pa.array([1.0]))
    with pytest.raises(BarDataError, match="rows of another session"):
        conform_bars(table.append_column("volume", pa.array([1])), SESSION, "test")
