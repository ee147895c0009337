"""Risk verdicts on constructed books: WARN past the warning level, ERROR past the error level."""

from datetime import date

import pytest

from batch_assets.lib.markets.risk import (
    Limit,
    RiskLimits,
    concentration_verdict,
    drawdown_verdict,
    exposure_verdict,
    governance_review,
    stop_loss_verdict,
)

LIMITS = RiskLimits()


def pnl(strategy: str, **values) -> dict:
    base = dict(drawdown=0.0, max_weight=0.05, max_weight_symbol="A", positions=1, gross_exposure=0.5)
    return {"strategy": strategy, **base, **values}


def test_a_limit_has_a_warning_and_an_error_level() -> None:
    limit = Limit(0.1, 0.2)
    assert [limit.level(v) for v in (0.05, 0.1, 0.15, 0.25, float("nan"))] == ["ok", "ok", "warn", "error", "error"]


def test_drawdown_past_the_warning_level_warns_and_past_the_error_level_errs() -> None:
    assert drawdown_verdict([pnl("a", drawdown=0.05)], LIMITS).passed
    warn = drawdown_verdict([pnl("a", drawdown=0.12), pnl("b")], LIMITS)
    assert (warn.level, [b["name"] for b in warn.breaches]) == ("warn", ["a"])
    error = drawdown_verdict([pnl("a", drawdown=0.12), pnl("TOTAL", drawdown=0.25)], LIMITS)
    assert error.level == "error"
    assert error.breaches[0] == {"name": "TOTAL", "value": 0.25, "level": "error", "limit": 0.2}
    assert error.worst == pytest.approx(0.25)


def test_concentration_names_the_strategy_and_symbol_and_ignores_empty_books() -> None:
    verdict = concentration_verdict(
        [pnl("a", max_weight=0.3, max_weight_symbol="005930"), pnl("b", max_weight=0.9, positions=0)], LIMITS
    )
    assert verdict.level == "warn"
    assert [b["name"] for b in verdict.breaches] == ["a:005930"]


def test_exposure_above_one_means_negative_cash() -> None:
    assert exposure_verdict([pnl("a", gross_exposure=1.0)], LIMITS).passed
    assert exposure_verdict([pnl("a", gross_exposure=1.1)], LIMITS).level == "warn"
    assert exposure_verdict([pnl("a", gross_exposure=float("inf"))], LIMITS).level == "error"


def test_stop_loss_lists_positions_down_more_than_the_limit() -> None:
    rows = [
        {"strategy": "s", "symbol": "A", "price": 85.0, "average_cost": 100.0},
        {"strategy": "s", "symbol": "B", "price": 70.0, "average_cost": 100.0},
        {"strategy": "s", "symbol": "C", "price": 120.0, "average_cost": 100.0},
    ]
    verdict = stop_loss_verdict(rows, LIMITS)
    assert verdict.level == "error"
    assert [(b["name"], b["level"]) for b in verdict.breaches] == [("s:B", "error"), ("s:A", "warn")]


def test_governance_suspends_a_losing_strategy_and_reviews_a_month_with_unbooked_sessions() -> None:
    days = [date(2026, 11, d) for d in (2, 3, 4)]
    rows = []
    for day in days[:2]:
        rows += [
            {**pnl("loser", drawdown=0.25), "session": day, "daily_pnl": -6_000.0, "capital": 100_000.0},
            {**pnl("fine"), "session": day, "daily_pnl": 100.0, "capital": 100_000.0},
            {**pnl("TOTAL"), "session": day, "daily_pnl": -5_900.0, "capital": 200_000.0},
        ]
    for r in rows:
        r.update(currency="USD", fills=1, turnover=0.1, equity=1.0)
    review = {r["strategy"]: r for r in governance_review("2026-11", "us", days, rows, ["loser", "fine"], LIMITS)}
    assert review["loser"]["verdict"] == "suspend"
    assert "drawdown 25.00% > 20%" in review["loser"]["reasons"]
    assert "monthly loss 12.00% > 10%" in review["loser"]["reasons"]
    assert review["fine"]["verdict"] == "review"
    assert review["fine"]["reasons"] == "1 session(s) not booked: 2026-11-04"
    assert review["fine"]["monthly_return"] == pytest.approx(0.002)
