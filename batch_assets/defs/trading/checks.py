"""Checks of a market's trading: unfilled orders after the close, positions past their stop-loss.

Each runs with its asset (on the run's sessions) and alone in a checks-only job started by a
minute-level schedule, which names the session in the run tag ``batch_assets/session`` (a
checks-only run has no partition). Without either, the latest session written is checked.
"""

import datetime as dt

import dagster as dg

from batch_assets.defs.resources import FileStoreResource
from batch_assets.defs.trading.assets import step_key
from batch_assets.defs.trading.resources import BrokerResource
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.pnl import CASH
from batch_assets.lib.markets.risk import RiskLimits, stop_loss_verdict
from batch_assets.lib.markets.trading_steps import sessions_for_check
from batch_assets.lib.markets.venues import FILLS_DUE_AFTER_CLOSE, get_venue
from batch_assets.lib.storage import FileStore

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def sessions_to_check(context: dg.AssetCheckExecutionContext, store: FileStore, prefix: str) -> list[dt.date]:
    op = context.op_execution_context
    keys = list(op.partition_keys) if op.has_partitions else None
    return sessions_for_check(keys, context.run.tags.get(tl.SESSION_TAG), store, prefix)


def build_trading_checks(market: str, limits: RiskLimits) -> list:
    venue = get_venue(market)
    fills_key, positions_key = step_key(market, "fills"), step_key(market, "positions")

    @dg.asset_check(
        asset=fills_key,
        name="orders_filled_by_close",
        description="Every order of the session is filled once its fills are due after the close "
        f"({FILLS_DUE_AFTER_CLOSE[market]} later); open, expired, partially filled or rejected orders alert.",
    )
    def orders_filled_by_close(
        context: dg.AssetCheckExecutionContext, file_store: FileStoreResource, broker: BrokerResource
    ) -> dg.AssetCheckResult:
        store = file_store.store()
        brk = broker.broker(store)
        tagged_now = context.run.tags.get(tl.TICK_TIME_TAG)
        now = dt.datetime.fromisoformat(tagged_now) if tagged_now else dt.datetime.now(dt.UTC)
        open_late, expired, rejected, partial, checked = [], [], [], [], 0
        for session in sessions_to_check(context, store, f"trading/{market}/orders/"):
            rows = brk.executions(market, session)
            checked += len({r["client_order_id"] for r in rows})
            closed = now >= venue.close_at(session) + FILLS_DUE_AFTER_CLOSE[market]
            for r in rows:
                label = f"{session} {r['strategy']}:{r['symbol']} ({r['client_order_id']})"
                if r["status"] == "open" and closed:
                    open_late.append(label)
                elif r["status"] == "expired":
                    expired.append(f"{label}: {r['reason']}")
                elif r["status"] == "rejected":
                    rejected.append(f"{label}: {r['reason']}")
                elif r["status"] == "partially_filled" and r["leg"] == "entry":
                    partial.append(f"{label}: {r['quantity']} of {r['ordered_quantity']}")
        problems = len(open_late) + len(expired) + len(rejected) + len(partial)
        return dg.AssetCheckResult(
            passed=problems == 0,
            severity=dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(open_late)} open after the close, {len(expired)} expired, {len(partial)} partially filled, "
                f"{len(rejected)} rejected of {checked} order(s)"
            ),
            metadata={
                "orders": checked,
                "open_after_close": dg.MetadataValue.json(open_late[:50]),
                "expired": dg.MetadataValue.json(expired[:50]),
                "partially_filled": dg.MetadataValue.json(partial[:50]),
                "rejected": dg.MetadataValue.json(rejected[:50]),
                "judged_at": now.isoformat(),
            },
        )

    @dg.asset_check(
        asset=positions_key,
        name="positions_within_stop_loss",
        description=f"No open position has lost more than {limits.stop_loss.warn:.0%} (WARN) or "
        f"{limits.stop_loss.error:.0%} (ERROR) against its average cost: exit candidates are listed.",
    )
    def positions_within_stop_loss(
        context: dg.AssetCheckExecutionContext, file_store: FileStoreResource
    ) -> dg.AssetCheckResult:
        store = file_store.store()
        rows = []
        for session in sessions_to_check(context, store, f"trading/{market}/positions/"):
            rows += [r for r in tl.read_rows(store, tl.positions_key(market, session)) or [] if r["kind"] != CASH]
        verdict = stop_loss_verdict(rows, limits)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=SEVERITY.get(verdict.level, dg.AssetCheckSeverity.WARN),
            description=verdict.summary(),
            metadata={
                "positions": len(rows),
                "worst_loss": verdict.worst,
                "exit_candidates": dg.MetadataValue.json(verdict.breaches[:50]),
            },
        )

    return [orders_filled_by_close, positions_within_stop_loss]
