"""Risk limits, the verdicts of the risk checks, and the monthly strategy-governance review.

A limit has a warning and an error level: a value above ``warn`` is a WARN, above ``error`` an
ERROR. Each verdict lists every breach (strategy or symbol, value, limit) for the check's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from batch_assets.lib.markets.trading_layout import TOTAL

Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class Limit:
    warn: float
    error: float

    def level(self, value: float) -> Level:
        if value > self.error or math.isnan(value):
            return "error"
        return "warn" if value > self.warn else "ok"


@dataclass(frozen=True)
class RiskLimits:
    drawdown: Limit = Limit(0.10, 0.20)  # (peak - equity) / peak, per strategy and in total
    concentration: Limit = Limit(0.25, 0.40)  # one symbol's value / equity
    exposure: Limit = Limit(1.00, 1.20)  # market value / equity: above 1 means the cash went negative
    stop_loss: Limit = Limit(0.10, 0.20)  # a position's loss against its average cost
    monthly_loss: Limit = Limit(0.05, 0.10)  # governance: a strategy's loss over the month / its capital


@dataclass
class Verdict:
    level: Level
    measure: str
    breaches: list[dict] = field(default_factory=list)
    worst: float = 0.0

    @property
    def passed(self) -> bool:
        return self.level == "ok"

    def summary(self) -> str:
        if self.passed:
            return f"every {self.measure} within its limit (worst {self.worst:.2%})"
        shown = ", ".join(f"{b['name']} {b['value']:.2%} > {b['limit']:.0%}" for b in self.breaches[:5])
        more = f" (+{len(self.breaches) - 5} more)" if len(self.breaches) > 5 else ""
        return f"{len(self.breaches)} {self.measure} breach(es): {shown}{more}"


def _verdict(measure: str, values: Iterable[tuple[str, float]], limit: Limit) -> Verdict:
    values = list(values)
    breaches = []
    for name, value in values:
        level = limit.level(value)
        if level != "ok":
            breaches.append(
                {"name": name, "value": value, "level": level, "limit": limit.error if level == "error" else limit.warn}
            )
    breaches.sort(key=lambda b: (-b["value"] if not math.isnan(b["value"]) else -math.inf, b["name"]))
    level: Level = "error" if any(b["level"] == "error" for b in breaches) else "warn" if breaches else "ok"
    worst = max((v for _, v in values if not math.isnan(v)), default=0.0)
    return Verdict(level, measure, breaches, worst)


def drawdown_verdict(pnl_rows: Sequence[dict], limits: RiskLimits) -> Verdict:
    """Drawdown from the peak equity, of every strategy and of the market's total."""
    return _verdict("drawdown", ((r["strategy"], r["drawdown"]) for r in pnl_rows), limits.drawdown)


def concentration_verdict(pnl_rows: Sequence[dict], limits: RiskLimits) -> Verdict:
    """The largest single position's share of equity, per strategy and in total."""
    return _verdict(
        "concentration",
        ((f"{r['strategy']}:{r['max_weight_symbol']}", r["max_weight"]) for r in pnl_rows if r["positions"]),
        limits.concentration,
    )


def exposure_verdict(pnl_rows: Sequence[dict], limits: RiskLimits) -> Verdict:
    """Gross exposure (market value / equity), per strategy and in total."""
    return _verdict("gross exposure", ((r["strategy"], r["gross_exposure"]) for r in pnl_rows), limits.exposure)


def stop_loss_verdict(position_rows: Sequence[dict], limits: RiskLimits) -> Verdict:
    """Positions whose mark is below their average cost by more than the stop-loss: exit candidates."""
    return _verdict(
        "position loss",
        (
            (f"{p['strategy']}:{p['symbol']}", 1 - p["price"] / p["average_cost"])
            for p in position_rows
            if p["average_cost"] > 0
        ),
        limits.stop_loss,
    )


def governance_review(
    month: str,
    market: str,
    expected_sessions: Sequence[date],
    pnl_rows: Sequence[dict],
    strategies: Sequence[str],
    limits: RiskLimits,
) -> list[dict]:
    """One row per strategy of the market for the month: its figures and a verdict with reasons.

    ``pnl_rows``: every PnL row of the month's sessions that were booked. A strategy is to be
    *suspended* when its worst drawdown or its monthly loss passes the error level, to be
    *reviewed* when either passes the warning level or sessions of the month were not booked.
    """
    booked = sorted({r["session"] for r in pnl_rows})
    missing = [s for s in expected_sessions if s not in set(booked)]
    out = []
    for name in [*strategies, TOTAL]:
        rows = sorted((r for r in pnl_rows if r["strategy"] == name), key=lambda r: r["session"])
        month_pnl = sum(r["daily_pnl"] for r in rows)
        capital = rows[-1]["capital"] if rows else 0.0
        loss = -month_pnl / capital if capital else 0.0
        worst_drawdown = max((r["drawdown"] for r in rows), default=0.0)
        reasons, verdict = [], "ok"
        for measure, value, limit in (
            ("drawdown", worst_drawdown, limits.drawdown),
            ("monthly loss", loss, limits.monthly_loss),
        ):
            level = limit.level(value)
            if level == "error":
                verdict = "suspend"
                reasons.append(f"{measure} {value:.2%} > {limit.error:.0%}")
            elif level == "warn":
                verdict = "review" if verdict == "ok" else verdict
                reasons.append(f"{measure} {value:.2%} > {limit.warn:.0%}")
        if missing:
            verdict = "review" if verdict == "ok" else verdict
            reasons.append(f"{len(missing)} session(s) not booked: {', '.join(map(str, missing[:5]))}")
        out.append(
            {
                "month": month,
                "market": market,
                "strategy": name,
                "currency": rows[-1]["currency"] if rows else "",
                "sessions_expected": len(expected_sessions),
                "sessions_booked": len(rows),
                "monthly_pnl": month_pnl,
                "monthly_return": -loss,
                "worst_drawdown": worst_drawdown,
                "fills": int(sum(r["fills"] for r in rows)),
                "average_turnover": sum(r["turnover"] for r in rows) / len(rows) if rows else 0.0,
                "end_equity": rows[-1]["equity"] if rows else 0.0,
                "verdict": verdict,
                "reasons": "; ".join(reasons),
            }
        )
    return out
