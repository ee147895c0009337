"""Risk-event checks on a market's daily PnL: drawdown, concentration and exposure limits.

They run with the PnL asset (on the run's sessions) and alone in the risk-event-alert job, whose
schedule names the session in the run tag ``batch_assets/session``; otherwise the latest booked
session is judged. A breach past the warning level is a WARN, past the error level an ERROR; the
metadata lists every breach (strategy or symbol, value, limit).
"""

from collections.abc import Callable

import dagster as dg

from batch_assets.defs.pnl.assets import pnl_key
from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.risk import (
    RiskLimits,
    Verdict,
    concentration_verdict,
    drawdown_verdict,
    exposure_verdict,
)
from batch_assets.lib.markets.trading_steps import sessions_for_check

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def _risk_check(
    market: str, name: str, description: str, judge: Callable[[list[dict], RiskLimits], Verdict], limits: RiskLimits
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=pnl_key(market), name=name, description=description)
    def _check(context: dg.AssetCheckExecutionContext, file_store: FileStoreResource) -> dg.AssetCheckResult:
        store = file_store.store()
        op = context.op_execution_context
        sessions = sessions_for_check(
            list(op.partition_keys) if op.has_partitions else None,
            context.run.tags.get(tl.SESSION_TAG),
            store,
            f"pnl/{market}/daily/",
        )
        rows = []
        for session in sessions:
            for row in tl.read_rows(store, tl.pnl_key(market, session)) or []:
                # Over several sessions (a backfill) every breach says which session it is from.
                rows.append(row if len(sessions) == 1 else {**row, "strategy": f"{session} {row['strategy']}"})
        verdict = judge(rows, limits)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=SEVERITY.get(verdict.level, dg.AssetCheckSeverity.WARN),
            description=verdict.summary(),
            metadata={
                "sessions": dg.MetadataValue.json([str(s) for s in sessions]),
                "worst": verdict.worst,
                "breaches": dg.MetadataValue.json(verdict.breaches[:50]),
            },
        )

    return _check


def build_risk_checks(market: str, limits: RiskLimits) -> list[dg.AssetChecksDefinition]:
    return [
        _risk_check(
            market,
            "drawdown_within_limit",
            f"No strategy, nor the total, is more than {limits.drawdown.warn:.0%} (WARN) or "
            f"{limits.drawdown.error:.0%} (ERROR) below its peak equity.",
            drawdown_verdict,
            limits,
        ),
        _risk_check(
            market,
            "concentration_within_limit",
            f"No single symbol is more than {limits.concentration.warn:.0%} (WARN) or "
            f"{limits.concentration.error:.0%} (ERROR) of a strategy's or the total equity.",
            concentration_verdict,
            limits,
        ),
        _risk_check(
            market,
            "exposure_within_limit",
            f"Gross exposure (market value / equity) stays at most {limits.exposure.warn:.0%} (WARN) or "
            f"{limits.exposure.error:.0%} (ERROR): above 100% the cash went negative.",
            exposure_verdict,
            limits,
        ),
    ]
