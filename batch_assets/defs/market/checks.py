"""Checks on daily bars, evaluated by the bars asset itself over the sessions it just wrote."""

import dagster as dg

from batch_assets.lib.markets.checks import RuleTally

HIGH_LOW = "high_low_consistent"
VOLUME = "volume_non_negative"
PRICES = "prices_positive_unless_halted"
NO_GAPS = "no_missing_symbols"
MISSING_SHOWN = 50


def bar_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    # The price rules block: factors computed from impossible bars would mislead every strategy.
    # A missing symbol only warns: a delisting or a suspension without a bar is legitimate.
    return [
        dg.AssetCheckSpec(
            HIGH_LOW,
            asset=asset_key,
            blocking=True,
            description="Every traded bar has high >= max(open, close) and low <= min(open, close).",
        ),
        dg.AssetCheckSpec(VOLUME, asset=asset_key, blocking=True, description="No bar has a negative volume."),
        dg.AssetCheckSpec(
            PRICES,
            asset=asset_key,
            blocking=True,
            description="Every price of a traded bar is present and positive; only halted bars may lack one.",
        ),
        dg.AssetCheckSpec(
            NO_GAPS,
            asset=asset_key,
            description="Every symbol of the previous session has a bar (halted or not) in the next session.",
        ),
    ]


def rule_result(name: str, tally: RuleTally) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=tally.passed,
        metadata={
            "failing_rows": tally.failures,
            "failing_sessions": dg.MetadataValue.json(tally.sessions[:MISSING_SHOWN]),
            "examples": dg.MetadataValue.json(tally.examples),
        },
        description=None if tally.passed else f"{tally.failures} bar(s) break the rule: {tally.description}",
    )


def gap_result(missing: dict[str, list[str]], not_compared: list[str]) -> dg.AssetCheckResult:
    """``missing``: session -> symbols of the previous session it lacks; ``not_compared``: sessions whose
    previous session has no bars file to compare with."""
    count = sum(len(v) for v in missing.values())
    shown = {session: symbols[:MISSING_SHOWN] for session, symbols in missing.items()}
    described = "; ".join(
        f"{day}: {', '.join(symbols[:10])}{' …' if len(symbols) > 10 else ''}" for day, symbols in missing.items()
    )
    return dg.AssetCheckResult(
        check_name=NO_GAPS,
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "missing_symbols": count,
            "missing_by_session": dg.MetadataValue.json(shown),
            "sessions_not_compared": dg.MetadataValue.json(not_compared),
        },
        description=f"{count} symbol(s) of the previous session missing: {described}" if missing else None,
    )
