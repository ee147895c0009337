"""The PostgreSQL instance profile with a real dagster-daemon: queue limits, priority order, run
retries and run-key deduplication, shown on real runs and read back from PostgreSQL.

One test, one daemon: the daemon costs ~10 CPU-seconds to start, and pytest-xdist would start one
per worker if the steps were separate tests sharing a module fixture.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from batch_assets_tests.conftest import REPO_ROOT
from batch_assets_tests.deploy.probe_location import REQUESTS_ENV, TICKS_ENV

pytestmark = pytest.mark.postgres

PROFILE = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"


def postgres_env(home: Path, pg: dict, max_runs: int) -> dict[str, str]:
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": str(pg["host"]),
        "DAGSTER_PG_PORT": str(pg["port"]),
        "DAGSTER_PG_USERNAME": str(pg["user"]),
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": str(pg["db_name"]),
        "DAGSTER_MAX_CONCURRENT_RUNS": str(max_runs),
    }


@contextmanager
def probe_daemon(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the probe location, with the profile under test."""
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-m",
                "batch_assets_tests.deploy.probe_location",
            ],
            cwd=REPO_ROOT,
            env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield daemon
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)


def wait_for(what: str, check: Callable[[], object], daemon: subprocess.Popen, log: Path, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.poll() is None, f"the daemon exited:\n{log.read_text()[-3000:]}"
        if found := check():
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def request(run_key: str, job: str, vendor: str, priority: str | None = None, **extra) -> dict:
    tags = {"vendor": vendor, **extra.pop("tags", {})}
    if priority:
        tags |= {"priority": priority, "dagster/priority": {"HIGH": "10", "MEDIUM": "0", "LOW": "-10"}[priority]}
    return {"run_key": run_key, "job": job, "tags": tags, **extra}


def write_requests(path: Path, requests: list[dict]) -> None:
    """Replace the file at once: the sensor never reads half of it."""
    temp = path.with_suffix(".tmp")
    temp.write_text("".join(json.dumps(r) + "\n" for r in requests))
    temp.replace(path)


def test_the_postgres_profile_limits_orders_retries_and_dedupes_real_runs(tmp_path, postgres_db, monkeypatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROFILE, home / "dagster.yaml")
    requests_file, ticks_file = tmp_path / "requests.jsonl", tmp_path / "ticks.log"
    release_blocker, release_high = tmp_path / "release_blocker", tmp_path / "release_high"
    # Three slots: the blocker and both flaky runs run at once; vendor limits alone hold LOW and HIGH back.
    env = {
        **postgres_env(home, postgres_db, max_runs=3),
        REQUESTS_ENV: str(requests_file),
        TICKS_ENV: str(ticks_file),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def until(release: Path) -> dict:
        return {"ops": {"hold": {"config": {"release_file": str(release)}}}}

    requests = [
        request("blocker", "hold_job", "v1", "MEDIUM", config=until(release_blocker)),
        request("flaky-default", "flaky_job", "v2"),
        request("flaky-opt-in", "flaky_job", "v3", tags={"dagster/retry_on_asset_or_op_failure": "true"}),
    ]
    write_requests(requests_file, requests)
    log = tmp_path / "daemon.log"
    instance = dg.DagsterInstance.from_config(str(home))

    def run_of(key: str) -> dg.DagsterRun | None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": key}))
        originals = [r for r in runs if "dagster/parent_run_id" not in r.tags]
        return originals[0] if originals else None

    with probe_daemon(env, log) as daemon:
        wait_for(
            "the blocker to start",
            lambda: (r := run_of("blocker")) and r.status == dg.DagsterRunStatus.STARTED,
            daemon,
            log,
        )
        # LOW is requested before HIGH, both for the busy vendor v1.
        requests += [
            request("low", "hold_job", "v1", "LOW", config=until(release_high)),
            request("high", "hold_job", "v1", "HIGH", config=until(release_high)),
        ]
        write_requests(requests_file, requests)
        written = time.time()
        wait_for("LOW and HIGH to be queued", lambda: run_of("low") and run_of("high"), daemon, log)
        time.sleep(3)  # more than a dequeue interval: the queue state holds, it is not just seen once
        queued = {key: run_of(key).status for key in ("blocker", "low", "high")}
        release_blocker.touch()
        wait_for("the next v1 run to start", lambda: run_of("high").status != dg.DagsterRunStatus.QUEUED, daemon, log)
        # HIGH got the vendor's slot; LOW still waits. Cancel it (it would only repeat the point).
        dequeued = {key: run_of(key).status for key in ("blocker", "low", "high")}
        instance.run_coordinator.cancel_run(run_of("low").run_id)
        release_high.touch()
        finished = wait_for(
            "the v1 runs to finish",
            lambda: all((r := run_of(k)) and r.is_finished for k in ("blocker", "low", "high")),
            daemon,
            log,
        )
        retry = wait_for(
            "the opted-in flaky run's retry to finish",
            lambda: [
                r
                for r in instance.get_runs(
                    filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_of("flaky-opt-in").run_id})
                )
                if r.is_finished
            ],
            daemon,
            log,
        )
        wait_for(
            "the default flaky run's retry verdict",
            lambda: "dagster/will_retry" in run_of("flaky-default").tags,
            daemon,
            log,
        )
        wait_for(
            "three more sensor ticks after the last request",
            lambda: sum(float(t) > written for t in ticks_file.read_text().split()) >= 3,
            daemon,
            log,
        )
    assert finished
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    # Vendor limit: while the blocker runs, the other two runs of its vendor wait in the queue.
    assert queued == {
        "blocker": dg.DagsterRunStatus.STARTED,
        "low": dg.DagsterRunStatus.QUEUED,
        "high": dg.DagsterRunStatus.QUEUED,
    }
    # Priority: HIGH, created after LOW, was dequeued first; LOW stayed queued behind it.
    assert dequeued["low"] == dg.DagsterRunStatus.QUEUED
    assert dequeued["high"] in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
    records = {k: instance.get_run_record_by_id(run_of(k).run_id) for k in ("blocker", "low", "high")}
    assert records["low"].create_timestamp <= records["high"].create_timestamp
    assert records["blocker"].dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert records["high"].dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert records["low"].dagster_run.status == dg.DagsterRunStatus.CANCELED
    # No two v1 runs overlapped: HIGH started after the blocker ended.
    assert records["blocker"].end_time <= records["high"].start_time

    # Run retries (retry_on_asset_or_op_failure: false): a failed step is not retried unless the
    # run opts in with the tag; the retry is a new run of the same group, numbered 1.
    default_run = run_of("flaky-default")
    assert default_run.status == dg.DagsterRunStatus.FAILURE
    assert default_run.tags["dagster/will_retry"] == "false"
    assert instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": default_run.run_id})) == []
    opted_in = run_of("flaky-opt-in")
    assert opted_in.status == dg.DagsterRunStatus.FAILURE
    [child] = retry
    assert child.status == dg.DagsterRunStatus.SUCCESS
    assert child.tags["dagster/retry_number"] == "1"
    assert child.root_run_id == opted_in.run_id

    # Run keys: the sensor re-requested every key on every tick; each started one run.
    for r in requests:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": r["run_key"]}))
        assert len([run for run in runs if "dagster/parent_run_id" not in run.tags]) == 1, r["run_key"]
