"""The dispatcher: one sensor that fires every due tick of every user-defined schedule, once.

Exactly once per tick rests on two things. The cursor is a watermark (the last evaluated time):
a tick fires on the evaluation whose window ``(watermark, now]`` contains it, so two evaluations
never share a tick and a daemon restart resumes where the watermark stopped. And each request
carries the run key ``user_schedule:<id>:<tick>``: should a tick be requested again (the daemon
died after submitting runs but before saving the cursor), Dagster starts no second run for it.
"""

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg

from batch_assets.defs.scheduling.resources import UserScheduleStoreResource
from batch_assets.lib.cron_ticks import cursor_for, latest_ticks, utc_text, watermark_from_cursor
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs.model import Priority
from batch_assets.lib.user_schedules import SCHEDULE_TAG, TICK_TAG, UserSchedule, parse_selection, run_key, tick_day

SENSOR_NAME = "user_schedule_dispatcher_sensor"


class TargetError(ValueError):
    """A schedule whose target or partition rule does not fit the code location."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def resolve_target(
    repo: dg.RepositoryDefinition, schedule: UserSchedule
) -> tuple[list[dg.AssetKey], dg.PartitionsDefinition | None]:
    """The materializable asset keys a schedule targets and their one partitions definition."""
    graph = repo.asset_graph
    if schedule.target_kind == "job":
        if not repo.has_job(schedule.target_value):
            raise TargetError(f"no job named '{schedule.target_value}' in this code location")
        keys = set(repo.get_job(schedule.target_value).asset_layer.executable_asset_keys)
        if not keys:
            raise TargetError(f"job '{schedule.target_value}' materializes no assets; user schedules run assets")
    else:
        try:
            keys = set(parse_selection(schedule.target_value).resolve(graph))
        except Exception as exc:  # unknown keys and groups raise several error types
            raise TargetError(f"selection '{schedule.target_value}': {str(exc).splitlines()[0]}") from None
    keys = {k for k in keys if graph.get(k).is_materializable}
    if not keys:
        raise TargetError(f"'{schedule.target}' selects no materializable asset")
    partitions = {graph.get(k).partitions_def for k in keys} - {None}
    if len(partitions) > 1:
        raise TargetError(f"'{schedule.target}' mixes assets with different partitions; split it in two schedules")
    return sorted(keys, key=lambda k: k.to_user_string()), next(iter(partitions), None)


def partition_key_for(
    schedule: UserSchedule, tick: dt.datetime, partitions_def: dg.PartitionsDefinition | None
) -> str | None:
    """The partition a tick runs, by the schedule's rule, checked against the assets' partitions."""
    if partitions_def is None:
        if schedule.partition != "none":
            raise TargetError(f"partition rule '{schedule.partition}' on unpartitioned assets: use none")
        return None
    if schedule.partition == "none":
        raise TargetError("the assets are partitioned: set a partition rule (last, tick_day, previous_day)")
    keys = partitions_def.get_partition_keys(current_time=tick)
    key = (keys[-1] if keys else None) if schedule.partition == "last" else tick_day(schedule, tick)
    if key is None or key not in keys:
        raise TargetError(f"no partition '{key}' exists at {utc_text(tick)}")
    return key


def run_tags(schedule: UserSchedule, tick: dt.datetime) -> dict[str, str]:
    tags = {**schedule.tags, SCHEDULE_TAG: schedule.id, TICK_TAG: utc_text(tick)}
    # A schedule tagged with a priority queues like a vendor run of that priority.
    if tags.get("priority") in Priority.__members__ and "dagster/priority" not in tags:
        tags["dagster/priority"] = str(Priority(tags["priority"]).run_priority)
    return tags


def build_dispatcher_sensor(settings: Settings, clock: Callable[[], dt.datetime] = utc_now) -> dg.SensorDefinition:
    max_catchup = settings.user_schedules_max_catchup_ticks

    @dg.sensor(
        name=SENSOR_NAME,
        # Any asset can be a schedule's target; each request narrows the run to its own assets.
        asset_selection=dg.AssetSelection.all(),
        minimum_interval_seconds=settings.user_schedules_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts the runs of user-defined schedules (batch-assets schedules ...) when their ticks are due.",
    )
    def user_schedule_dispatcher_sensor(
        context: dg.SensorEvaluationContext, user_schedule_store: UserScheduleStoreResource
    ) -> dg.SensorResult:
        now = clock()
        # A first tick starts now: a schedule never fires for times before the dispatcher ran.
        watermark = min(watermark_from_cursor(context.cursor) or now, now)
        store = user_schedule_store.store()
        try:
            rows = store.rows()
        finally:
            store.close()
        requests: list[dg.RunRequest] = []
        notes: list[str] = []
        enabled = disabled = 0
        for row in rows:
            if row.schedule is None:
                notes.append(f"{row.id}: {row.problem}")
                continue
            schedule = row.schedule
            if not schedule.enabled:
                disabled += 1
                continue
            enabled += 1
            ticks, older_left_out = latest_ticks(
                schedule.cron, schedule.timezone, max(watermark, schedule.active_since), now, max_catchup
            )
            if older_left_out:
                notes.append(
                    f"{schedule.id}: more than {max_catchup} ticks were due since {utc_text(watermark)}; "
                    f"fired the latest {max_catchup}, left out the older ones"
                )
            if not ticks:
                continue
            try:
                keys, partitions_def = resolve_target(context.repository_def, schedule)
            except TargetError as exc:
                notes.append(f"{schedule.id}: {exc}")
                continue
            for tick in ticks:
                try:
                    partition_key = partition_key_for(schedule, tick, partitions_def)
                except TargetError as exc:
                    notes.append(f"{schedule.id} at {utc_text(tick)}: {exc}")
                    continue
                context.log.info(
                    f"{schedule.id}: tick {tick.astimezone(ZoneInfo(schedule.timezone)).isoformat()} "
                    f"-> {schedule.target}" + (f" [{partition_key}]" if partition_key else "")
                )
                requests.append(
                    dg.RunRequest(
                        run_key=run_key(schedule.id, tick),
                        asset_selection=keys,
                        partition_key=partition_key,
                        run_config=schedule.run_config,
                        tags=run_tags(schedule, tick),
                    )
                )
        for note in notes:
            context.log.warning(note)
        skip = None
        if not requests:
            skip = f"No schedule due ({enabled} enabled, {disabled} disabled)."
            if notes:
                skip += f" Problems: {'; '.join(notes[:5])}" + (f" (+{len(notes) - 5} more)" if len(notes) > 5 else "")
        return dg.SensorResult(run_requests=requests, cursor=cursor_for(max(now, watermark)), skip_reason=skip)

    return user_schedule_dispatcher_sensor
