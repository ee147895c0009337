"""The retention job: maintenance of the instance and the file store, not data, so an op job."""

import dagster as dg

from batch_assets.defs.housekeeping.ops import prune_file_store, prune_run_history
from batch_assets.lib.settings import Settings


def build_prune_job(settings: Settings) -> dg.JobDefinition:
    # One small config for the whole job, defaulting to the settings: a dry run is `dry_run: true`.
    @dg.config_mapping(
        config_schema={
            "dry_run": dg.Field(bool, default_value=False, description="Report what would be deleted; delete nothing."),
            "run_history_days": dg.Field(
                float, default_value=settings.retention_run_days, description="Age of the finished runs deleted."
            ),
            "file_days": dg.Field(
                int, default_value=settings.retention_file_days, description="Age of the day folders deleted."
            ),
        }
    )
    def retention_config(values: dict) -> dict:
        dry_run = values["dry_run"]
        return {
            "ops": {
                "prune_run_history": {"config": {"dry_run": dry_run, "older_than_days": values["run_history_days"]}},
                "prune_file_store": {
                    "config": {
                        "dry_run": dry_run,
                        "older_than_days": values["file_days"],
                        "timezone": settings.timezone,
                    }
                },
            }
        }

    @dg.job(
        name="prune_expired_data_job",
        description="Delete run history and staged/rejects/outbound day folders older than their retention ages.",
        # Housekeeping waits behind vendor work in the queue.
        tags={"priority": "LOW", "dagster/priority": "-10"},
        config=retention_config,
    )
    def prune_expired_data_job() -> None:
        prune_run_history()
        prune_file_store()

    return prune_expired_data_job
