"""Retention of derived files: day folders of staged, rejects and outbound older than an age.

Age is the folder's vendor day (``<area>/<vendor>/<YYYY-MM-DD>/``), not the files' modification
times: a day rewritten yesterday by a backfill of last year is still last year's data. Inbound
(the vendors' originals) is never touched here, nor anything that is not a day folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from batch_assets.lib.engine import layout
from batch_assets.lib.storage import FileStore

DERIVED_AREAS = (layout.STAGED, layout.REJECTS, layout.OUTBOUND)


@dataclass(frozen=True)
class ExpiredFolder:
    prefix: str  # 'staged/acme_retail/2026-01-02/'
    area: str
    vendor_id: str
    day: str
    files: int
    bytes: int


def cutoff_day(now: dt.datetime, timezone: str, days: int) -> dt.date:
    """Day folders strictly before this date are expired: with 30 days on 2026-11-22, the
    oldest kept day is 2026-10-23."""
    return now.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=days)


def _day(prefix: str) -> dt.date | None:
    name = prefix.rstrip("/").rsplit("/", 1)[-1]
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return None
    return day if day.isoformat() == name else None


def expired_folders(
    store: FileStore, cutoff: dt.date, areas: tuple[str, ...] = DERIVED_AREAS
) -> Iterator[ExpiredFolder]:
    """Every day folder of ``areas`` older than ``cutoff``, with what it holds, oldest first per vendor."""
    for area in areas:
        vendors, _ = store.list_children(f"{area}/")
        for vendor_prefix in vendors:
            days, _ = store.list_children(vendor_prefix)
            for day_prefix in days:
                day = _day(day_prefix)
                if day is None or day >= cutoff:
                    continue
                objects = list(store.list(day_prefix))
                if not objects:  # a local folder emptied by an earlier prune
                    continue
                yield ExpiredFolder(
                    prefix=day_prefix,
                    area=area,
                    vendor_id=vendor_prefix.rstrip("/").rsplit("/", 1)[-1],
                    day=day.isoformat(),
                    files=len(objects),
                    bytes=sum(o.size for o in objects),
                )


def prune_folders(store: FileStore, folders: list[ExpiredFolder]) -> int:
    """Delete the folders' files; returns how many were deleted."""
    return sum(store.delete_prefix(folder.prefix) for folder in folders)
