"""The dispatcher sensor over a real SQLite table and a fixed clock: due and not due, exactly once
per tick across evaluations and restarts, timezones and DST, bad rows, disabled schedules."""

import datetime as dt

import dagster as dg
import pytest

from batch_assets.defs.scheduling.resources import UserScheduleStoreResource
from batch_assets.defs.scheduling.sensors import SENSOR_NAME, build_dispatcher_sensor
from batch_assets.lib.cron_ticks import watermark_from_cursor
from batch_assets.lib.settings import Settings
from batch_assets.lib.user_schedules import TABLE, SqlUserScheduleStore, UserSchedule

LONG_AGO = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PARIS_DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Europe/Paris")
# Like the vendor days: today's partition exists while the day runs.
NEW_YORK_DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="America/New_York", end_offset=1)


@dg.asset(group_name="test_reports", owners=["team:test"], partitions_def=PARIS_DAYS)
def paris_report() -> None:
    """A daily report in Paris days."""


@dg.asset(group_name="test_reports", owners=["team:test"], partitions_def=PARIS_DAYS)
def paris_summary() -> None:
    """A second daily asset of the same group."""


@dg.asset(group_name="test_ny", owners=["team:test"], partitions_def=NEW_YORK_DAYS)
def new_york_report() -> None:
    """A daily report in New York days."""


@dg.asset(group_name="test_reference", owners=["team:test"])
def reference_table() -> None:
    """An unpartitioned table."""


@dg.op
def noop() -> None:
    pass


@dg.job
def noop_job() -> None:
    noop()


refresh_reference_job = dg.define_asset_job("refresh_reference_job", selection=[reference_table])


class Clock:
    def __init__(self, now: str) -> None:
        self.set(now)

    def set(self, now: str) -> None:
        self.now = dt.datetime.fromisoformat(now.replace("Z", "+00:00"))

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'user_schedules.sqlite'}"


@pytest.fixture
def store(url):
    with SqlUserScheduleStore(url) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock("2026-06-01T04:00:00Z")


@pytest.fixture
def dispatcher(url, clock, tmp_path):
    """Evaluate the sensor as the daemon would: its cursor in, a SensorResult out."""
    settings = Settings(data_dir=tmp_path, user_schedules_max_catchup_ticks=5)
    resources = {"user_schedule_store": UserScheduleStoreResource(url=url)}
    defs = dg.Definitions(
        assets=[paris_report, paris_summary, new_york_report, reference_table],
        jobs=[noop_job, refresh_reference_job],
        sensors=[build_dispatcher_sensor(settings, clock=clock)],
        resources=resources,
    )
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    instance = dg.DagsterInstance.ephemeral()

    def evaluate(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources)
        return sensor(context)

    return evaluate


def schedule(**changes) -> UserSchedule:
    values = {
        "id": "reference-morning",
        "target": "job:refresh_reference_job",
        "cron": "0 7 * * *",
        "timezone": "Europe/Paris",
        "active_since": LONG_AGO,
    }
    return UserSchedule(**(values | changes))


def keys(result: dg.SensorResult) -> list[str]:
    return [r.run_key for r in result.run_requests]


def test_a_schedule_fires_when_its_tick_comes_and_not_before(store, dispatcher, clock) -> None:
    store.add(schedule())
    first = dispatcher(None)  # 06:00 in Paris: not yet
    assert first.run_requests == []
    assert first.skip_reason.skip_message == "No schedule due (1 enabled, 0 disabled)."
    clock.set("2026-06-01T05:00:10Z")  # 07:00:10 in Paris
    due = dispatcher(first.cursor)
    [run] = due.run_requests
    assert run.run_key == "user_schedule:reference-morning:2026-06-01T05:00:00Z"
    assert run.asset_selection == [dg.AssetKey("reference_table")]
    assert run.partition_key is None
    assert run.tags["batch_assets/user_schedule"] == "reference-morning"
    assert run.tags["batch_assets/scheduled_time"] == "2026-06-01T05:00:00Z"
    assert watermark_from_cursor(due.cursor) == clock.now


def test_the_first_evaluation_starts_now_and_fires_nothing_from_the_past(store, dispatcher, clock) -> None:
    """A dispatcher started today does not run yesterday's ticks of old schedules."""
    store.add(schedule(cron="0 * * * *"))
    clock.set("2026-06-01T12:30:00Z")
    result = dispatcher(None)
    assert result.run_requests == []
    assert watermark_from_cursor(result.cursor) == clock.now


def test_two_evaluations_in_the_same_tick_fire_it_once(store, dispatcher, clock) -> None:
    store.add(schedule())
    clock.set("2026-06-01T04:59:50Z")
    before = dispatcher(None)
    clock.set("2026-06-01T05:00:05Z")
    fired = dispatcher(before.cursor)
    clock.set("2026-06-01T05:00:35Z")
    again = dispatcher(fired.cursor)
    assert keys(fired) == ["user_schedule:reference-morning:2026-06-01T05:00:00Z"]
    assert again.run_requests == []
    # A repeated evaluation from the old cursor (the cursor was not saved) asks for the same run
    # key, which the instance does not start twice.
    assert keys(dispatcher(before.cursor)) == keys(fired)


def test_after_a_restart_every_missed_tick_fires_once(store, dispatcher, clock) -> None:
    """The daemon stopped after the 1 June tick and came back on 4 June at 07:30 Paris time."""
    store.add(schedule())
    clock.set("2026-06-01T05:00:10Z")
    saved = dispatcher(watermark_cursor("2026-06-01T04:00:00Z")).cursor
    clock.set("2026-06-04T05:30:00Z")
    restarted = dispatcher(saved)
    assert keys(restarted) == [
        "user_schedule:reference-morning:2026-06-02T05:00:00Z",
        "user_schedule:reference-morning:2026-06-03T05:00:00Z",
        "user_schedule:reference-morning:2026-06-04T05:00:00Z",
    ]
    clock.set("2026-06-04T05:30:30Z")
    assert dispatcher(restarted.cursor).run_requests == []


def test_a_long_outage_fires_only_the_latest_ticks_up_to_the_catch_up_limit(store, dispatcher, clock) -> None:
    store.add(schedule(cron="*/10 * * * *"))
    clock.set("2026-06-03T12:00:00Z")
    result = dispatcher(watermark_cursor("2026-06-01T00:00:00Z"))
    assert keys(result) == [
        f"user_schedule:reference-morning:2026-06-03T{t}:00Z" for t in ("11:20", "11:30", "11:40", "11:50", "12:00")
    ]


def test_a_schedule_added_while_the_sensor_was_paused_starts_when_it_was_added(store, dispatcher, clock) -> None:
    store.add(schedule(cron="0 * * * *", active_since=dt.datetime(2026, 6, 1, 5, 30, tzinfo=dt.UTC)))
    clock.set("2026-06-01T07:10:00Z")
    result = dispatcher(watermark_cursor("2026-06-01T03:00:00Z"))
    assert keys(result) == [
        "user_schedule:reference-morning:2026-06-01T06:00:00Z",
        "user_schedule:reference-morning:2026-06-01T07:00:00Z",
    ]


def test_a_disabled_schedule_does_not_fire_and_re_enabling_does_not_replay_its_pause(store, dispatcher, clock) -> None:
    store.add(schedule(cron="0 * * * *", enabled=False))
    clock.set("2026-06-01T08:10:00Z")
    paused = dispatcher(watermark_cursor("2026-06-01T04:00:00Z"))
    assert paused.run_requests == []
    assert paused.skip_reason.skip_message == "No schedule due (0 enabled, 1 disabled)."
    store.set_enabled("reference-morning", True, now=dt.datetime(2026, 6, 1, 8, 20, tzinfo=dt.UTC))
    clock.set("2026-06-01T09:00:05Z")
    assert keys(dispatcher(paused.cursor)) == ["user_schedule:reference-morning:2026-06-01T09:00:00Z"]


def test_a_tick_in_a_spring_forward_gap_fires_at_the_end_of_the_gap_for_that_day(store, dispatcher, clock) -> None:
    """02:30 does not exist in New York on 8 March 2026: the day's run starts at 03:00 EDT."""
    store.add(
        schedule(
            id="ny-night",
            target="assets:key:new_york_report",
            cron="30 2 * * *",
            timezone="America/New_York",
            partition="tick_day",
        )
    )
    clock.set("2026-03-08T07:00:05Z")
    [run] = dispatcher(watermark_cursor("2026-03-08T06:00:00Z")).run_requests
    assert run.run_key == "user_schedule:ny-night:2026-03-08T07:00:00Z"
    assert run.partition_key == "2026-03-08"


def test_a_repeated_wall_time_on_fall_back_day_fires_once(store, dispatcher, clock) -> None:
    store.add(
        schedule(
            id="ny-night",
            target="assets:key:new_york_report",
            cron="30 1 * * *",
            timezone="America/New_York",
            partition="tick_day",
        )
    )
    clock.set("2026-11-01T08:00:00Z")
    [run] = dispatcher(watermark_cursor("2026-11-01T04:00:00Z")).run_requests
    assert run.run_key == "user_schedule:ny-night:2026-11-01T06:30:00Z"


def test_partition_rules_pick_the_partition_of_the_tick(store, dispatcher, clock) -> None:
    for rule in ("tick_day", "previous_day", "last"):
        store.add(schedule(id=f"reports-{rule}", target="assets:group:test_reports", cron="0 0 * * *", partition=rule))
    clock.set("2026-06-01T22:00:05Z")  # midnight in Paris: the 2 June tick
    result = dispatcher(watermark_cursor("2026-06-01T21:00:00Z"))
    runs = {r.tags["batch_assets/user_schedule"]: r for r in result.run_requests}
    assert {k: r.partition_key for k, r in runs.items()} == {
        "reports-previous_day": "2026-06-01",
        "reports-last": "2026-06-01",  # the last complete Paris day at that instant
    }
    assert runs["reports-last"].asset_selection == [dg.AssetKey("paris_report"), dg.AssetKey("paris_summary")]
    # These Paris days exist once complete: the day that starts at the tick has no partition yet.
    store.add(
        schedule(
            id="ny-evening",
            target="assets:group:test_ny",
            cron="0 18 * * *",
            timezone="America/New_York",
            partition="tick_day",
        )
    )
    clock.set("2026-06-02T22:00:05Z")
    result = dispatcher(result.cursor)
    assert {r.tags["batch_assets/user_schedule"]: r.partition_key for r in result.run_requests} == {
        "reports-previous_day": "2026-06-02",
        "reports-last": "2026-06-02",
        "ny-evening": "2026-06-02",  # New York days exist from their start (end_offset=1), like vendor days
    }


def test_a_priority_tag_sets_the_queue_priority(store, dispatcher, clock) -> None:
    store.add(schedule(tags={"priority": "HIGH", "team": "ops"}))
    clock.set("2026-06-01T05:00:10Z")
    [run] = dispatcher(watermark_cursor("2026-06-01T04:00:00Z")).run_requests
    assert run.tags["dagster/priority"] == "10"
    assert run.tags["team"] == "ops"


def test_a_bad_row_is_reported_in_the_skip_reason_and_the_others_still_fire(store, dispatcher, clock) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with store.engine.begin() as conn:
        conn.execute(
            TABLE.insert().values(
                id="hand-made", target="job:refresh_reference_job", cron="61 * * * *", timezone="UTC",
                active_since=now, created_at=now, updated_at=now,
            )
        )  # fmt: skip
    clock.set("2026-06-01T04:30:00Z")
    only_bad = dispatcher(watermark_cursor("2026-06-01T04:00:00Z"))
    assert only_bad.run_requests == []
    assert (
        "hand-made: schedule 'hand-made': cron: '61 * * * *' is not a valid cron" in only_bad.skip_reason.skip_message
    )
    store.add(schedule())
    clock.set("2026-06-01T05:00:10Z")
    assert keys(dispatcher(only_bad.cursor)) == ["user_schedule:reference-morning:2026-06-01T05:00:00Z"]


@pytest.mark.parametrize(
    ("target", "partition", "problem"),
    [
        ("job:no_such_job", "none", "no job named 'no_such_job'"),
        ("job:noop_job", "none", "materializes no assets"),
        ("assets:key:missing_asset", "none", "selects no materializable asset"),
        ("assets:key:paris_report or key:new_york_report", "tick_day", "mixes assets with different partitions"),
        ("assets:key:paris_report", "none", "set a partition rule"),
        ("job:refresh_reference_job", "tick_day", "on unpartitioned assets: use none"),
    ],
)
def test_a_schedule_that_does_not_fit_the_code_location_is_reported_not_raised(
    store, dispatcher, clock, target, partition, problem
) -> None:
    store.add(schedule(target=target, partition=partition))
    clock.set("2026-06-01T05:00:10Z")
    result = dispatcher(watermark_cursor("2026-06-01T04:00:00Z"))
    assert result.run_requests == []
    assert problem in result.skip_reason.skip_message


def test_a_day_before_the_partitions_start_is_reported(store, dispatcher, clock) -> None:
    store.add(schedule(target="assets:key:paris_report", partition="previous_day"))
    clock.set("2026-01-01T06:00:10Z")  # the 1 January tick runs 31 December: no such partition
    result = dispatcher(watermark_cursor("2026-01-01T05:00:00Z"))
    assert "no partition '2025-12-31'" in result.skip_reason.skip_message


def watermark_cursor(moment: str) -> str:
    from batch_assets.lib.cron_ticks import cursor_for

    return cursor_for(dt.datetime.fromisoformat(moment.replace("Z", "+00:00")))
