"""One Dagster job per row of the cron table and market: its targets are the row's asset keys or checks."""

from typing import Any

import dagster as dg

from batch_assets.lib.markets.crons import CronRow, CronTable

SEED_JOB_TAG = "batch_assets/seed_job"


def parse_targets(targets: list[str]) -> tuple[list[dg.AssetKey], list[dg.AssetCheckKey]]:
    """'a/b/c' is an asset key, 'a/b/c:name' the check 'name' on it."""
    assets, checks = [], []
    for target in targets:
        key, _, check = target.partition(":")
        if check:
            checks.append(dg.AssetCheckKey(dg.AssetKey.from_user_string(key), check))
        else:
            assets.append(dg.AssetKey.from_user_string(key))
    return assets, checks


def is_checks_only(row: CronRow) -> bool:
    return all(":" in t for t in row.targets)


def build_cron_jobs(table: CronTable) -> dict[str, Any]:
    jobs = {}
    for row in table.jobs:
        for market in row.markets or [None]:
            name, targets = row.for_market(market)
            assets, checks = parse_targets(targets)
            if assets and checks:
                raise ValueError(f"{row.id}: a job targets assets or checks, not both")
            # Selecting assets brings their checks along; a checks-only job runs just the checks.
            selection = dg.AssetSelection.assets(*assets) if assets else dg.AssetSelection.checks(*checks)
            jobs[name] = dg.define_asset_job(
                name,
                selection=selection,
                description=f"{row.id} ({row.name}): {row.description}",
                tags={SEED_JOB_TAG: row.id, **({"market": market} if market else {})},
            )
    return jobs
