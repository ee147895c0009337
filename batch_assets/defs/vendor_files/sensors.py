"""The arrival sensor: new inbound files become one run per vendor and day (or, with
``arrival_vendors_per_run`` above 1, runs shared by the vendor days ready in one tick)."""

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import paramiko

from batch_assets.defs.resources import FileStoreResource
from batch_assets.defs.vendor_files.assets import vendor_key, vendor_run_selection
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.arrivals import ArrivalCursor, ArrivalPlan, group_vendor_days, plan_arrivals, vendor_lane
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore, ObjectInfo
from batch_assets.lib.transfer.sftp import SftpConfigError
from batch_assets.lib.transfer.sftp import connect as sftp_connect
from batch_assets.lib.transfer.vendor_sftp import pull_new_files


def watched_objects(
    store: FileStore, specs: dict[str, VendorSpec], oldest_day: str
) -> tuple[Iterator[ObjectInfo], dict[str, str]]:
    """Inbound files of known vendors from ``oldest_day`` on, and what else sits in inbound/."""
    strays: dict[str, str] = {}
    folders, files = store.list_children(f"{layout.INBOUND}/")
    for obj in files:
        strays[obj.key] = "expected inbound/<vendor_id>/<YYYY-MM-DD>/<file>"
    for folder in folders:
        vendor_id = folder.rstrip("/").rsplit("/", 1)[-1]
        if vendor_id not in specs:
            strays[folder] = f"no spec for vendor '{vendor_id}' (add vendors/{vendor_id}.yaml)"

    def listing() -> Iterator[ObjectInfo]:
        for vendor_id in specs:
            prefix = f"{layout.INBOUND}/{vendor_id}/"
            # Day folders sort by date, so the listing starts at the oldest watched day.
            yield from store.list(prefix, start_after=f"{prefix}{oldest_day}")

    return listing(), strays


def build_arrival_sensor(
    specs: list[VendorSpec],
    partitions_def: dg.DailyPartitionsDefinition,
    job: Any,
    settings: Settings,
) -> dg.SensorDefinition:
    by_id = {s.vendor_id: s for s in specs}
    tz = ZoneInfo(settings.timezone)

    @dg.sensor(
        name="vendor_inbound_arrival_sensor",
        job=job,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts one run per vendor and day when new inbound files arrive.",
    )
    def vendor_inbound_arrival_sensor(
        context: dg.SensorEvaluationContext, file_store: FileStoreResource
    ) -> dg.SensorResult:
        now = dt.datetime.now(dt.UTC)
        today = now.astimezone(tz).date()
        oldest_day = (today - dt.timedelta(days=settings.arrival_lookback_days)).isoformat()
        store = file_store.store()
        objects, strays = watched_objects(store, by_id, oldest_day)
        days = set(partitions_def.get_partition_keys(current_time=now))
        plan = plan_arrivals(
            objects,
            ArrivalCursor.from_json(context.cursor),
            vendor_pattern=lambda vid: by_id[vid].file_pattern if vid in by_id else None,
            has_day=lambda day: day in days,
            now=now,
            settle_seconds=settings.arrival_settle_seconds,
            lag_seconds=settings.arrival_lag_seconds,
        )
        skipped = {**strays, **plan.skipped}
        for key, reason in skipped.items():
            context.log.info(f"passed over {key}: {reason}")

        def lane(vendor_id: str) -> str:
            return vendor_lane(
                vendor_id, vendors_per_run=settings.arrival_vendors_per_run, lanes=settings.arrival_lanes
            )

        runs = group_vendor_days(
            plan.batches, lambda vid: (by_id[vid].priority.value, lane(vid)), settings.arrival_vendors_per_run
        )
        requests = [
            run_request([(by_id[vid], plan.batches[(vid, day)]) for vid, day in run], run[0][1], lane(run[0][0]))
            for run in runs
        ]
        events = [
            dg.AssetMaterialization(
                asset_key=vendor_key(vid, layout.INBOUND),
                partition=day,
                metadata={
                    "files": len(files),
                    "bytes": sum(f.size for f in files),
                    "new_files": dg.MetadataValue.json([f.key for f in files]),
                },
            )
            for (vid, day), files in sorted(plan.batches.items())
        ]
        skip = None
        if not requests:
            skip = "No new inbound files."
            if skipped:
                shown = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5])
                more = f" (+{len(skipped) - 5} more)" if len(skipped) > 5 else ""
                skip += f" Passed over {len(skipped)}: {shown}{more}"
        return dg.SensorResult(
            run_requests=requests, asset_events=events, cursor=plan.cursor.to_json(), skip_reason=skip
        )

    return vendor_inbound_arrival_sensor


def run_request(vendors: list[tuple[VendorSpec, list[ObjectInfo]]], day: str, lane: str) -> dg.RunRequest:
    """One run for the new files of one or more vendors (of one priority and lane) on ``day``."""
    keys = [ArrivalPlan.run_key(spec.vendor_id, day, files) for spec, files in vendors]
    priority = vendors[0][0].priority
    tags = {
        "dagster/priority": str(priority.run_priority),
        "priority": priority.value,
        "vendor_lane": lane,
        "trigger": "arrival",
    }
    if len(vendors) == 1:
        run_key = keys[0]
        tags["vendor"] = vendors[0][0].vendor_id
    else:
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        run_key = f"shared:{day}:{digest[:20]}"  # the same vendors' same file versions: the same key
        tags["vendors"] = ",".join(spec.vendor_id for spec, _ in vendors)
    return dg.RunRequest(
        run_key=run_key,
        partition_key=day,
        asset_selection=[key for spec, _ in vendors for key in vendor_run_selection(spec)],
        tags=tags,
    )


def build_sftp_poll_sensor(specs: list[VendorSpec], settings: Settings) -> dg.SensorDefinition | None:
    """Lands SFTP vendors' new files in the inbound area; the arrival sensor takes it from there."""
    polled = [s for s in specs if s.sftp is not None and s.sftp.inbound_dir is not None]
    if not polled:
        return None

    @dg.sensor(
        name="vendor_sftp_poll_sensor",
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Copies new files from vendors' SFTP servers into inbound/<vendor>/<day>/.",
    )
    def vendor_sftp_poll_sensor(context: dg.SensorEvaluationContext, file_store: FileStoreResource) -> dg.SkipReason:
        cursors = json.loads(context.cursor) if context.cursor else {}
        store = file_store.store()
        notes = []
        for spec in polled:
            try:
                with sftp_connect(spec.sftp) as session:
                    pulled = pull_new_files(
                        store,
                        spec,
                        session,
                        ArrivalCursor.from_json(cursors.get(spec.vendor_id)),
                        timezone=settings.timezone,
                        now=dt.datetime.now(dt.UTC),
                        settle_seconds=settings.arrival_settle_seconds,
                        lag_seconds=settings.arrival_lag_seconds,
                    )
            except (OSError, paramiko.SSHException, SftpConfigError) as exc:
                # One vendor's server being down must not stop the others' polls.
                context.log.warning(f"{spec.vendor_id}: SFTP poll failed: {exc}")
                notes.append(f"{spec.vendor_id}: poll failed ({exc})")
                continue
            cursors[spec.vendor_id] = pulled.cursor.to_json()
            for key in pulled.landed:
                context.log.info(f"landed {key}")
            for key, reason in pulled.skipped.items():
                context.log.info(f"passed over {key}: {reason}")
            notes.append(f"{spec.vendor_id}: {len(pulled.landed)} new file(s)")
        context.update_cursor(json.dumps(cursors))
        return dg.SkipReason("; ".join(notes))

    return vendor_sftp_poll_sensor
