"""Transient versus permanent S3 errors, against a real HTTP proxy in front of the moto server.

Transient errors (500, 503 SlowDown, a dropped connection) are retried by botocore's standard
retry mode with exponential backoff (RETRY_CONFIG, which the file store resource builds its client
with) and the operation succeeds; past the attempts they surface. Permanent ones (no such bucket,
access denied, refused credentials) are not retried: one request, and a StoreConfigError that says
what to fix. A failure botocore cannot retry (a download cut short after its headers) fails the
step, and the vendor asset's RetryPolicy runs it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from batch_assets.defs.resources import FileStoreResource, build_resources
from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.engine.vendor_day import stage_vendor_day
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import RETRY_CONFIG, FileStore, S3Store, StoreConfigError
from batch_assets_tests.conftest import VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import slice_defs
from batch_assets_tests.reliability.faulty_s3 import Fault, FaultyS3, faulty_s3, is_list, object_request
from batch_assets_tests.reliability.support import record_figures
from batch_assets_tests.s3_server import S3Bucket

pytestmark = pytest.mark.s3

DAY = "2026-03-02"
KEY = f"inbound/acme_retail/{DAY}/orders_{DAY}_001.csv"
ATTEMPTS = RETRY_CONFIG.retries["total_max_attempts"]  # the first try included
TRANSIENT = {
    "500 InternalError": Fault("error", 500, "InternalError"),
    "503 SlowDown": Fault("error", 503, "SlowDown"),
    "connection dropped": Fault("reset"),
}


@pytest.fixture
def proxy(s3_bucket: S3Bucket) -> Iterator[FaultyS3]:
    with faulty_s3(s3_bucket.endpoint_url) as state:
        yield state


def store_through(proxy: FaultyS3, bucket: str) -> FileStore:
    """The store as the deployment builds it (FileStoreResource: RETRY_CONFIG, path style), via the proxy."""
    return FileStoreResource(backend="s3", bucket=bucket, prefix="exchange", endpoint_url=proxy.url).store()


def put(store: FileStore, key: str, data: bytes) -> None:
    with store.publish(key) as path:
        path.write_bytes(data)


OPERATIONS = {
    # name: (what a matching request looks like, the call)
    "publish": (object_request("PUT", KEY), lambda store, tmp: put(store, KEY, b"a,b\n1,2\n")),
    "list": (is_list, lambda store, tmp: list(store.list("inbound/"))),
    "download": (object_request("GET", KEY), lambda store, tmp: store.download(KEY, tmp / "copy")),
    "stat": (object_request("HEAD", KEY), lambda store, tmp: store.stat(KEY)),
    "delete": (object_request("DELETE", KEY), lambda store, tmp: store.delete(KEY)),
}


@pytest.mark.parametrize("fault_name", list(TRANSIENT))
def test_a_transient_error_is_retried_and_every_operation_succeeds(
    proxy: FaultyS3, s3_bucket: S3Bucket, tmp_path: Path, fault_name: str, record_property
) -> None:
    """S3 answers 500, 503 SlowDown or drops connections now and then: each file-store operation must ride it out."""
    store = store_through(proxy, s3_bucket.name)
    put(store, KEY, b"a,b\n1,2\n")
    failures = 2
    for operation, (matches, call) in OPERATIONS.items():
        proxy.clear()
        proxy.fail(matches, TRANSIENT[fault_name], times=failures)
        call(store, tmp_path)
        attempts = [s for s in proxy.seen if matches(s.method, s.path)]
        assert [a.answer == "forwarded" for a in attempts] == [False] * failures + [True], operation
    record_figures(record_property, f"transient {fault_name}", faults=failures * len(OPERATIONS))


def test_throttling_is_retried_with_exponential_backoff(proxy: FaultyS3, s3_bucket: S3Bucket, record_property) -> None:
    """SlowDown waits rand(0,1) x 1 s, x 2 s, x 4 s before the retries (botocore's standard mode),
    so three failures take seconds, not the milliseconds of a retry loop without backoff."""
    store = store_through(proxy, s3_bucket.name)
    proxy.fail(is_list, TRANSIENT["503 SlowDown"], times=3)
    started = time.monotonic()
    list(store.list("inbound/"))
    attempts = [s.at for s in proxy.seen if is_list(s.method, s.path)]
    waits = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert len(attempts) == 4
    assert sum(waits) > 0.05, waits  # without backoff: a few milliseconds (P(backoff < 0.05 s) ~ 3e-6)
    assert all(w < 2**i + 1 for i, w in enumerate(waits)), waits  # the cap of each wait, plus slack
    record_figures(
        record_property, "throttling backoff", waits_s=round(sum(waits), 3), took_s=round(time.monotonic() - started, 3)
    )


@pytest.mark.parametrize("attempts", [None, 2])
def test_a_transient_error_that_outlasts_the_attempts_surfaces_after_all_of_them(
    proxy: FaultyS3, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, attempts: int | None
) -> None:
    """An outage longer than the retries must surface (the step's RetryPolicy takes over), after exactly the
    configured number of tries: BATCH_ASSETS_S3_ATTEMPTS trades waiting against failing fast."""
    if attempts is not None:
        monkeypatch.setenv("BATCH_ASSETS_S3_ATTEMPTS", str(attempts))
    settings = Settings(storage="s3", s3_bucket=s3_bucket.name, s3_prefix="exchange", s3_endpoint_url=proxy.url)
    store = build_resources(settings)["file_store"].store()
    proxy.fail(is_list, TRANSIENT["500 InternalError"], times=None)
    with pytest.raises(ClientError, match="InternalError"):
        list(store.list("inbound/"))
    assert len([s for s in proxy.seen if is_list(s.method, s.path)]) == (attempts or ATTEMPTS)


PERMANENT = {
    "NoSuchBucket": (Fault("error", 404, "NoSuchBucket"), "the bucket does not exist", "BATCH_ASSETS_S3_BUCKET"),
    "AccessDenied": (Fault("error", 403, "AccessDenied"), "access is denied", "s3:GetObject"),
    "InvalidAccessKeyId": (Fault("error", 403, "InvalidAccessKeyId"), "credentials are refused", "AWS_ACCESS_KEY_ID"),
    "SignatureDoesNotMatch": (
        Fault("error", 403, "SignatureDoesNotMatch"),
        "credentials are refused",
        "AWS_SECRET_ACCESS_KEY",
    ),
}


@pytest.mark.parametrize("code", list(PERMANENT))
def test_a_permanent_error_fails_at_once_and_says_what_to_fix(
    proxy: FaultyS3, s3_bucket: S3Bucket, tmp_path: Path, code: str, record_property
) -> None:
    """Retrying a wrong bucket or refused credentials only delays the alert: fail at once, naming what to fix."""
    store = store_through(proxy, s3_bucket.name)
    put(store, KEY, b"a,b\n1,2\n")
    fault, problem, fix = PERMANENT[code]
    for operation in ("publish", "list", "download", "delete"):
        proxy.clear()
        proxy.fail(lambda _m, _p: True, fault, times=None)
        started = time.monotonic()
        with pytest.raises(StoreConfigError) as raised:
            OPERATIONS[operation][1](store, tmp_path)
        assert time.monotonic() - started < 5, operation
        assert len(proxy.seen) == 1, (operation, proxy.seen)  # one request: not retried
        message = str(raised.value)
        assert problem in message and fix in message and s3_bucket.name in message and proxy.url in message
    record_figures(record_property, f"permanent {code}", faults=4, requests=4)


def test_access_denied_on_a_head_request_is_permanent_too(proxy: FaultyS3, s3_bucket: S3Bucket) -> None:
    """HEAD answers carry no error document: a bare 403 is a permission problem, a bare 404 'no object'."""
    store = store_through(proxy, s3_bucket.name)
    assert store.stat(KEY) is None
    proxy.fail(lambda _m, _p: True, Fault("error", 403, "AccessDenied"), times=None)
    with pytest.raises(StoreConfigError, match="access is denied"):
        store.stat(KEY)


def test_a_bucket_that_does_not_exist_stops_a_vendor_day_at_once_without_quarantining_anything(
    s3_bucket: S3Bucket, demo_specs: dict[str, VendorSpec]
) -> None:
    """Against the real server: a wrong bucket name is a configuration error, not a file error."""
    store = S3Store(s3_bucket.client, f"{s3_bucket.name}-missing", "exchange")
    started = time.monotonic()
    with pytest.raises(StoreConfigError, match="does not exist: create it, or set BATCH_ASSETS_S3_BUCKET"):
        stage_vendor_day(store, demo_specs["acme_retail"], DAY, keys={"BATCH_ASSETS_HASH_KEY": b"k"})
    assert time.monotonic() - started < 5


def test_a_download_cut_short_fails_the_step_and_the_retry_policy_runs_it_again(
    proxy: FaultyS3, s3_bucket: S3Bucket, demo_specs: dict[str, VendorSpec], tmp_path: Path, record_property
) -> None:
    """botocore retries requests, not a body that stops halfway (the answer was already 200): that
    fails the step attempt, and the asset's RetryPolicy (TRANSIENT_RETRIES) recomputes the day."""
    spec = demo_specs["acme_retail"]
    name = file_name_for(spec, DAY, 1)
    made = write_vendor_file(spec, tmp_path / name, 200, invalid_share=0.1, seed=5)
    s3_bucket.client.upload_file(str(tmp_path / name), s3_bucket.name, f"exchange/inbound/acme_retail/{DAY}/{name}")
    proxy.fail(object_request("GET", f"/inbound/acme_retail/{DAY}/{name}"), Fault("truncate"), times=1)
    settings = Settings(
        vendors_dir=VENDORS_DIR,
        storage="s3",
        s3_bucket=s3_bucket.name,
        s3_prefix="exchange",
        s3_endpoint_url=proxy.url,
    )
    job = slice_defs(settings).resolve_job_def("process_vendor_files_job")
    result = job.execute_in_process(
        partition_key=DAY,
        asset_selection=[dg.AssetKey(["vendor", "acme_retail", s]) for s in ("staged", "rejects", "outbound")],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
    downloads = proxy.attempts("GET", f"/inbound/acme_retail/{DAY}/{name}")
    assert [d.answer for d in downloads] == ["truncate:InternalError", "forwarded"]
    (staged,) = [
        m for m in result.asset_materializations_for_node("stage_acme_retail") if m.asset_key.path[-1] == "staged"
    ]
    assert staged.metadata["rows_in"].value == made.records
    assert staged.metadata["rows_rejected"].value == made.invalid
    store = S3Store(s3_bucket.client, s3_bucket.name, "exchange")
    assert [o.key for o in store.list(f"{layout.QUARANTINE}/")] == []
    record_figures(record_property, "step retry after a cut download", step_retries=len(retries))
