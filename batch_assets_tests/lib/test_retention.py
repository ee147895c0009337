"""Which day folders retention deletes, on both stores: by the folder's day, never inbound."""

import datetime as dt

import pytest

from batch_assets.lib.retention import cutoff_day, expired_folders, prune_folders
from batch_assets.lib.storage import FileStore, LocalFolderStore, S3Store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request, tmp_path) -> FileStore:
    if request.param == "local":
        return LocalFolderStore(tmp_path)
    bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket.client, bucket.name, prefix="exchange/")


def put(store: FileStore, key: str, size: int = 3) -> None:
    with store.publish(key) as path:
        path.write_bytes(b"x" * size)


def test_the_cutoff_is_the_day_in_the_exchange_timezone() -> None:
    """At 23:30 UTC on 21 November it is already 22 November in Seoul."""
    now = dt.datetime(2026, 11, 21, 23, 30, tzinfo=dt.UTC)
    assert cutoff_day(now, "UTC", 30) == dt.date(2026, 10, 22)
    assert cutoff_day(now, "Asia/Seoul", 30) == dt.date(2026, 10, 23)


def test_day_folders_before_the_cutoff_are_listed_with_their_size_and_pruned(store) -> None:
    put(store, "staged/acme/2026-10-01/a.parquet", 5)
    put(store, "staged/acme/2026-10-01/b.parquet", 7)
    put(store, "rejects/acme/2026-10-22/a.jsonl")
    put(store, "outbound/globex/2026-09-30/globex_2026-09-30.xml")
    put(store, "staged/acme/2026-10-23/a.parquet")  # the cutoff day itself is kept
    put(store, "inbound/acme/2026-10-01/a.csv")  # originals are not derived data
    put(store, "staged/acme/latest/a.parquet")  # not a day folder
    put(store, "staged/acme/2026-1-05/a.parquet")  # not a YYYY-MM-DD day folder
    found = list(expired_folders(store, dt.date(2026, 10, 23)))
    assert [(f.prefix, f.files, f.bytes) for f in found] == [
        ("staged/acme/2026-10-01/", 2, 12),
        ("rejects/acme/2026-10-22/", 1, 3),
        ("outbound/globex/2026-09-30/", 1, 3),
    ]
    assert {(f.area, f.vendor_id, f.day) for f in found} >= {("staged", "acme", "2026-10-01")}
    assert prune_folders(store, found) == 4
    assert sorted(o.key for o in store.list("")) == [
        "inbound/acme/2026-10-01/a.csv",
        "staged/acme/2026-1-05/a.parquet",
        "staged/acme/2026-10-23/a.parquet",
        "staged/acme/latest/a.parquet",
    ]
    assert list(expired_folders(store, dt.date(2026, 10, 23))) == []
