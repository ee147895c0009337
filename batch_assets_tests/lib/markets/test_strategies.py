"""The seed's strategies: what they pick from one session's factors, and when they rebalance."""

from datetime import date

import pytest

from batch_assets.lib.markets.strategies import STRATEGIES, get_strategy


def factors(symbol: str, **values: float) -> dict:
    base = dict(mom_20=0.05, mom_60=0.1, mom_120=0.2, sma_20=11.0, sma_60=10.0, ema_20=11.0, rsi_14=55.0, vol_20=0.02)
    return {"symbol": symbol, **base, **values}


def test_short_term_keeps_rising_names_that_are_not_overbought_ranked_by_momentum_per_volatility() -> None:
    rows = [
        factors("A", mom_20=0.10, vol_20=0.05),  # score 2
        factors("B", mom_20=0.06, vol_20=0.02),  # score 3
        factors("C", mom_20=0.20, rsi_14=80),  # overbought
        factors("D", mom_20=-0.01),  # falling
        factors("E", mom_20=None),  # too short a history
    ]
    picks = STRATEGIES["short_term"].signals(rows)
    assert [p.symbol for p in picks] == ["B", "A"]
    assert all(p.weight == pytest.approx(0.1) for p in picks)  # per slot: 1/10, the rest stays in cash


def test_inverse_volatility_weights_are_capped() -> None:
    rows = [factors(s, vol_20=v) for s, v in (("A", 0.001), ("B", 0.04), ("C", 0.04))]
    picks = {p.symbol: p.weight for p in STRATEGIES["medium_term"].signals(rows)}
    assert picks["A"] == pytest.approx(0.15)
    assert picks["B"] == pytest.approx(picks["C"])
    assert picks["B"] < 0.15
    assert sum(picks.values()) <= 0.3 + 1e-9  # 3 of 10 slots at most


def test_ties_are_broken_by_symbol_so_reruns_pick_the_same_names() -> None:
    rows = [factors(s) for s in "ZYXWVUTSRQPONM"]
    assert [p.symbol for p in STRATEGIES["short_term"].signals(rows)] == list("MNOPQRSTUV")


@pytest.mark.parametrize(
    ("name", "session", "previous", "rebalances"),
    [
        ("short_term", date(2026, 11, 20), date(2026, 11, 19), True),
        ("medium_term", date(2026, 12, 1), date(2026, 11, 30), True),
        ("medium_term", date(2026, 11, 30), date(2026, 11, 27), False),
        ("long_term", date(2026, 11, 30), date(2026, 11, 27), True),  # a new ISO week
        ("long_term", date(2026, 12, 1), date(2026, 11, 30), False),
        ("long_term", date(2026, 11, 24), date(2026, 11, 20), True),  # Monday a holiday: Tuesday is the week's first
        ("medium_term", date(2026, 11, 18), None, True),  # the first traded session always rebalances
        ("robo", date(2026, 11, 18), date(2026, 11, 17), True),
    ],
)
def test_each_strategy_rebalances_on_its_own_days(name, session, previous, rebalances) -> None:
    assert get_strategy(name).rebalances_on(session, previous) is rebalances


def test_an_unknown_strategy_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        get_strategy("nope")
