"""The housekeeping slice's names and its daily tick, pinned: operators find them by name."""

import datetime as dt

import dagster as dg

from batch_assets.defs.housekeeping.definitions import build_housekeeping
from batch_assets.defs.resources import build_resources
from batch_assets.lib.cron_ticks import latest_ticks, utc_text
from batch_assets.lib.settings import Settings


def slice_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(build_housekeeping(settings), dg.Definitions(resources=build_resources(settings)))


def test_the_retention_job_and_schedule_are_pinned_and_run_daily_in_the_exchange_timezone(tmp_path) -> None:
    defs = slice_defs(Settings(data_dir=tmp_path, timezone="Asia/Seoul"))
    repo = defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {"prune_expired_data_job"}
    [schedule] = repo.schedule_defs
    assert schedule.name == "prune_expired_data_schedule"
    assert schedule.job_name == "prune_expired_data_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * *", "Asia/Seoul")
    # 03:00 in Seoul is 18:00 UTC the day before: between the nightly and the morning windows.
    ticks, _ = latest_ticks(
        schedule.cron_schedule,
        schedule.execution_timezone,
        dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, tzinfo=dt.UTC),
    )
    assert [utc_text(t) for t in ticks] == ["2026-11-20T18:00:00Z", "2026-11-21T18:00:00Z"]


def test_the_job_defaults_to_the_settings_ages_and_queues_as_low_priority(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, retention_run_days=45, retention_file_days=7)
    job = slice_defs(settings).resolve_job_def("prune_expired_data_job")
    assert job.tags["priority"] == "LOW"
    assert job.tags["dagster/priority"] == "-10"
    config = job.config_mapping.resolve_from_unvalidated_config({})
    assert config["ops"]["prune_run_history"]["config"] == {"dry_run": False, "older_than_days": 45.0}
    assert config["ops"]["prune_file_store"]["config"]["older_than_days"] == 7
