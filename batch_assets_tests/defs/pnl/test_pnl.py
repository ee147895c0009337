"""Daily PnL in each market's currency, risk checks that alert, and the monthly governance review."""

import datetime as dt

import dagster as dg
import pytest

from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets_tests.defs.trading.helpers import (
    MON,
    TUE,
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


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_us_pnl_is_in_dollars_and_krx_pnl_in_won_each_with_its_own_total(tmp_path) -> None:
    """Same trade on both markets: 10% of each strategy's capital in A, bought at Tuesday's close,
    marked at Tuesday's close + 1% on Wednesday. Capital: 100,000,000 KRW / 100,000 USD."""
    settings = trading_settings(tmp_path)
    store = store_of(settings)
    wed = dt.date(2026, 11, 18)
    for market, price in (("krx", 50_000.0), ("us", 100.0)):
        write_bars(store, market, MON, {"A": (price,) * 4})
        book_directly(settings, market, MON)
        write_factors(store, market, MON, [factor_row("A", MON, mom_20=0.05)])
        write_bars(store, market, TUE, {"A": (price,) * 4})
        trade_directly(settings, market, TUE)
        book_directly(settings, market, TUE)
        write_bars(store, market, wed, {"A": (price * 1.01,) * 4})
        assert run_job(settings, f"record_{market}_daily_pnl_job", session=wed).success

    krx = {r["strategy"]: r for r in rows(store, tl.pnl_key("krx", wed))}
    us = {r["strategy"]: r for r in rows(store, tl.pnl_key("us", wed))}
    assert {r["currency"] for r in krx.values()} == {"KRW"}
    assert {r["currency"] for r in us.values()} == {"USD"}
    # 200 shares of 50,000 KRW (10,000,000) up 1%: 100,000 KRW; 100 shares of $100 up 1%: $100.
    assert krx["short_term"]["daily_pnl"] == pytest.approx(100_000)
    assert us["short_term"]["daily_pnl"] == pytest.approx(100)
    assert krx["TOTAL"]["daily_pnl"] == pytest.approx(100_000)
    assert us["TOTAL"]["daily_pnl"] == pytest.approx(100)
    assert krx["TOTAL"]["capital"] == 5 * 100_000_000
    assert us["TOTAL"]["capital"] == 5 * 100_000


def pnl_row(strategy: str, session: dt.date, **values) -> dict:
    row = dict.fromkeys(tl.PNL_SCHEMA.names, 0.0)
    row.update(
        session=session,
        strategy=strategy,
        currency="KRW",
        capital=100_000_000.0,
        equity=100_000_000.0,
        peak_equity=100_000_000.0,
        max_weight_symbol=None,
        positions=0,
        fills=0,
    )
    return row | values


def test_risk_checks_fire_on_a_constructed_drawdown_and_concentration(tmp_path) -> None:
    """A strategy 25% below its peak is an ERROR; one name at 30% of equity a WARN; exposure passes."""
    settings = trading_settings(tmp_path)
    store = store_of(settings)
    tl.write_rows(
        store,
        tl.pnl_key("krx", TUE),
        [
            pnl_row("short_term", TUE, drawdown=0.25, equity=75e6, peak_equity=100e6),
            pnl_row("long_term", TUE, max_weight=0.30, max_weight_symbol="005930", positions=4, gross_exposure=0.9),
            pnl_row("TOTAL", TUE, drawdown=0.05, capital=500e6, gross_exposure=0.4),
        ],
        tl.PNL_SCHEMA,
    )
    result = run_job(settings, "check_krx_risk_limits_job", tags={tl.SESSION_TAG: TUE.isoformat()})
    checks = checks_of(result)
    drawdown, concentration, exposure = (
        checks[n] for n in ("drawdown_within_limit", "concentration_within_limit", "exposure_within_limit")
    )
    assert (drawdown.passed, drawdown.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert drawdown.metadata["breaches"].value[0] == {
        "name": "short_term",
        "value": 0.25,
        "level": "error",
        "limit": 0.2,
    }
    assert (concentration.passed, concentration.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert concentration.description == "1 concentration breach(es): long_term:005930 30.00% > 25%"
    assert exposure.passed
    assert drawdown.metadata["sessions"].value == ["2026-11-17"]


def test_the_governance_review_suspends_a_strategy_past_its_limits_and_reviews_unbooked_sessions(tmp_path) -> None:
    settings = trading_settings(tmp_path).model_copy(update={"trading_start": "2026-10-01"})
    store = store_of(settings)
    # October 2026 (a complete month, so a partition): book every KRX session but the last.
    sessions = exchange_sessions("krx", "2026-10-01", "2026-10-31")
    for day in sessions[:-1]:
        tl.write_rows(
            store,
            tl.pnl_key("krx", day),
            [pnl_row("short_term", day, daily_pnl=-600_000.0, drawdown=0.12), pnl_row("long_term", day)],
            tl.PNL_SCHEMA,
        )
    result = run_job(settings, "check_strategy_governance_job", session=dt.date(2026, 10, 1))
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert "krx:short_term" in check.metadata["suspend"].value
    review = {(r["market"], r["strategy"]): r for r in rows(store, tl.governance_key("2026-10"))}
    short = review[("krx", "short_term")]
    booked = len(sessions) - 1
    assert short["monthly_pnl"] == pytest.approx(-600_000.0 * booked)
    assert short["verdict"] == "suspend"  # over 10% of its capital lost in the month
    assert (short["sessions_booked"], short["sessions_expected"]) == (booked, len(sessions))
    assert f"1 session(s) not booked: {sessions[-1]}" in short["reasons"]
    assert review[("krx", "long_term")]["verdict"] == "review"  # only the missing session
    assert review[("us", "short_term")]["sessions_booked"] == 0
