"""Which inbound files are new since the last sensor tick: pure functions over listings.

The cursor is a watermark (the newest modification time processed) plus the versions of the
files modified within ``lag`` of it. Listings have 1-second (S3) or coarse (some file systems)
time resolution, and an upload that started before the watermark can appear after it; keeping
the recent versions and looking back ``lag`` seconds catches both, while the cursor stays as
small as the arrivals of ``lag`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from batch_assets.lib.engine import layout
from batch_assets.lib.storage import ObjectInfo


@dataclass(frozen=True)
class ArrivalCursor:
    watermark: float = 0.0  # epoch seconds of the newest file handed to a run
    recent: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (version, modified)

    def to_json(self) -> str:
        return json.dumps({"w": self.watermark, "r": {k: list(v) for k, v in sorted(self.recent.items())}})

    @classmethod
    def from_json(cls, text: str | None) -> ArrivalCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(watermark=float(data["w"]), recent={k: (v[0], float(v[1])) for k, v in data["r"].items()})


@dataclass
class ArrivalPlan:
    batches: dict[tuple[str, str], list[ObjectInfo]] = field(default_factory=dict)  # (vendor, day) -> new files
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why it was passed over this tick
    cursor: ArrivalCursor = field(default_factory=ArrivalCursor)

    @staticmethod
    def run_key(vendor_id: str, day: str, files: list[ObjectInfo]) -> str:
        """The same file versions always give the same key, so a version is launched once."""
        digest = hashlib.sha256("\n".join(sorted(f"{f.key}@{f.version}" for f in files)).encode()).hexdigest()
        return f"{vendor_id}:{day}:{digest[:20]}"


def plan_arrivals(
    objects: Iterable[ObjectInfo],
    cursor: ArrivalCursor,
    *,
    vendor_pattern: Callable[[str], str | None],
    has_day: Callable[[str], bool],
    now: datetime,
    settle_seconds: float,
    lag_seconds: float,
) -> ArrivalPlan:
    """Group the new file versions by (vendor, day) and move the cursor past them.

    ``vendor_pattern(vendor_id)`` gives the vendor's file-name glob, or None for an unknown
    vendor; ``has_day(day)`` tells whether the day is a partition yet.
    """
    plan = ArrivalPlan()
    floor = cursor.watermark - lag_seconds
    accepted: dict[str, tuple[str, float]] = {}
    for obj in objects:
        modified = obj.modified.timestamp()
        if modified < floor:
            continue  # handed to a run before (or older than anything the sensor watches)
        if cursor.recent.get(obj.key, (None,))[0] == obj.version:
            continue  # this version was already handed to a run
        reason = _why_not_ready(obj, vendor_pattern, has_day, now, settle_seconds)
        if reason:
            plan.skipped[layout.printable(obj.key)] = reason
            continue
        parsed = layout.parse_inbound_key(obj.key)
        plan.batches.setdefault((parsed.vendor_id, parsed.day), []).append(obj)
        accepted[obj.key] = (obj.version, modified)
    watermark = max([cursor.watermark, *(m for _, m in accepted.values())])
    recent = {k: v for k, v in {**cursor.recent, **accepted}.items() if v[1] >= watermark - lag_seconds}
    plan.cursor = ArrivalCursor(watermark=watermark, recent=recent)
    return plan


def _why_not_ready(
    obj: ObjectInfo,
    vendor_pattern: Callable[[str], str | None],
    has_day: Callable[[str], bool],
    now: datetime,
    settle_seconds: float,
) -> str | None:
    try:
        parsed = layout.parse_inbound_key(obj.key)
    except layout.NotAnInboundFile as exc:
        return str(exc)
    pattern = vendor_pattern(parsed.vendor_id)
    if pattern is None:
        return f"no spec for vendor '{parsed.vendor_id}' (add vendors/{parsed.vendor_id}.yaml)"
    if layout.is_in_progress(parsed.file_name):
        return "upload still in progress (temporary file name)"
    if not _matches(parsed.file_name, pattern):
        return f"file name does not match the vendor's pattern {pattern!r}"
    age = (now - obj.modified).total_seconds()
    if age < settle_seconds:
        return f"modified {age:.0f}s ago; waiting {settle_seconds:.0f}s for the upload to settle"
    if not has_day(parsed.day):
        return f"day {parsed.day} is not a partition (before the start date, or in the future)"
    return None


def vendor_lane(vendor_id: str, *, vendors_per_run: int, lanes: int) -> str:
    """The lane of a vendor's runs: runs of one lane never run at once (dagster.yaml), and every run
    that touches a vendor is in its lane, so no two runs race on one vendor day.

    One vendor per run: each vendor is its own lane. Shared runs group vendors of one lane, so a
    vendor's lane must not depend on who arrived with it: a stable hash of its id.
    """
    if vendors_per_run == 1:
        return vendor_id
    return f"lane-{zlib.crc32(vendor_id.encode()) % lanes}"


def group_vendor_days(
    vendor_days: Iterable[tuple[str, str]], group_of: Callable[[str], Hashable], vendors_per_run: int
) -> list[list[tuple[str, str]]]:
    """Vendor days ready in one tick, as runs: the same day and group (lane, priority), at most
    ``vendors_per_run`` vendors each. A run costs Dagster ~10 CPU-s before any work; when a whole
    morning's vendors arrive at once, sharing runs saves most of that (docs/performance.md)."""
    runs: dict[tuple[str, Hashable], list[list[tuple[str, str]]]] = {}
    for vendor_id, day in sorted(vendor_days):
        filling = runs.setdefault((day, group_of(vendor_id)), [[]])
        if len(filling[-1]) == vendors_per_run:
            filling.append([])
        filling[-1].append((vendor_id, day))
    return [run for _, chunks in sorted(runs.items(), key=lambda item: str(item[0])) for run in chunks]


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)
