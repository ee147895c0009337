"""Run notifications: a message on every success and failure of the jobs that matter.

Two run status sensors turn a finished run into a ``RunNotification`` (run id, job, partition,
status, row counts summed from the run's materializations, a link to the run) and hand it to the
notifier; a third sensor retries whatever the notifier could not deliver. Delivery itself, with
its retries, outbox and idempotency, is plain code in ``batch_assets/lib/notify.py``.
"""

import dagster as dg

from batch_assets.lib.notify import AssetRows, Notifier, RunNotification, build_notifier
from batch_assets.lib.settings import Settings

# Run tags worth repeating in a message: who the run was for and what started it.
TELLING_TAGS = ("vendor", "trigger")
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def notified_jobs(setting: str) -> frozenset[str] | None:
    """The job names of ``BATCH_ASSETS_NOTIFY_JOBS``; None means every job ('*')."""
    names = frozenset(n.strip() for n in setting.split(",") if n.strip())
    return None if "*" in names else names


def run_partition(run: dg.DagsterRun) -> str | None:
    if PARTITION_TAG in run.tags:
        return run.tags[PARTITION_TAG]
    start, end = (run.tags.get(t) for t in RANGE_TAGS)
    return f"{start}...{end}" if start and end else None


def _number(value: object) -> int | None:
    raw = getattr(value, "value", value)
    return int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def materialized_rows(instance: dg.DagsterInstance, run_id: str) -> tuple[AssetRows, ...]:
    """The row counts each materialization of the run reported in its metadata."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    rows = []
    for record in records:
        mat = record.asset_materialization
        if mat is None:
            continue
        counts = {
            m: _number(mat.metadata[m]) if m in mat.metadata else None for m in ("rows_in", "rows_out", "rows_rejected")
        }
        rows.append(AssetRows(asset=mat.asset_key.to_user_string(), partition=mat.partition, **counts))
    return tuple(rows)


def describe_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, status: str, ui_base_url: str, reason: str | None = None
) -> RunNotification:
    record = instance.get_run_record_by_id(run.run_id)
    return RunNotification(
        run_id=run.run_id,
        job_name=run.job_name,
        status=status,
        run_url=f"{ui_base_url.rstrip('/')}/runs/{run.run_id}",
        partition=run_partition(run),
        assets=materialized_rows(instance, run.run_id),
        started_at=record.start_time if record else None,
        ended_at=record.end_time if record else None,
        reason=reason,
        tags={t: run.tags[t] for t in TELLING_TAGS if t in run.tags},
    )


def failure_reason(context: dg.RunFailureSensorContext) -> str:
    """The run's failure message and the first failed step's error, which says what went wrong."""
    lines = [context.failure_event.message or "The run failed."]
    for event in context.get_step_failure_events()[:1]:
        data = event.step_failure_data
        error = data.user_failure_data.description if data.user_failure_data else None
        error = error or (data.error.message.strip() if data.error else None)
        if error:
            lines.append(f"{event.step_key}: {error}")
    return "\n".join(lines)


def build_notification_sensors(settings: Settings, notifier: Notifier | None = None) -> list[dg.SensorDefinition]:
    jobs = notified_jobs(settings.notify_jobs)
    if notifier is None:
        url = settings.notify_webhook_url.get_secret_value() if settings.notify_webhook_url else None
        notifier = build_notifier(
            url,
            settings.data_dir.resolve() / "operations",
            attempts=settings.notify_attempts,
            max_age_seconds=settings.notify_outbox_max_age_hours * 3600,
        )

    def notify(context: dg.RunStatusSensorContext, status: str, reason: str | None = None) -> None:
        run = context.dagster_run
        if jobs is not None and run.job_name not in jobs:
            context.log.debug(f"run {run.run_id} of {run.job_name}: not a notified job")
            return
        try:
            notification = describe_run(context.instance, run, status, settings.ui_base_url, reason)
        except Exception as exc:  # the message without its row counts beats no message at all
            context.log.warning(f"run {run.run_id}: details unavailable ({type(exc).__name__}: {exc})")
            notification = RunNotification(
                run_id=run.run_id,
                job_name=run.job_name,
                status=status,
                run_url=f"{settings.ui_base_url.rstrip('/')}/runs/{run.run_id}",
                partition=run_partition(run),
                reason=reason,
            )
        outcome = notifier.notify(notification.key, notification.payload())
        context.log.info(f"notification {notification.key} via {notifier.transport.describe()}: {outcome.value}")

    # Returning None lets one tick handle every finished run since the cursor (a returned value
    # would end the tick after the first run).
    @dg.run_status_sensor(
        name="run_success_notification_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Notifies operators when a run of a notified job succeeds (BATCH_ASSETS_NOTIFY_JOBS).",
    )
    def run_success_notification_sensor(context: dg.RunStatusSensorContext) -> None:
        notify(context, "SUCCESS")

    @dg.run_failure_sensor(
        name="run_failure_notification_sensor",
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Notifies operators when a run of a notified job fails, with the failed step's error.",
    )
    def run_failure_notification_sensor(context: dg.RunFailureSensorContext) -> None:
        notify(context, "FAILURE", failure_reason(context))

    @dg.sensor(
        name="notification_outbox_sensor",
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Retries notifications that could not be delivered, until they are or grow too old.",
    )
    def notification_outbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        report = notifier.flush()
        for key, error in report.failed.items():
            context.log.warning(f"notification {key} still undelivered: {error}")
        for key in report.dead:
            context.log.error(f"notification {key} undelivered for too long: moved to {notifier.dead_letter_path}")
        return dg.SensorResult(skip_reason=report.describe())

    return [run_success_notification_sensor, run_failure_notification_sensor, notification_outbox_sensor]
