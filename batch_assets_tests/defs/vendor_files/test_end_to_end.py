"""The whole path on real parts: a file PUT into an S3 server, the daemon's sensor, a queued run,
the outbound file read back over S3, and the run history in PostgreSQL through dagster-postgres."""

import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pyarrow.csv as pacsv
import pytest

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets_tests.conftest import HASH_KEY, REPO_ROOT, VENDORS_DIR
from batch_assets_tests.s3_server import DUMMY_ENV

pytestmark = [pytest.mark.s3, pytest.mark.postgres]


def daemon_env(home: Path, bucket, pg: dict) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": pg["host"],
        "DAGSTER_PG_PORT": str(pg["port"]),
        "DAGSTER_PG_USERNAME": pg["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": pg["db_name"],
        "DAGSTER_MAX_CONCURRENT_RUNS": "2",
        "BATCH_ASSETS_VENDORS_DIR": str(VENDORS_DIR),
        "BATCH_ASSETS_STORAGE": "s3",
        "BATCH_ASSETS_S3_BUCKET": bucket.name,
        "BATCH_ASSETS_S3_PREFIX": "exchange",
        "BATCH_ASSETS_S3_ENDPOINT_URL": bucket.endpoint_url,
        "BATCH_ASSETS_SENSOR_INTERVAL_SECONDS": "1",
        "BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS": "0",
        "BATCH_ASSETS_HASH_KEY": HASH_KEY,
        **DUMMY_ENV,
    }


def wait_for_run(
    instance: dg.DagsterInstance, vendor: str | dict[str, str], daemon: subprocess.Popen, timeout: float
) -> dg.DagsterRun:
    """The first finished run of ``vendor`` (or with these tags)."""
    tags = {"vendor": vendor} if isinstance(vendor, str) else vendor
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.poll() is None, "the daemon exited"
        runs = instance.get_runs(filters=dg.RunsFilter(tags=tags))
        done = [r for r in runs if r.is_finished]
        if done:
            return done[0]
        time.sleep(1)
    raise AssertionError(f"no finished run for {vendor} within {timeout}s; runs: {[r.status for r in runs]}")


@contextmanager
def running_daemon(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the repo's workspace, as deployed; stopped when the block ends."""
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield daemon
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)


def test_a_file_put_into_s3_flows_through_a_sensor_run_to_the_outbound_file(
    tmp_path, s3_bucket, postgres_db, demo_specs, monkeypatch
) -> None:
    spec = demo_specs["acme_retail"]
    day = dt.datetime.now(dt.UTC).date().isoformat()
    name = file_name_for(spec, day, 1)
    made = write_vendor_file(spec, tmp_path / name, 400, invalid_share=0.05, seed=3)
    s3_bucket.client.upload_file(str(tmp_path / name), s3_bucket.name, f"exchange/inbound/acme_retail/{day}/{name}")

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    env = daemon_env(home, s3_bucket, postgres_db)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with running_daemon(env, tmp_path / "daemon.log") as daemon:
        instance = dg.DagsterInstance.get()
        run = wait_for_run(instance, "acme_retail", daemon, timeout=120)
    assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
    assert run.tags["dagster/partition"] == day
    assert run.tags["dagster/priority"] == "10"

    body = s3_bucket.client.get_object(
        Bucket=s3_bucket.name, Key=f"exchange/outbound/acme_retail/{day}/{name.rsplit('.', 1)[0]}.csv"
    )["Body"].read()
    table = pacsv.read_csv(io.BytesIO(body), parse_options=pacsv.ParseOptions(delimiter="|"))
    assert table.num_rows == made.records - made.invalid
    assert "line_total" in table.column_names

    # Run history lives in PostgreSQL: the materialization is there, with its numbers.
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    records = instance.fetch_materializations(dg.AssetKey(["vendor", "acme_retail", "staged"]), limit=10).records
    assert [r.partition_key for r in records] == [day]
    meta = records[0].asset_materialization.metadata
    assert meta["rows_in"].value == made.records
    assert meta["rows_rejected"].value == made.invalid


def test_vendors_landing_together_share_one_run_when_the_deployment_asks_for_it(
    tmp_path, s3_bucket, postgres_db, demo_specs, monkeypatch
) -> None:
    """BATCH_ASSETS_ARRIVAL_VENDORS_PER_RUN: two HIGH vendors' files in one tick become one run that
    delivers both, on the same daemon, S3 server and PostgreSQL as above."""
    started = dt.datetime.now(dt.UTC)
    day = started.date().isoformat()
    made = {}
    for vendor in ("acme_retail", "initech_payroll"):
        spec = demo_specs[vendor]
        name = file_name_for(spec, day, 1)
        made[vendor] = write_vendor_file(spec, tmp_path / name, 300, invalid_share=0.05, seed=5)
        s3_bucket.client.upload_file(str(tmp_path / name), s3_bucket.name, f"exchange/inbound/{vendor}/{day}/{name}")

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **daemon_env(home, s3_bucket, postgres_db),
        "BATCH_ASSETS_ARRIVAL_VENDORS_PER_RUN": "10",
        "BATCH_ASSETS_ARRIVAL_LANES": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with running_daemon(env, tmp_path / "daemon.log") as daemon:
        instance = dg.DagsterInstance.get()
        run = wait_for_run(instance, {"vendors": "acme_retail,initech_payroll"}, daemon, timeout=150)
        # The PostgreSQL database is the session's: count only the runs this test's daemon started.
        assert len(instance.get_runs(filters=dg.RunsFilter(created_after=started))) == 1
    assert run.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
    assert run.tags["vendor_lane"] == "lane-0"
    assert run.tags["dagster/priority"] == "10"
    for vendor, generated in made.items():
        listed = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name, Prefix=f"exchange/outbound/{vendor}/{day}/")
        delivered = sorted(o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", []))
        assert [n.endswith(".pdf") for n in delivered] == [True, False], delivered  # the day's report and the file
        records = instance.fetch_materializations(dg.AssetKey(["vendor", vendor, "staged"]), limit=10).records
        (ours,) = [r for r in records if r.run_id == run.run_id]  # the session's database: other tests' too
        assert ours.partition_key == day
        meta = ours.asset_materialization.metadata
        assert (meta["rows_in"].value, meta["rows_rejected"].value) == (generated.records, generated.invalid)
