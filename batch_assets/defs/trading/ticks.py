"""What a tick of a seed-004 schedule does: pick the partition, and decide whether there is work.

Each ``tick`` of the cron table names one policy here. A policy looks at the clock, the market's
calendar and the file store (and the broker's report token), and returns a ``Decision``: the
session(s) to run with the steps to select, or the reason to skip, which the schedule shows on its
tick. Minute-level policies also return a token describing the state they act on; the schedule
launches one run per token, so an unchanged state does not start a run every minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.broker import SETTLED_STATUSES, Broker
from batch_assets.lib.markets.calendars import previous_session
from batch_assets.lib.markets.crons import CronRow
from batch_assets.lib.markets.pnl import CASH
from batch_assets.lib.markets.strategies import STRATEGIES
from batch_assets.lib.markets.venues import (
    FILLS_DUE_AFTER_CLOSE,
    Venue,
    current_or_next_session,
    get_venue,
    is_trading,
    latest_completed_session,
    session_of_local_day,
    sessions_around,
)
from batch_assets.lib.storage import FileStore, ObjectInfo


@dataclass
class Decision:
    """Run ``sessions`` (one partition, or a range in one run) selecting ``steps``, or skip with ``skip``."""

    sessions: list[date] = field(default_factory=list)
    steps: list[str] | None = None  # asset keys ('a/b/c') to select; None: the whole job
    token: str | None = None  # one run per token: the state this decision acts on
    skip: str | None = None
    month: str | None = None  # for monthly partitions ('YYYY-MM-01')

    @classmethod
    def skipped(cls, reason: str) -> Decision:
        return cls(skip=reason)


@dataclass
class TickInput:
    row: CronRow
    market: str | None
    now: datetime
    store: FileStore
    broker: Broker
    first_session: date | None  # the market's first traded session
    lookback: int
    sessions: list[date] = field(default_factory=list)
    timezone: str = "Asia/Seoul"  # the cron table's

    @property
    def venue(self) -> Venue:
        return get_venue(self.market or "")

    @property
    def name(self) -> str:
        return (self.market or "").upper()

    def targets(self) -> list[str]:
        return self.row.for_market(self.market)[1]

    def stat(self, key: str) -> ObjectInfo | None:
        return self.store.stat(key)

    def previous(self, session: date) -> date | None:
        previous = previous_session(self.market, session)
        return previous if previous is not None and self.first_session and previous >= self.first_session else None

    def recent_sessions(self, include_next: bool = False) -> list[date]:
        """The last ``lookback`` completed sessions from the first traded one on (and the next one)."""
        done = [s for s in self.sessions if self.venue.close_at(s) <= self.now and s >= self.first_session]
        recent = done[-self.lookback :]
        upcoming = current_or_next_session(self.venue, self.sessions, self.now)
        if include_next and upcoming is not None and upcoming >= self.first_session:
            recent.append(upcoming)
        return recent


def _missing_inputs(t: TickInput, session: date) -> list[str]:
    """Input files of ``session``'s targets and orders that are not in the store yet."""
    previous = t.previous(session)
    if previous is None:
        return []
    keys = [
        tl.factors_key(t.market, previous),
        tl.bars_key(t.market, previous),
        tl.positions_key(t.market, previous),
    ]
    return [k for k in keys if t.stat(k) is None]


def _next_session(t: TickInput) -> tuple[date | None, str | None]:
    session = current_or_next_session(t.venue, t.sessions, t.now)
    if session is None:
        return None, f"no {t.name} session ahead in the calendar"
    if session < t.first_session:
        return None, f"{t.name} trading starts on {t.first_session}; the next session is {session}"
    missing = _missing_inputs(t, session)
    if missing:
        return None, f"{t.name} {session}: waiting for {', '.join(missing)}"
    return session, None


def local_session(t: TickInput) -> Decision:
    session = session_of_local_day(t.venue, t.sessions, t.now)
    if session is None:
        local = t.now.astimezone(t.venue.tz).date()
        return Decision.skipped(f"{local} ({local:%A}) is not a {t.name} session: nothing to collect")
    return Decision([session])


def latest_completed(t: TickInput) -> Decision:
    session = latest_completed_session(t.venue, t.sessions, t.now)
    if session is None:
        return Decision.skipped(f"no completed {t.name} session in the calendar window")
    return Decision([session])


def bars_collected(t: TickInput) -> Decision:
    session = latest_completed_session(t.venue, t.sessions, t.now)
    if session is None:
        return Decision.skipped(f"no completed {t.name} session in the calendar window")
    bars = t.stat(tl.bars_key(t.market, session))
    if bars is None:
        return Decision.skipped(f"{t.name} {session}: waiting for {tl.bars_key(t.market, session)}")
    factors = t.stat(tl.factors_key(t.market, session))
    if factors is not None and factors.modified >= bars.modified:
        return Decision.skipped(f"{t.name} {session}: factors are already computed from the current bars")
    return Decision([session])


def targets_due(t: TickInput) -> Decision:
    session, why = _next_session(t)
    if session is None:
        return Decision.skipped(why)
    missing = [k for k in t.targets() if t.stat(_target_file(t.market, k, session)) is None]
    if not missing:
        return Decision.skipped(f"{t.name} {session}: every target portfolio is already written")
    return Decision([session], steps=missing)


def strategy_due(t: TickInput) -> Decision:
    session, why = _next_session(t)
    if session is None:
        return Decision.skipped(why)
    if t.stat(tl.target_key(t.market, t.row.strategy, session)) is not None:
        return Decision.skipped(f"{t.name} {session}: {t.row.strategy} already executed (its target is written)")
    return Decision([session])


def orders_due(t: TickInput) -> Decision:
    session, why = _next_session(t)
    if session is None:
        return Decision.skipped(why)
    written = (t.stat(tl.target_key(t.market, name, session)) for name in STRATEGIES)
    targets = [info for info in written if info is not None]
    if not targets:
        return Decision.skipped(f"{t.name} {session}: no target portfolio is written yet")
    orders = t.stat(tl.orders_key(t.market, session))
    if orders is not None and orders.modified >= max(i.modified for i in targets):
        return Decision.skipped(f"{t.name} {session}: orders are placed for every written target")
    return Decision([session])


def _fills_status(t: TickInput, session: date) -> list[str] | None:
    rows = tl.read_rows(t.store, tl.fills_key(t.market, session))
    return None if rows is None else [r["status"] for r in rows]


def open_orders(t: TickInput) -> Decision:
    for session in t.recent_sessions(include_next=True):
        if t.stat(tl.orders_key(t.market, session)) is None:
            continue
        statuses = _fills_status(t, session)
        if statuses is not None and "open" not in statuses:
            continue
        token = f"{t.market}:{session}:{t.broker.report_token(t.market, session)}"
        return Decision([session], token=token)
    return Decision.skipped(f"no open {t.name} orders in the last {t.lookback} session(s)")


def unfilled_after_close(t: TickInput) -> Decision:
    for session in t.recent_sessions():
        if t.now < t.venue.close_at(session) + FILLS_DUE_AFTER_CLOSE[t.market]:
            continue
        if t.stat(tl.orders_key(t.market, session)) is None:
            continue
        statuses = _fills_status(t, session)
        if statuses is not None and all(s in SETTLED_STATUSES for s in statuses):
            continue
        token = f"{t.market}:{session}:unfilled:{t.broker.report_token(t.market, session)}"
        return Decision([session], token=token)
    return Decision.skipped(f"no unfilled {t.name} orders after a close in the last {t.lookback} session(s)")


def unbooked_session(t: TickInput) -> Decision:
    """The oldest recent session whose PnL is missing or older than its bars, up to the last with bars."""
    pending: list[date] = []
    versions = []
    for session in t.recent_sessions():
        bars = t.stat(tl.bars_key(t.market, session))
        pnl = t.stat(tl.pnl_key(t.market, session))
        if bars is None:
            if pending:
                break
            if pnl is None:
                return Decision.skipped(f"{t.name} {session}: waiting for {tl.bars_key(t.market, session)}")
            continue
        if pending or pnl is None or pnl.modified < bars.modified:
            pending.append(session)
            versions.append(bars.version)
    if not pending:
        return Decision.skipped(f"every {t.name} session up to the last completed one is booked")
    previous = t.previous(pending[0])
    if previous is not None and t.stat(tl.positions_key(t.market, previous)) is None:
        return Decision.skipped(
            f"{t.name} {pending[0]}: its previous session {previous} is not booked; book the sessions in "
            f"order from the first unbooked one (a backfill of record_{t.market}_daily_pnl_job)"
        )
    return Decision(pending, token=f"{t.market}:{pending[0]}..{pending[-1]}:{'|'.join(versions)}")


def positions_while_trading(t: TickInput) -> Decision:
    if not is_trading(t.venue, t.sessions, t.now):
        local = t.now.astimezone(t.venue.tz)
        return Decision.skipped(f"{t.name} is not trading at {local:%Y-%m-%d %H:%M %Z}")
    key_of = tl.pnl_key if t.row.targets[0].startswith("pnl/") else tl.positions_key
    for session in reversed(t.recent_sessions()):
        info = t.stat(key_of(t.market, session))
        if info is None:
            continue
        rows = tl.read_rows(t.store, tl.positions_key(t.market, session)) or []
        held = sum(1 for r in rows if r["kind"] != CASH)
        if not held:
            return Decision.skipped(f"no open {t.name} positions after {session}")
        return Decision([session], token=f"{t.row.id}:{t.market}:{session}:{info.version}")
    return Decision.skipped(f"no booked {t.name} session in the last {t.lookback}")


def previous_month(t: TickInput) -> Decision:
    local = t.now.astimezone(ZoneInfo(t.timezone)).date()
    last_month = local.replace(day=1) - timedelta(days=1)
    return Decision(month=last_month.replace(day=1).isoformat())


def _target_file(market: str, asset_key: str, session: date) -> str:
    strategy = asset_key.rsplit("/", 1)[-1]
    return tl.target_key(market, strategy, session)


POLICIES: dict[str, Callable[[TickInput], Decision]] = {
    "local_session": local_session,
    "latest_completed": latest_completed,
    "bars_collected": bars_collected,
    "targets_due": targets_due,
    "strategy_due": strategy_due,
    "orders_due": orders_due,
    "open_orders": open_orders,
    "unfilled_after_close": unfilled_after_close,
    "unbooked_session": unbooked_session,
    "positions_while_trading": positions_while_trading,
    "previous_month": previous_month,
}


def decide(t: TickInput) -> Decision:
    if t.market is not None and not t.sessions:
        t.sessions = sessions_around(t.market, t.now)
    return POLICIES[t.row.tick](t)
