"""A vendor's SFTP exchange: land its new files in the inbound area, deliver its outbound files.

Pulling reuses the arrival cursor (a watermark plus the versions seen within the lag), so the
SFTP poll has the same guarantees as the arrival sensor: each file version lands once.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from batch_assets.lib.engine import layout
from batch_assets.lib.engine.arrivals import ArrivalCursor, plan_arrivals
from batch_assets.lib.specs.model import VendorSpec
from batch_assets.lib.storage import FileStore, ObjectInfo
from batch_assets.lib.transfer.sftp import SftpSession


@dataclass
class PullResult:
    landed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    cursor: ArrivalCursor = field(default_factory=ArrivalCursor)


def pull_new_files(
    store: FileStore,
    spec: VendorSpec,
    session: SftpSession,
    cursor: ArrivalCursor,
    *,
    timezone: str,
    now: dt.datetime,
    settle_seconds: float,
    lag_seconds: float,
) -> PullResult:
    """Copy the vendor's new remote files to ``inbound/<vendor>/<day of their mtime>/``."""
    assert spec.sftp is not None and spec.sftp.inbound_dir is not None
    tz = ZoneInfo(timezone)
    remote = {}
    objects = []
    for f in session.list_files(spec.sftp.inbound_dir):
        key = (
            f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, f.modified.astimezone(tz).date().isoformat())}{f.name}"
        )
        remote[key] = f.name
        objects.append(
            ObjectInfo(key=key, size=f.size, version=f"{f.size}-{int(f.modified.timestamp())}", modified=f.modified)
        )
    plan = plan_arrivals(
        objects,
        cursor,
        vendor_pattern=lambda vid: spec.file_pattern if vid == spec.vendor_id else None,
        has_day=lambda _day: True,
        now=now,
        settle_seconds=settle_seconds,
        lag_seconds=lag_seconds,
    )
    result = PullResult(skipped=plan.skipped, cursor=plan.cursor)
    with tempfile.TemporaryDirectory(prefix=f"sftp-{spec.vendor_id}-") as tmp:
        for files in plan.batches.values():
            for obj in files:
                local = Path(tmp) / "file"
                session.download(spec.sftp.inbound_dir, remote[obj.key], local)
                with store.publish(obj.key) as path:
                    local.replace(path)
                result.landed.append(obj.key)
    return result


def deliver_files(store: FileStore, spec: VendorSpec, session: SftpSession, day: str) -> list[str]:
    """Upload the day's outbound files (not the report) to the vendor; returns the names delivered."""
    assert spec.sftp is not None and spec.sftp.outbound_dir is not None
    delivered = []
    with tempfile.TemporaryDirectory(prefix=f"sftp-{spec.vendor_id}-") as tmp:
        for obj in store.list(layout.day_prefix(layout.OUTBOUND, spec.vendor_id, day)):
            if layout.is_report(obj.key):
                continue
            name = obj.key.rsplit("/", 1)[-1]
            local = Path(tmp) / name
            store.download(obj.key, local)
            session.upload(local, spec.sftp.outbound_dir, name)
            delivered.append(name)
    return delivered
