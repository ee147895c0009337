"""Rules a session's bars must keep, as plain functions over a BAR_SCHEMA table.

Price rules apply to traded bars only: a halted bar carries zero or missing prices by design.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from batch_assets.lib.markets.schema import PRICE_COLUMNS

EXAMPLES = 10


@dataclass
class RuleTally:
    """One rule over one or more sessions: rows that break it and a few of them to show."""

    description: str
    failures: int = 0
    sessions: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def add(self, session: str, bad: pa.Table) -> None:
        if bad.num_rows:
            self.failures += bad.num_rows
            self.sessions.append(session)
            room = EXAMPLES - len(self.examples)
            if room > 0:
                self.examples.extend(_jsonable(r) for r in bad.slice(0, room).to_pylist())


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "source"}


def _traded(table: pa.Table) -> pa.Table:
    return table.filter(pc.invert(table["halted"]))


def high_low_violations(table: pa.Table) -> pa.Table:
    """Traded bars where high < max(open, close) or low > min(open, close)."""
    t = _traded(table)
    top = pc.max_element_wise(t["open"], t["close"])
    bottom = pc.min_element_wise(t["open"], t["close"])
    bad = pc.or_kleene(pc.less(t["high"], top), pc.greater(t["low"], bottom))
    return t.filter(pc.fill_null(bad, False))


def negative_volume(table: pa.Table) -> pa.Table:
    """Bars (halted or not) with a volume below zero."""
    return table.filter(pc.fill_null(pc.less(table["volume"], 0), False))


def non_positive_prices(table: pa.Table) -> pa.Table:
    """Traded bars with a missing, zero or negative price."""
    t = _traded(table)
    bad = pa.array([False] * t.num_rows, pa.bool_())
    for column in PRICE_COLUMNS:
        bad = pc.or_(bad, pc.fill_null(pc.less_equal(t[column], 0.0), True))
    return t.filter(bad)


def missing_symbols(previous: Iterable[str] | None, table: pa.Table) -> list[str]:
    """Symbols of the previous session that this session lacks (halted bars count as present)."""
    if previous is None:
        return []
    return sorted(set(previous) - set(table["symbol"].to_pylist()))
