"""Retention: delete old run history from the instance and old derived files from the file store.

Both steps take a dry run (``dry_run: true`` in the run config): they then report in their output
metadata exactly what a real run would delete, and delete nothing.
"""

import datetime as dt

import dagster as dg
from pydantic import Field

from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.cron_ticks import utc_text
from batch_assets.lib.retention import cutoff_day, expired_folders, prune_folders

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
SHOWN = 50  # ids and folders listed in metadata; the counts cover everything


class PruneRunsConfig(dg.Config):
    dry_run: bool = Field(False, description="Report what would be deleted; delete nothing.")
    older_than_days: float = Field(description="Finished runs created before now minus this are deleted.")
    max_runs: int = Field(5000, ge=1, description="At most this many runs per execution (oldest first).")
    keep_latest_materializations: bool = Field(
        True,
        description="Keep an old run that holds the latest materialization of an asset partition: deleting "
        "it would turn that partition back to 'missing' in the catalog.",
    )


class PruneFilesConfig(dg.Config):
    dry_run: bool = Field(False, description="Report what would be deleted; delete nothing.")
    older_than_days: int = Field(description="Day folders of staged, rejects and outbound older than this go.")
    timezone: str = Field(description="Timezone of the vendor days.")


def _holds_latest_materialization(instance: dg.DagsterInstance, run_id: str, latest: dict) -> bool:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        entry = record.event_log_entry
        key = (entry.asset_materialization.asset_key, entry.asset_materialization.partition)
        if key not in latest:
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key[0], asset_partitions=[key[1]] if key[1] else None), limit=1
            ).records
            latest[key] = found[0].run_id if found else None
        if latest[key] == run_id:
            return True
    return False


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Delete finished runs (and their event logs and compute logs) older than the retention age.",
)
def prune_run_history(context: dg.OpExecutionContext, config: PruneRunsConfig) -> dg.Output:
    instance = context.instance
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=config.older_than_days)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff), limit=config.max_runs, ascending=True
    )
    doomed, kept, latest = [], [], {}
    for record in records:
        run_id = record.dagster_run.run_id
        if config.keep_latest_materializations and _holds_latest_materialization(instance, run_id, latest):
            kept.append(run_id)
        else:
            doomed.append(record)
    if not config.dry_run:
        for record in doomed:
            run_id = record.dagster_run.run_id
            instance.delete_run(run_id)
            try:
                instance.compute_log_manager.delete_logs(prefix=[run_id])
            except NotImplementedError:
                context.log.debug(f"compute logs of {run_id} are kept by this log manager")
    verb = "would delete" if config.dry_run else "deleted"
    context.log.info(
        f"{verb} {len(doomed)} run(s) created before {utc_text(cutoff)}; "
        f"kept {len(kept)} holding a latest materialization"
    )
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "cutoff": utc_text(cutoff),
            "runs_examined": len(records),
            "runs_deleted": 0 if config.dry_run else len(doomed),
            "runs_to_delete": len(doomed),
            "runs_kept_latest_materialization": len(kept),
            "more_may_remain": len(records) == config.max_runs,
            "oldest_created": utc_text(doomed[0].create_timestamp) if doomed else "",
            "run_ids": dg.MetadataValue.json([r.dagster_run.run_id for r in doomed[:SHOWN]]),
        },
    )


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Delete day folders of staged, rejects and outbound files older than the retention age.",
)
def prune_file_store(
    context: dg.OpExecutionContext, config: PruneFilesConfig, file_store: FileStoreResource
) -> dg.Output:
    store = file_store.store()
    cutoff = cutoff_day(dt.datetime.now(dt.UTC), config.timezone, config.older_than_days)
    folders = list(expired_folders(store, cutoff))
    deleted = 0 if config.dry_run else prune_folders(store, folders)
    files, size = sum(f.files for f in folders), sum(f.bytes for f in folders)
    verb = "would delete" if config.dry_run else "deleted"
    context.log.info(f"{verb} {files} file(s) in {len(folders)} day folder(s) before {cutoff}")
    by_area = {}
    for folder in folders:
        by_area[folder.area] = by_area.get(folder.area, 0) + folder.files
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "oldest_day_kept": cutoff.isoformat(),
            "folders_to_delete": len(folders),
            "files_to_delete": files,
            "bytes_to_delete": size,
            "files_deleted": deleted,
            "files_by_area": dg.MetadataValue.json(by_area),
            "folders": dg.MetadataValue.json([f.prefix for f in folders[:SHOWN]]),
        },
    )
