"""Which inbound files start a run: the arrival sensor's cursor arithmetic over hand-made listings."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from batch_assets.lib.engine.arrivals import ArrivalCursor, ArrivalPlan, group_vendor_days, plan_arrivals, vendor_lane
from batch_assets.lib.storage import ObjectInfo

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SETTLE = 5.0
LAG = 900.0
PATTERNS = {"acme_retail": "orders_*.csv", "hooli_ads": "*.jsonl"}
DAYS = {"2026-03-01", "2026-03-02"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obj(key: str, modified: float, version: str | None = None) -> ObjectInfo:
    """A listed file modified ``modified`` seconds after T0."""
    return ObjectInfo(key=key, size=100, version=version or f"etag-{key}-{modified}", modified=at(modified))


def acme(name: str, modified: float, version: str | None = None, day: str = "2026-03-02") -> ObjectInfo:
    return obj(f"inbound/acme_retail/{day}/{name}", modified, version)


def plan(
    objects: list[ObjectInfo], cursor: ArrivalCursor | None = None, *, now: float, lag: float = LAG
) -> ArrivalPlan:
    return plan_arrivals(
        objects,
        cursor or ArrivalCursor(),
        vendor_pattern=PATTERNS.get,
        has_day=DAYS.__contains__,
        now=at(now),
        settle_seconds=SETTLE,
        lag_seconds=lag,
    )


def batched_keys(result: ArrivalPlan) -> dict[tuple[str, str], list[str]]:
    return {group: [f.key for f in files] for group, files in result.batches.items()}


# --- ticks --------------------------------------------------------------------------------------


def test_the_first_tick_hands_every_ready_file_to_a_run_grouped_by_vendor_and_day() -> None:
    """A new deployment must process what is already waiting, one run per vendor and day."""
    listing = [
        acme("orders_1.csv", 10),
        acme("orders_2.csv", 20),
        acme("orders_0.csv", 5, day="2026-03-01"),
        obj("inbound/hooli_ads/2026-03-02/a.jsonl", 30),
    ]

    result = plan(listing, now=100)

    assert batched_keys(result) == {
        ("acme_retail", "2026-03-02"): [listing[0].key, listing[1].key],
        ("acme_retail", "2026-03-01"): [listing[2].key],
        ("hooli_ads", "2026-03-02"): [listing[3].key],
    }
    assert result.skipped == {}
    assert result.cursor.watermark == at(30).timestamp()
    assert result.cursor.recent == {o.key: (o.version, o.modified.timestamp()) for o in listing}


def test_a_tick_with_nothing_new_requests_nothing_and_keeps_the_cursor() -> None:
    """The sensor lists the same files every 30 seconds; only news may start a run."""
    listing = [acme("orders_1.csv", 10), acme("orders_2.csv", 20)]
    first = plan(listing, now=100)

    second = plan(listing, first.cursor, now=130)

    assert second.batches == {} and second.skipped == {}
    assert second.cursor == first.cursor


def test_a_new_file_starts_a_run_of_its_own_and_moves_the_watermark() -> None:
    listing = [acme("orders_1.csv", 10)]
    first = plan(listing, now=100)
    newcomer = acme("orders_2.csv", 120)

    second = plan([*listing, newcomer], first.cursor, now=200)

    assert batched_keys(second) == {("acme_retail", "2026-03-02"): [newcomer.key]}
    assert second.cursor.watermark == at(120).timestamp()


def test_files_landing_in_the_same_second_as_the_watermark_or_just_before_it_are_not_lost() -> None:
    """S3 listings have one-second resolution and a slow upload is dated when it started: a file
    listed after the watermark moved can be as old as the watermark, or older."""
    first_seen = acme("orders_1.csv", 100)
    first = plan([first_seen], now=110)
    same_second = acme("orders_2.csv", 100)
    slow_upload = acme("orders_3.csv", 40)

    second = plan([first_seen, same_second, slow_upload], first.cursor, now=115)

    assert batched_keys(second) == {("acme_retail", "2026-03-02"): [same_second.key, slow_upload.key]}
    assert second.cursor.watermark == first.cursor.watermark
    assert set(second.cursor.recent) == {first_seen.key, same_second.key, slow_upload.key}


def test_the_same_file_version_never_starts_a_second_run() -> None:
    """Run keys dedupe in Dagster too, but a cursor that forgot a file would relaunch it on every
    deployment with a fresh instance."""
    listing = [acme("orders_1.csv", 100)]
    cursor = plan(listing, now=110).cursor

    for now in (140, 170, 1000):
        again = plan(listing, cursor, now=now)
        assert again.batches == {}
        cursor = again.cursor


def test_a_new_version_of_a_file_starts_a_new_run_with_a_new_run_key() -> None:
    """A vendor resending a corrected file under the same name expects it processed again."""
    original = acme("orders_1.csv", 100, version="etag-1")
    first = plan([original], now=110)
    resent = acme("orders_1.csv", 300, version="etag-2")

    second = plan([resent], first.cursor, now=310)

    [(group, files)] = second.batches.items()
    assert files == [resent]
    assert ArrivalPlan.run_key(*group, files) != ArrivalPlan.run_key(*group, [original])
    assert second.cursor.recent[resent.key] == ("etag-2", at(300).timestamp())


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("inbound/initrode/2026-03-02/data.csv", "no spec for vendor 'initrode' (add vendors/initrode.yaml)"),
        ("inbound/acme_retail/orders_1.csv", "expected inbound/<vendor_id>/<YYYY-MM-DD>/<file>"),
        ("inbound/acme_retail/2026-03-02/late/orders_1.csv", "expected inbound/<vendor_id>/<YYYY-MM-DD>/<file>"),
        ("inbound/acme_retail/2026-02-30/orders_1.csv", "'2026-02-30' is not a YYYY-MM-DD date folder"),
        ("inbound/acme_retail/20260302/orders_1.csv", "'20260302' is not a YYYY-MM-DD date folder"),
        ("inbound/acme_retail/2026-03-02/orders_1.csv.part", "upload still in progress (temporary file name)"),
        ("inbound/acme_retail/2026-03-02/.orders_1.csv", "upload still in progress (temporary file name)"),
        ("inbound/acme_retail/2026-03-02/notes.txt", "file name does not match the vendor's pattern 'orders_*.csv'"),
        ("inbound/acme_retail/2026-04-01/orders_1.csv", "day 2026-04-01 is not a partition"),
    ],
    ids=[
        "unknown vendor",
        "no day folder",
        "nested folder",
        "impossible date",
        "day without dashes",
        "temporary suffix",
        "hidden temporary name",
        "foreign file name",
        "day that is not a partition",
    ],
)
def test_a_file_that_cannot_start_a_run_is_skipped_with_the_reason(key: str, reason: str) -> None:
    """The sensor's skip message is the only place an operator learns why a dropped file sits there."""
    result = plan([obj(key, 10), acme("orders_9.csv", 10)], now=100)

    assert list(result.skipped) == [key]
    assert reason in result.skipped[key]
    assert batched_keys(result) == {("acme_retail", "2026-03-02"): ["inbound/acme_retail/2026-03-02/orders_9.csv"]}
    assert key not in result.cursor.recent


def test_a_file_still_settling_is_picked_up_on_a_later_tick() -> None:
    """A file modified a moment ago may still be growing; waiting must not mean forgetting it,
    even when an older file moves the watermark meanwhile."""
    settled = acme("orders_1.csv", 90)
    fresh = acme("orders_2.csv", 98)

    first = plan([settled, fresh], now=100)
    second = plan([settled, fresh], first.cursor, now=104)

    assert batched_keys(first) == {("acme_retail", "2026-03-02"): [settled.key]}
    assert "waiting 5s for the upload to settle" in first.skipped[fresh.key]
    assert batched_keys(second) == {("acme_retail", "2026-03-02"): [fresh.key]}
    assert second.skipped == {}


def test_a_day_that_becomes_a_partition_later_is_picked_up_then() -> None:
    """Files for tomorrow may land before midnight; they wait for their partition instead of failing."""
    early = acme("orders_1.csv", 100, day="2026-03-03")
    first = plan([early], now=200)

    later = plan_arrivals(
        [early],
        first.cursor,
        vendor_pattern=PATTERNS.get,
        has_day=lambda day: day <= "2026-03-03",
        now=at(300),
        settle_seconds=SETTLE,
        lag_seconds=LAG,
    )

    assert first.batches == {} and "not a partition" in first.skipped[early.key]
    assert batched_keys(later) == {("acme_retail", "2026-03-03"): [early.key]}


def test_a_file_older_than_the_lag_behind_the_watermark_is_no_longer_looked_at() -> None:
    """The price of a bounded cursor: the sensor only looks back ``lag`` seconds, which is what makes
    the lag setting matter."""
    cursor = plan([acme("orders_1.csv", 5000)], now=5100).cursor
    too_old = acme("orders_0.csv", 5000 - LAG - 1)
    just_in_time = acme("orders_2.csv", 5000 - LAG)

    result = plan([too_old, just_in_time], cursor, now=5200)

    assert batched_keys(result) == {("acme_retail", "2026-03-02"): [just_in_time.key]}
    assert result.skipped == {}


# --- the cursor ---------------------------------------------------------------------------------


def test_the_cursor_stays_bounded_and_loses_nothing_over_ten_thousand_arrivals() -> None:
    """Dagster stores the cursor on every tick; one that remembered every key ever seen would grow
    without end. It may hold only the files within ``lag`` of the watermark, and still hand every
    file to exactly one run."""
    lag = 600.0
    rng = random.Random(7)
    arrivals = sorted(
        (acme(f"orders_{i:05d}.csv", rng.uniform(0, 40_000)) for i in range(10_000)), key=lambda o: o.modified
    )
    cursor = ArrivalCursor()
    handed: list[ObjectInfo] = []
    largest_recent = 0
    listed = 0
    for now in range(240, 40_000 + 480, 240):
        while listed < len(arrivals) and arrivals[listed].modified <= at(now):
            listed += 1
        # The store lists every file of the watched days, the oldest included, in its own order.
        result = plan(arrivals[listed - 1 :: -1] if listed else [], cursor, now=now, lag=lag)
        handed += [f for files in result.batches.values() for f in files]
        cursor = result.cursor
        within_lag = {o.key for o in handed if o.modified.timestamp() >= cursor.watermark - lag}
        assert set(json.loads(cursor.to_json())["r"]) == within_lag
        largest_recent = max(largest_recent, len(cursor.recent))

    assert sorted(o.key for o in handed) == sorted(o.key for o in arrivals)
    assert largest_recent < len(arrivals) / 20


def test_the_cursor_survives_a_json_round_trip_and_its_json_does_not_depend_on_order() -> None:
    """The cursor is stored as text between ticks; a lossy or unstable encoding would relaunch files."""
    recent = {"inbound/a/2026-03-02/b.csv": ("etag-1", 1772452800.25), "inbound/a/2026-03-02/a.csv": ("e2", 17.0)}
    cursor = ArrivalCursor(watermark=1772452800.25, recent=recent)
    reordered = ArrivalCursor(watermark=1772452800.25, recent=dict(reversed(recent.items())))

    assert ArrivalCursor.from_json(cursor.to_json()) == cursor
    assert cursor.to_json() == reordered.to_json()
    assert json.loads(cursor.to_json())["w"] == 1772452800.25
    assert ArrivalCursor.from_json(None) == ArrivalCursor() == ArrivalCursor.from_json("")


def test_a_cursor_from_a_plan_round_trips_and_gives_the_same_next_plan() -> None:
    listing = [acme("orders_1.csv", 100.123456), acme("orders_2.csv", 100.9)]
    cursor = plan(listing, now=200).cursor

    restored = ArrivalCursor.from_json(cursor.to_json())

    assert restored == cursor
    assert plan(listing, restored, now=230).batches == {}


# --- run keys -----------------------------------------------------------------------------------


def test_the_run_key_depends_on_the_file_versions_and_not_on_their_order() -> None:
    """Dagster drops a run request whose key it has seen: the same versions must give the same key
    however the store lists them, and any change of version a new one."""
    files = [acme(f"orders_{i}.csv", i) for i in range(5)]
    key = ArrivalPlan.run_key("acme_retail", "2026-03-02", files)

    assert key.startswith("acme_retail:2026-03-02:")
    assert ArrivalPlan.run_key("acme_retail", "2026-03-02", list(reversed(files))) == key
    assert ArrivalPlan.run_key("acme_retail", "2026-03-02", random.Random(1).sample(files, 5)) == key
    assert ArrivalPlan.run_key("acme_retail", "2026-03-01", files) != key
    changed = [*files[:4], acme("orders_4.csv", 4, version="another-etag")]
    assert ArrivalPlan.run_key("acme_retail", "2026-03-02", changed) != key
    assert ArrivalPlan.run_key("acme_retail", "2026-03-02", files[:4]) != key


def test_a_shuffled_listing_gives_the_same_batches_run_keys_and_cursor() -> None:
    listing = [acme(f"orders_{i}.csv", 10 + i) for i in range(6)] + [
        obj(f"inbound/hooli_ads/2026-03-01/{i}.jsonl", 20 + i) for i in range(4)
    ]
    shuffled = random.Random(3).sample(listing, len(listing))

    a, b = plan(listing, now=100), plan(shuffled, now=100)

    def run_keys(result: ArrivalPlan) -> dict[tuple[str, str], str]:
        return {group: ArrivalPlan.run_key(*group, files) for group, files in result.batches.items()}

    assert run_keys(a) == run_keys(b)
    assert a.cursor.to_json() == b.cursor.to_json()


# ------------------------------------------------------------------------------- shared arrival runs


def test_vendor_days_share_runs_only_within_one_day_and_group_and_up_to_the_limit() -> None:
    ready = [(f"v{i}", "2026-03-02") for i in range(5)] + [("v0", "2026-03-01"), ("w", "2026-03-02")]
    group = {"w": "LOW"}
    runs = group_vendor_days(ready, lambda vid: group.get(vid, "HIGH"), vendors_per_run=2)
    assert sorted(runs) == [
        [("v0", "2026-03-01")],
        [("v0", "2026-03-02"), ("v1", "2026-03-02")],
        [("v2", "2026-03-02"), ("v3", "2026-03-02")],
        [("v4", "2026-03-02")],
        [("w", "2026-03-02")],
    ]
    alone = group_vendor_days(ready, lambda vid: "HIGH", vendors_per_run=1)
    assert sorted(alone) == sorted([day] for day in ready)


def test_a_vendor_keeps_its_lane_whoever_arrives_with_it() -> None:
    """Runs of one lane wait for each other, so every run touching a vendor must be in its lane."""
    assert vendor_lane("acme_retail", vendors_per_run=1, lanes=8) == "acme_retail"
    lanes = {vendor_lane(f"vendor_{i}", vendors_per_run=10, lanes=8) for i in range(200)}
    assert lanes == {f"lane-{i}" for i in range(8)}
    assert vendor_lane("acme_retail", vendors_per_run=10, lanes=8) == vendor_lane(
        "acme_retail", vendors_per_run=3, lanes=8
    )
