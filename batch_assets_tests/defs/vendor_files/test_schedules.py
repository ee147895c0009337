"""The fixed windows tick at the right local time and target today's vendor day."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from croniter import croniter

from batch_assets.lib.settings import Settings
from batch_assets_tests.defs.vendor_files.helpers import slice_defs


def schedule(settings: Settings, name: str) -> dg.ScheduleDefinition:
    return slice_defs(settings).resolve_schedule_def(name)


@pytest.mark.parametrize(
    ("name", "hour", "job"),
    [
        ("process_vendor_inbound_schedule", 6, "process_vendor_inbound_job"),
        ("deliver_vendor_outbound_schedule", 22, "deliver_vendor_outbound_job"),
    ],
)
def test_each_window_ticks_daily_at_its_local_hour_in_the_configured_timezone(local_settings, name, hour, job) -> None:
    settings = local_settings.model_copy(update={"timezone": "America/New_York"})
    sched = schedule(settings, name)
    assert sched.execution_timezone == "America/New_York"
    assert sched.job_name == job
    tz = ZoneInfo("America/New_York")
    # Across the DST change of 2026-11-01: the local hour stays put, the UTC hour moves.
    start = dt.datetime(2026, 10, 30, 0, 30, tzinfo=tz)
    cron = croniter(sched.cron_schedule, start)
    ticks = [cron.get_next(dt.datetime).astimezone(tz) for _ in range(4)]
    assert [t.hour for t in ticks] == [hour] * 4
    assert [t.date() for t in ticks] == [dt.date(2026, 10, 30) + dt.timedelta(days=i) for i in range(4)]
    assert len({t.astimezone(dt.UTC).hour for t in ticks}) == 2


@pytest.mark.parametrize("name", ["process_vendor_inbound_schedule", "deliver_vendor_outbound_schedule"])
def test_a_tick_targets_the_vendor_day_of_its_local_date(local_settings, name) -> None:
    """At 22:00 in New York it is already tomorrow in UTC: the partition must still be New York's today."""
    settings = local_settings.model_copy(update={"timezone": "America/New_York"})
    sched = schedule(settings, name)
    tz = ZoneInfo("America/New_York")
    hour = 6 if "inbound" in name else 22
    tick = dt.datetime(2026, 11, 20, hour, tzinfo=tz)
    defs = slice_defs(settings)
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    requests = sched.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-20"]
