"""The strategies of seed 004, as plain rules over one session's factors.

Each strategy ranks the symbols that pass its filter by a score and keeps the best ``top_n``.
Signals for trading session S are computed from the factors of the session before S, so a
strategy only ever sees what was known at S's open (no look-ahead).

| strategy | filter | score | weights | rebalances |
|---|---|---|---|---|
| short_term | mom_20 > 0 and 30 <= rsi_14 <= 70 | mom_20 / vol_20 | equal, 1/10 | every session |
| medium_term | sma_20 > sma_60 and mom_60 > 0 | mom_60 | inverse volatility, cap 15% | first session of a month |
| long_term | mom_120 > 0 | (1 + mom_120) / (1 + mom_20) - 1 | equal, 1/20 | first session of an ISO week |
| robo | mom_60 > 0 | -vol_20 (calmest first) | inverse volatility, cap 10% | when an operator asks |
| intraday_breakout | mom_20 > 0 and rsi_14 < 70 | mom_20 | equal, 1/5 | every session (day trade) |

Weights are per slot: a strategy that finds fewer than ``top_n`` names leaves the empty slots in
cash, and the excess of a capped weight stays in cash too; so no name ever weighs more than
``max(1/top_n, cap)`` of the strategy's equity at the time of the rebalance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

Rebalance = Literal["every_session", "first_session_of_month", "first_session_of_week", "on_demand"]
OrderStyle = Literal["market", "breakout"]


@dataclass(frozen=True)
class Signal:
    symbol: str
    score: float
    weight: float


@dataclass(frozen=True)
class Strategy:
    name: str
    title: str  # the seed's name of the job that runs it
    description: str
    needs: tuple[str, ...]  # factor columns that must be present (not null, finite)
    eligible: Callable[[dict], bool]
    score: Callable[[dict], float]
    top_n: int
    weighting: Literal["equal", "inverse_volatility"]
    rebalance: Rebalance
    order_style: OrderStyle = "market"
    max_weight: float = 1.0
    breakout_k: float = 0.0  # breakout trigger: the session's open + k * the previous session's range

    def signals(self, factor_rows: Iterable[dict]) -> list[Signal]:
        """The strategy's picks with their weights, best score first (ties by symbol)."""
        usable = [r for r in factor_rows if all(_finite(r.get(c)) for c in self.needs) and self.eligible(r)]
        ranked = sorted(usable, key=lambda r: (-self.score(r), r["symbol"]))[: self.top_n]
        if self.weighting == "equal":
            weights = [1.0 / self.top_n] * len(ranked)
        else:
            inverse = [1.0 / r["vol_20"] for r in ranked]
            scale = len(ranked) / self.top_n / sum(inverse) if ranked else 0.0
            weights = [w * scale for w in inverse]
        return [
            Signal(r["symbol"], float(self.score(r)), min(w, self.max_weight))
            for r, w in zip(ranked, weights, strict=True)
        ]

    def rebalances_on(self, session: date, previous: date | None) -> bool:
        """Whether session ``session`` is a rebalance day (``previous``: the session before it, if any).

        Decided by the partition alone, so a backfill rebalances on the same days as the live schedule.
        """
        if self.rebalance in ("every_session", "on_demand") or previous is None:
            return True
        if self.rebalance == "first_session_of_month":
            return (previous.year, previous.month) != (session.year, session.month)
        return previous.isocalendar()[:2] != session.isocalendar()[:2]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            name="short_term",
            title="short-term-strategy-executor",
            description="Short-term momentum: rising names that are neither oversold nor overbought, "
            "ranked by 20-day momentum per unit of volatility.",
            needs=("mom_20", "rsi_14", "vol_20"),
            eligible=lambda r: r["mom_20"] > 0 and 30 <= r["rsi_14"] <= 70 and r["vol_20"] > 0,
            score=lambda r: r["mom_20"] / r["vol_20"],
            top_n=10,
            weighting="equal",
            rebalance="every_session",
        ),
        Strategy(
            name="medium_term",
            title="medium-term-strategy-executor",
            description="Medium-term trend following: 20-day average above the 60-day one and positive "
            "60-day momentum, weighted by inverse volatility.",
            needs=("sma_20", "sma_60", "mom_60", "vol_20"),
            eligible=lambda r: r["sma_20"] > r["sma_60"] and r["mom_60"] > 0 and r["vol_20"] > 0,
            score=lambda r: r["mom_60"],
            top_n=10,
            weighting="inverse_volatility",
            max_weight=0.15,
            rebalance="first_session_of_month",
        ),
        Strategy(
            name="long_term",
            title="long-term-strategy-executor",
            description="Long-term momentum: 120-day momentum without the last 20 days (which tend to reverse).",
            needs=("mom_120", "mom_20"),
            eligible=lambda r: r["mom_120"] > 0 and r["mom_20"] > -1,
            score=lambda r: (1 + r["mom_120"]) / (1 + r["mom_20"]) - 1,
            top_n=20,
            weighting="equal",
            rebalance="first_session_of_week",
        ),
        Strategy(
            name="robo",
            title="robo-rebalance",
            description="Robo portfolio: the calmest names with positive 60-day momentum, weighted by inverse "
            "volatility; rebalanced only when an operator launches the robo-rebalance job.",
            needs=("mom_60", "vol_20"),
            eligible=lambda r: r["mom_60"] > 0 and r["vol_20"] > 0,
            score=lambda r: -r["vol_20"],
            top_n=20,
            weighting="inverse_volatility",
            max_weight=0.10,
            rebalance="on_demand",
        ),
        Strategy(
            name="intraday_breakout",
            title="intraday-breakout",
            description="Volatility breakout: buy when the price rises half of the previous session's range "
            "above the open, sell at the close of the same session.",
            needs=("mom_20", "rsi_14"),
            eligible=lambda r: r["mom_20"] > 0 and r["rsi_14"] < 70,
            score=lambda r: r["mom_20"],
            top_n=5,
            weighting="equal",
            rebalance="every_session",
            order_style="breakout",
            breakout_k=0.5,
        ),
    )
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}") from None
