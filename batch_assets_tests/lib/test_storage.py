"""The file stores: the same behaviour tests run against a local folder and a real S3 API (moto)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batch_assets.lib.storage import (
    FileStore,
    LocalFolderStore,
    ObjectInfo,
    S3Store,
    UnsafeKeyError,
    safe_key,
    safe_prefix,
)
from batch_assets_tests.s3_server import S3Bucket, s3_bucket, s3_endpoint  # noqa: F401

KEY = "inbound/acme/2026-11-22/orders_001.csv"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "local":
        return LocalFolderStore(tmp_path / "store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket.client, bucket.name, prefix="landing/")


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> S3Bucket:
    return request.getfixturevalue("s3_bucket")


def put(store: FileStore, key: str, data: bytes) -> Path:
    """Publish ``data`` at ``key``; return the temp path publish handed out."""
    with store.publish(key) as path:
        path.write_bytes(data)
    return path


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder``, hidden ones included, as relative paths."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir())


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "a", "a.csv", "ünïcödé/名前.csv", "x" * 1024, ".hidden/a", "a..b/c.d"])
def test_a_safe_key_is_returned_unchanged(key: str) -> None:
    assert safe_key(key) == key


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("a\\b.csv", "backslash"),
        ("../secret", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/./b", "'.' segment"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\rb", "control character"),
        ("a\x7fb", "control character"),
        ("a\ud800b", "UTF-8"),
        ("x" * 1025, "1025 bytes"),
        ("é" * 513, "1026 bytes"),
    ],
)
def test_an_unsafe_key_is_refused_with_a_message_saying_what_is_wrong(key: str, complaint: str) -> None:
    """Keys come from vendors and partition names; one that escapes the root or hides a character
    must stop before it becomes a path or an S3 key."""
    with pytest.raises(UnsafeKeyError, match=complaint):
        safe_key(key)


def test_a_prefix_may_be_empty_or_end_with_a_slash_but_is_otherwise_a_safe_key() -> None:
    assert [safe_prefix(p) for p in ("", "inbound/", "inbound/ac")] == ["", "inbound/", "inbound/ac"]
    for bad in ("/", "/inbound/", "inbound//", "../", "a\\b/"):
        with pytest.raises(UnsafeKeyError):
            safe_prefix(bad)


# --- both stores --------------------------------------------------------------------------------


def test_a_published_file_can_be_listed_stated_downloaded_and_read_back(store: FileStore, tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    put(store, KEY, b"id,qty\n1,5\n")

    [listed] = store.list("")
    assert listed.key == KEY
    assert listed.size == 11
    assert listed.version and '"' not in listed.version
    assert listed.modified.tzinfo is not None and listed.modified.utcoffset() == timedelta(0)
    assert before <= listed.modified <= datetime.now(UTC) + timedelta(seconds=2)
    assert store.stat(KEY) == listed

    dest = tmp_path / "downloads" / "orders.csv"
    assert store.download(KEY, dest) == listed
    assert dest.read_bytes() == b"id,qty\n1,5\n"
    assert store.read_bytes(KEY) == b"id,qty\n1,5\n"


def test_nothing_is_visible_while_a_publish_is_still_being_written(store: FileStore) -> None:
    """Sensors list the store at any moment; a half-written file must never look like an arrival."""
    put(store, "out/report.csv", b"old")
    with store.publish("out/report.csv") as path:
        path.write_bytes(b"new, half written")
        assert [info.key for info in store.list("")] == ["out/report.csv"]
        assert store.read_bytes("out/report.csv") == b"old"
    assert store.read_bytes("out/report.csv") == b"new, half written"


def test_publishing_again_replaces_the_object_with_new_content_and_a_new_version(store: FileStore) -> None:
    """A rerun of an asset replaces its output; it must not leave a second copy beside it."""
    put(store, KEY, b"first run")
    first = store.stat(KEY)
    put(store, KEY, b"second run, longer")

    [listed] = store.list("")
    assert listed.key == KEY
    assert store.read_bytes(KEY) == b"second run, longer"
    assert first is not None and listed.version != first.version


def test_the_version_changes_when_the_content_changes_even_at_the_same_size(store: FileStore) -> None:
    """Sensors build run keys from the version: a corrected file of the same size must run again."""
    versions = []
    for content in (b"AAAA", b"BBBB", b"CCCC"):
        put(store, KEY, content)
        info = store.stat(KEY)
        assert info is not None
        versions.append(info.version)
    assert len(set(versions)) == 3


def test_an_exception_inside_publish_leaves_nothing_visible_and_no_temp_file(store: FileStore) -> None:
    with pytest.raises(RuntimeError, match="writer failed"), store.publish(KEY) as path:
        path.write_bytes(b"partial")
        raise RuntimeError("writer failed")

    assert not path.exists()
    assert list(store.list("")) == []
    assert store.stat(KEY) is None
    if isinstance(store, LocalFolderStore):
        assert files_under(store.root) == []
    else:
        assert not path.parent.exists()


def test_an_exception_inside_a_republish_keeps_the_previous_version(store: FileStore) -> None:
    put(store, KEY, b"good")
    before = store.stat(KEY)
    with pytest.raises(RuntimeError), store.publish(KEY) as path:
        path.write_bytes(b"bad")
        raise RuntimeError("writer failed")
    assert store.stat(KEY) == before
    assert store.read_bytes(KEY) == b"good"


def test_publish_fails_when_nothing_was_written_to_the_temp_path(store: FileStore) -> None:
    with pytest.raises(FileNotFoundError, match="nothing was written"), store.publish(KEY):
        pass
    assert store.stat(KEY) is None


def test_list_is_recursive_sorted_and_limited_to_the_prefix(store: FileStore) -> None:
    """'-' and '.' sort before '/': a folder-by-folder walk would put these in a different order than S3."""
    keys = ["b.csv", "a/b/c.csv", "a/a.csv", "a-c.csv", "a.csv", "a/b.csv", "ab/x.csv"]
    for key in keys:
        put(store, key, key.encode())

    def listed(prefix: str) -> list[str]:
        return [info.key for info in store.list(prefix)]

    assert listed("") == ["a-c.csv", "a.csv", "a/a.csv", "a/b.csv", "a/b/c.csv", "ab/x.csv", "b.csv"]
    assert listed("a/") == ["a/a.csv", "a/b.csv", "a/b/c.csv"]
    assert listed("a/b") == ["a/b.csv", "a/b/c.csv"]
    assert listed("a/b/") == ["a/b/c.csv"]
    assert listed("a") == ["a-c.csv", "a.csv", "a/a.csv", "a/b.csv", "a/b/c.csv", "ab/x.csv"]
    assert listed("missing/") == []
    assert [info.size for info in store.list("a/b/")] == [len("a/b/c.csv")]


def test_list_can_start_after_a_key_so_a_sensor_skips_old_day_folders(store: FileStore) -> None:
    for key in ("in/acme/2026-11-20/a.csv", "in/acme/2026-11-21/b.csv", "in/acme/2026-11-22/c.csv"):
        put(store, key, b"x")

    def listed(prefix: str, start_after: str) -> list[str]:
        return [info.key for info in store.list(prefix, start_after=start_after)]

    assert listed("in/acme/", "in/acme/2026-11-21") == [
        "in/acme/2026-11-21/b.csv",
        "in/acme/2026-11-22/c.csv",
    ]
    assert listed("in/acme/", "in/acme/2026-11-21/b.csv") == ["in/acme/2026-11-22/c.csv"]
    assert listed("in/acme/", "in/acme/2026-11-30") == []
    assert listed("in/", "a") == listed("in/", "")
    with pytest.raises(UnsafeKeyError):
        listed("in/", "../x")


def test_list_children_gives_one_level_folders_and_files(store: FileStore) -> None:
    """The arrival sensor reads inbound/ one level deep to find vendor folders and stray files."""
    for key in ("in/acme/2026-11-22/a.csv", "in/acme/b.csv", "in/beta/c.csv", "in/stray.csv", "in-x.csv"):
        put(store, key, b"x")

    folders, files = store.list_children("in/")
    assert folders == ["in/acme/", "in/beta/"]
    assert [info.key for info in files] == ["in/stray.csv"]
    assert files[0] == store.stat("in/stray.csv")

    folders, files = store.list_children("")
    assert folders == ["in/"]
    assert [info.key for info in files] == ["in-x.csv"]

    folders, files = store.list_children("in/a")
    assert folders == ["in/acme/"] and files == []
    assert store.list_children("missing/") == ([], [])


def test_list_and_delete_prefix_go_beyond_a_thousand_objects(store: FileStore) -> None:
    """S3 returns at most 1,000 keys per listing page and deletes at most 1,000 per call."""
    keys = [f"many/{i:04d}.txt" for i in range(1050)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: put(store, key, b"x"), keys))
    put(store, "other.txt", b"x")

    assert [info.key for info in store.list("many/")] == keys
    assert store.delete_prefix("many/") == 1050
    assert [info.key for info in store.list("")] == ["other.txt"]


def test_delete_prefix_removes_only_what_is_under_the_prefix_and_counts_it(store: FileStore) -> None:
    for key in ("old/2026-01-01/a.csv", "old/2026-01-02/b.csv", "older.csv", "keep/c.csv"):
        put(store, key, b"x")
    assert store.delete_prefix("old/") == 2
    assert [info.key for info in store.list("")] == ["keep/c.csv", "older.csv"]
    assert store.delete_prefix("old/") == 0


def test_delete_prefix_refuses_an_empty_prefix(store: FileStore) -> None:
    """An empty prefix would wipe the whole store; a retention bug must not be able to do that."""
    put(store, KEY, b"x")
    with pytest.raises(UnsafeKeyError, match="whole store"):
        store.delete_prefix("")
    assert store.stat(KEY) is not None


def test_delete_removes_one_object_and_a_missing_key_is_not_an_error(store: FileStore) -> None:
    put(store, "a.csv", b"x")
    put(store, "b.csv", b"x")
    store.delete("a.csv")
    store.delete("a.csv")
    store.delete("never/existed.csv")
    assert [info.key for info in store.list("")] == ["b.csv"]


def test_a_missing_key_has_no_stat_and_cannot_be_read_or_downloaded(store: FileStore, tmp_path: Path) -> None:
    assert store.stat("missing.csv") is None
    with pytest.raises(FileNotFoundError):
        store.read_bytes("missing.csv")
    with pytest.raises(FileNotFoundError):
        store.download("missing.csv", tmp_path / "dest.csv")


def _publish(store: FileStore, key: str) -> None:
    with store.publish(key) as path:
        path.write_bytes(b"x")


METHODS: dict[str, Callable[[FileStore, str, Path], object]] = {
    "list": lambda store, key, tmp: list(store.list(key)),
    "list_children": lambda store, key, tmp: store.list_children(key),
    "stat": lambda store, key, tmp: store.stat(key),
    "download": lambda store, key, tmp: store.download(key, tmp / "dest"),
    "publish": lambda store, key, tmp: _publish(store, key),
    "delete": lambda store, key, tmp: store.delete(key),
    "delete_prefix": lambda store, key, tmp: store.delete_prefix(key),
    "read_bytes": lambda store, key, tmp: store.read_bytes(key),
    "uri": lambda store, key, tmp: store.uri(key),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("key", ["../escape.csv", "/abs/a.csv", "a//b.csv", "a\\b.csv", "a\x00b", "x/\n"])
def test_every_method_refuses_an_unsafe_key(store: FileStore, method: str, key: str, tmp_path: Path) -> None:
    put(store, "a/b.csv", b"x")
    with pytest.raises(UnsafeKeyError):
        METHODS[method](store, key, tmp_path)
    assert [info.key for info in store.list("")] == ["a/b.csv"]
    assert not (tmp_path / "escape.csv").exists()


# --- local folder -------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "store")


def test_local_publish_writes_a_hidden_temp_file_next_to_the_target(local: LocalFolderStore) -> None:
    """Only a rename within one folder (one filesystem) is atomic; the dot keeps it out of listings."""
    with local.publish(KEY) as path:
        path.write_bytes(b"x")
        assert path.parent == local.root / "inbound/acme/2026-11-22"
        assert path.name.startswith(".orders_001.csv.") and path.suffix == ".csv"
        assert list(local.list("")) == []
    assert files_under(local.root) == [KEY]
    assert local.uri(KEY) == f"file://{local.root}/{KEY}"


def test_deleting_a_local_prefix_removes_the_temp_files_killed_writers_left_there(local: LocalFolderStore) -> None:
    """A SIGKILLed publish cannot clean up after itself: its hidden temp file would hold disk forever, since
    nothing lists it. Retention's delete_prefix takes it (after an hour, so a live writer keeps its file)."""
    put(local, "out/d1/a.csv", b"x")
    orphan = local.root / f"out/d1/.a.csv.{'0' * 32}.tmp.csv"
    live = local.root / f"out/d1/.b.csv.{'1' * 32}.tmp.csv"
    elsewhere = local.root / f"out/d2/.a.csv.{'2' * 32}.tmp.csv"
    not_a_temp = local.root / "out/d1/.keep"
    for path in (orphan, live, elsewhere, not_a_temp):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    for path in (orphan, elsewhere, not_a_temp):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert local.delete_prefix("out/d1/") == 1  # objects deleted: temp files were never objects
    kept = sorted(path.relative_to(local.root).as_posix() for path in (live, elsewhere, not_a_temp))
    assert files_under(local.root) == kept


def test_local_list_skips_hidden_files_temp_files_and_folders(local: LocalFolderStore) -> None:
    put(local, "in/a.csv", b"x")
    for hidden in ("in/.DS_Store", "in/.a.csv.0123.tmp.csv", ".hidden/b.csv", "in/.git/c.csv"):
        (local.root / hidden).parent.mkdir(parents=True, exist_ok=True)
        (local.root / hidden).write_bytes(b"x")
    (local.root / "in/empty").mkdir()
    assert [info.key for info in local.list("")] == ["in/a.csv"]
    assert local.list_children("in/") == (["in/empty/"], [local.stat("in/a.csv")])
    assert local.delete_prefix("in/") == 1
    assert (local.root / "in/.DS_Store").exists()


def test_local_store_refuses_hidden_names_because_it_keeps_them_for_temp_files(
    local: LocalFolderStore,
) -> None:
    """A file published under a hidden name would be invisible to list and to delete_prefix."""
    for key in (".env", "in/.a.csv", ".hidden/"):
        with pytest.raises(UnsafeKeyError, match="hidden"):
            _publish(local, key.rstrip("/") or key)
        with pytest.raises(UnsafeKeyError, match="hidden"):
            list(local.list(key))


def test_a_symlink_pointing_outside_the_root_is_refused(local: LocalFolderStore, tmp_path: Path) -> None:
    """A vendor or an operator can leave a symlink in a shared folder; it must not open the disk."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    local.root.mkdir()
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    (local.root / "leak.txt").symlink_to(outside / "secret.txt")
    put(local, "ok.txt", b"x")

    for key in ("link/secret.txt", "leak.txt"):
        for method in ("stat", "read_bytes", "download", "delete"):
            with pytest.raises(UnsafeKeyError, match="outside"):
                METHODS[method](local, key, tmp_path)
    with pytest.raises(UnsafeKeyError, match="outside"):
        _publish(local, "link/new.txt")
    with pytest.raises(UnsafeKeyError, match="outside"):
        list(local.list("link/"))

    assert [info.key for info in local.list("")] == ["ok.txt"]
    assert local.list_children("") == ([], [local.stat("ok.txt")])
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"


def test_a_local_republish_is_dated_after_the_file_it_replaces(local: LocalFolderStore) -> None:
    """The local version is size and mtime; a coarse filesystem clock must not repeat a version."""
    put(local, KEY, b"AAAA")
    future = (datetime.now(UTC) + timedelta(hours=1)).timestamp()
    os.utime(local.root / KEY, (future, future))
    old = local.stat(KEY)

    put(local, KEY, b"BBBB")
    new = local.stat(KEY)
    assert old is not None and new is not None
    assert new.modified > old.modified and new.version != old.version


# --- S3 ---------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_keys_live_under_the_store_prefix_and_come_back_relative(bucket: S3Bucket) -> None:
    store = S3Store(bucket.client, bucket.name, prefix="landing")
    put(store, "a/b.csv", b"x")
    bucket.client.put_object(Bucket=bucket.name, Key="elsewhere/c.csv", Body=b"x")
    bucket.client.put_object(Bucket=bucket.name, Key="landing/folder/", Body=b"")

    raw = bucket.client.list_objects_v2(Bucket=bucket.name)["Contents"]
    assert sorted(obj["Key"] for obj in raw) == ["elsewhere/c.csv", "landing/a/b.csv", "landing/folder/"]
    assert [info.key for info in store.list("")] == ["a/b.csv"]
    assert store.uri("a/b.csv") == f"s3://{bucket.name}/landing/a/b.csv"

    whole = S3Store(bucket.client, bucket.name)
    assert [info.key for info in whole.list("")] == ["elsewhere/c.csv", "landing/a/b.csv"]
    assert whole.uri("elsewhere/c.csv") == f"s3://{bucket.name}/elsewhere/c.csv"


@pytest.mark.s3
def test_s3_version_is_the_etag_without_quotes_and_the_upload_second(bucket: S3Bucket) -> None:
    """The same bytes uploaded again are a new upload to process, as a rewritten local file is."""
    store = S3Store(bucket.client, bucket.name)
    put(store, KEY, b"x")
    head = bucket.client.head_object(Bucket=bucket.name, Key=KEY)
    assert head["ETag"].startswith('"')
    expected = f"{head['ETag'].strip(chr(34))}@{int(head['LastModified'].timestamp())}"
    assert [info.version for info in store.list("")] == [expected]
    assert store.stat(KEY).version == expected


@pytest.mark.s3
def test_s3_publish_of_a_large_file_arrives_as_one_whole_object(bucket: S3Bucket, tmp_path: Path) -> None:
    """Above 8 MB upload_file switches to a multipart upload, which S3 shows only once complete."""
    store = S3Store(bucket.client, bucket.name)
    data = os.urandom(9 * 1024 * 1024)
    put(store, "big.bin", data)
    info: ObjectInfo | None = store.stat("big.bin")
    assert info is not None and info.size == len(data)
    assert info.version.split("@")[0].endswith("-2")  # the ETag of a two-part multipart upload
    store.download("big.bin", tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == data


@pytest.mark.s3
def test_s3_test_clients_retry_transient_errors_through_botocore(bucket: S3Bucket) -> None:
    retries = bucket.client.meta.config.retries
    # RETRY_CONFIG: 6 tries in all, the first included.
    assert retries == {"mode": "standard", "total_max_attempts": 6}
