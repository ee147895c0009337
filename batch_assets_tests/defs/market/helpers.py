"""Building blocks for market and factor slice tests: the slices on given settings, runs over ranges."""

from __future__ import annotations

import dagster as dg

from batch_assets.defs.factors.definitions import build_factors
from batch_assets.defs.market.definitions import build_market
from batch_assets.defs.resources import build_resources
from batch_assets.lib.settings import Settings

BARS = {ex: dg.AssetKey(["market", ex, "daily_bars"]) for ex in ("krx", "us")}
FACTORS = {ex: dg.AssetKey(["factors", ex, "daily"]) for ex in ("krx", "us")}


def markets_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        build_market(settings), build_factors(settings), dg.Definitions(resources=build_resources(settings))
    )


def run_assets(
    settings: Settings,
    keys: list[dg.AssetKey],
    first: str,
    last: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One run of ``keys`` over the sessions ``first``..``last`` (one partition when ``last`` is None)."""
    job = markets_defs(settings).resolve_implicit_global_asset_job_def()
    instance = instance or dg.DagsterInstance.ephemeral()
    if last is None:
        return job.execute_in_process(
            partition_key=first, asset_selection=keys, instance=instance, raise_on_error=False
        )
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return job.execute_in_process(asset_selection=keys, instance=instance, tags=tags, raise_on_error=False)


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}
