"""The production profiles under deploy/: AWS (ECS), Kubernetes (Helm) and Celery workers.

The AWS profile is loaded into a real instance (PostgreSQL; the ECS launcher and S3 log manager
built, no AWS call made); the Helm values are checked against what the chart renders; the Celery
profile runs for real: two ``dagster-celery worker start`` processes on a Redis broker, a
PostgreSQL instance, the local file store, the job the Celery code location serves
(deploy/celery/definitions.py) with its run config (deploy/celery/celery.yaml). Its outputs must
be those of a single-process run, byte for byte (staged Parquet: see ``same_output``): where a
step runs must not change what it writes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from uuid import uuid4

import dagster as dg
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
import yaml

# Not re-exported by dagster: the only way to hand a job of a Definitions object in a file to
# dg.execute_job, which needs a reconstructable job for an executor that leaves the process.
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import HASH_KEY, POSTGRES, REPO_ROOT, VENDORS_DIR
from batch_assets_tests.defs.vendor_files.helpers import drop_file, slice_defs

pytestmark = [
    pytest.mark.postgres,
    # dagster-celery registers its task again on every submit; celery warns, harmlessly.
    pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning"),
]

BIN = Path(sys.executable).parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
CELERY_DEFS = REPO_ROOT / "deploy" / "celery" / "definitions.py"
CELERY_RUN_CONFIG = REPO_ROOT / "deploy" / "celery" / "celery.yaml"
JOB = "process_vendor_files_celery_job"
# A Redis database of this test's own (flushed before and after), and queue names of each run's own:
# other work on the shared server, or a worker left over from an interrupted run, never takes
# this test's steps.
BROKER = "redis://127.0.0.1:6379/8"
# A two-day backfill: one run per vendor day partition, as the backfill daemon launches them.
DAYS = ("2026-11-09", "2026-11-10")
RECORDS = 500
ARTIFACTS = REPO_ROOT / "test-artifacts" / "celery"
AWS_PROFILE = REPO_ROOT / "deploy" / "aws" / "dagster.yaml"
POSTGRES_PROFILE = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"
HELM_VALUES = REPO_ROOT / "deploy" / "k8s" / "values.yaml"
DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
# The one-worker baseline doubles the test's time, so it runs on request only:
#   BATCH_ASSETS_CELERY_BASELINE=1 uv run pytest batch_assets_tests/test_deploy.py -k celery -s
# and both runs' times land in test-artifacts/celery/timings.json.
BASELINE = os.environ.get("BATCH_ASSETS_CELERY_BASELINE") == "1"


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database of this test's own on the machine's PostgreSQL (the session's is shared)."""
    name = f"batch_assets_deploy_{uuid4().hex[:12]}"
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def instance_home(tmp_path: Path, postgres_database: str) -> Path:
    """DAGSTER_HOME on a fresh PostgreSQL database: the workers and the run share its run history."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    url = f"postgresql://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{postgres_database}"
    config = {"storage": {"postgres": {"postgres_url": url}}, "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def policy(profile: dict) -> dict:
    """The parts of an instance profile that are policy, not infrastructure."""
    return {
        "tag_concurrency_limits": profile["run_coordinator"]["config"]["tag_concurrency_limits"],
        "concurrency": profile.get("concurrency"),
        "run_retries": profile.get("run_retries"),
        "retention": profile.get("retention"),
        "max_runtime_seconds": profile["run_monitoring"]["max_runtime_seconds"],
    }


def test_the_aws_profile_builds_an_instance_that_runs_each_run_as_a_fargate_task(
    tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile is only read when the daemon starts in AWS: a typo must fail here, not there."""
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    needed = set(re.findall(r"\{env: (\w+)\}", AWS_PROFILE.read_text()))
    documented = set(re.findall(r"`(\w+)`", DEPLOY_DOC.read_text()))
    assert needed <= documented, f"not in docs/deploy.md: {sorted(needed - documented)}"
    env = {name: f"arn:aws:test:{name.lower()}" for name in needed} | {
        "DAGSTER_PG_HOST": POSTGRES["host"],
        "DAGSTER_PG_PORT": str(POSTGRES["port"]),
        "DAGSTER_PG_USERNAME": POSTGRES["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": postgres_database,
        "DAGSTER_MAX_CONCURRENT_RUNS": "20",
        "DAGSTER_COMPUTE_LOG_BUCKET": "batch-assets-logs",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "aws_home"
    home.mkdir()
    shutil.copy(AWS_PROFILE, home / "dagster.yaml")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []  # the run history is the PostgreSQL database
        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.task_definition_dict["requires_compatibilities"] == ["FARGATE"]
        assert launcher.use_current_ecs_task_config
        assert {s["name"] for s in launcher.secrets} == {"DAGSTER_PG_PASSWORD", "BATCH_ASSETS_HASH_KEY"}
        settings = {f"BATCH_ASSETS_{name.upper()}" for name in Settings.model_fields}
        for name in launcher.env_vars:
            assert name.startswith("DAGSTER_") or name in settings, name
            assert not re.search("PASSWORD|SECRET|KEY", name), f"{name}: pass secrets as secrets"
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        queue = instance.run_coordinator.get_run_queue_config()
        assert queue.max_concurrent_runs == 20
        assert instance.run_monitoring_settings["start_timeout_seconds"] >= 180
    # Same queue limits, pools, retries and retention as the PostgreSQL profile everything else uses.
    assert policy(yaml.safe_load(AWS_PROFILE.read_text())) == policy(yaml.safe_load(POSTGRES_PROFILE.read_text()))


def test_the_helm_values_serve_this_image_with_a_job_per_run_and_the_instance_policy(tmp_path: Path) -> None:
    """The chart cannot be rendered here (no Helm): check what it renders from, and that the
    instance settings it passes through are ones Dagster accepts."""
    values = yaml.safe_load(HELM_VALUES.read_text())
    [code] = values["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert code["dagsterApiGrpcArgs"] == ["-m", module]
    assert code["image"]["tag"] != "latest" and code["includeConfigInLaunchedRuns"]["enabled"]
    uid = next(line.split()[1].split(":")[0] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER"))
    assert code["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False

    # The chart's queued coordinator values map one to one onto the instance's fields: build an
    # instance from them and the additional instance config, and compare the policy.
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    snake = {re.sub(r"([A-Z])", r"_\1", k).lower(): v for k, v in queued.items()}
    instance_yaml = {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": snake},
        **values["additionalInstanceConfig"],
    }
    # K8sRunLauncher resumes a run whose pod died; the default launcher of this test instance cannot.
    checked = yaml.safe_load(yaml.safe_dump(instance_yaml))
    assert checked["run_monitoring"].pop("max_resume_run_attempts") >= 1
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(checked))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == queued["maxConcurrentRuns"]
        assert instance.run_monitoring_settings["max_runtime_seconds"] == 7200
    assert policy(instance_yaml) == policy(yaml.safe_load(POSTGRES_PROFILE.read_text()))


@contextmanager
def celery_worker(name: str, queues: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``dagster-celery worker start`` as deployed, one task at a time; stopped with its children."""
    command = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(CELERY_RUN_CONFIG)]
    # One -q with a comma-separated list: the CLI turns each -q into a -Q and celery keeps the last.
    # -i imports the project before the pool forks, so a worker's first step does not pay for it.
    command += ["-n", name, "-q", ",".join(queues), "-i", "batch_assets.definitions"]
    command += ["--", "--concurrency=1", "--without-mingle", "--without-gossip"]
    with open(log, "wb") as out:
        # Its own session: the CLI starts `celery worker`, which forks its pool; the group goes together.
        worker = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield worker
        finally:
            stop_group(worker)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the worker's process group (the CLI, `celery worker` and its pool); SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 30
        while group_members(process.pid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.2)
        if not group_members(process.pid):
            break
    process.wait(timeout=10)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_until_ready(logs: dict[str, Path], workers: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(logs)
    while pending:
        for name, log in list(pending.items()):
            if f"{name}@" in (text := log.read_text(errors="replace")) and " ready." in text:
                del pending[name]
        for w in workers:
            assert w.poll() is None, f"a worker exited with {w.returncode}:\n" + "\n".join(
                p.read_text(errors="replace")[-2000:] for p in logs.values()
            )
        assert time.monotonic() < deadline, f"workers not ready within {timeout}s: {sorted(pending)}"
        time.sleep(0.3)


def celery_job() -> ReconstructableJob:
    repository = ReconstructableRepository.for_file(str(CELERY_DEFS), "defs", working_directory=str(REPO_ROOT))
    return repository.get_reconstructable_job(JOB)


def run_on_celery(instance: dg.DagsterInstance, queue: str, day: str) -> dg.DagsterRun:
    """Launch the Celery job for one day, its steps sent to ``queue``; returns the finished run."""
    run_config = yaml.safe_load(CELERY_RUN_CONFIG.read_text())
    run_config["execution"]["config"]["config_source"] = {"task_default_queue": queue}
    result = dg.execute_job(celery_job(), instance, run_config=run_config, tags={"dagster/partition": day})
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result.dagster_run


def workers_by_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Which worker executed each step, from the executor's engine events."""
    placed = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata
        if "Celery worker" in metadata:
            placed[record.step_key] = metadata["Celery worker"].value.split("@")[0]
    return placed


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def same_output(key: str, written: bytes, expected: bytes) -> bool:
    """Byte for byte, except staged Parquet: compared as tables (schema, metadata, rows in order).

    The engine writes each DuckDB result as it comes, and DuckDB's result chunks (hence Parquet's
    page boundaries) follow its threads' scheduling: four single-process runs of the same day at
    once gave two byte versions of every staged file, with equal tables. Every file a vendor
    receives (outbound, report) and every rejects file is compared byte for byte.
    """
    if key.startswith("staged/") and key.endswith(".parquet"):
        tables = [pq.read_table(pa.BufferReader(b)) for b in (written, expected)]
        return tables[0].equals(tables[1], check_metadata=True)
    return written == expected


def test_two_celery_workers_share_a_two_day_backfill_and_write_what_one_process_writes(
    tmp_path: Path, instance_home: Path, demo_specs: dict[str, VendorSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scaling out must be a deployment choice only: same files, whichever worker ran a step."""
    data, reference = tmp_path / "data", tmp_path / "reference"
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "DAGSTER_HOME": str(instance_home),
        "BATCH_ASSETS_DATA_DIR": str(data),
        "BATCH_ASSETS_VENDORS_DIR": str(VENDORS_DIR),
        "BATCH_ASSETS_HASH_KEY": HASH_KEY,
        "DAGSTER_CELERY_BROKER_URL": BROKER,
        "DAGSTER_CELERY_BACKEND_URL": BROKER,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    t0 = time.monotonic()
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    logs = {name: tmp_path / f"{name}.log" for name in ("worker1", "worker2")}
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        stack.callback(broker.flushdb)
        # Both workers listen on `shared`; worker1 alone also on `solo`.
        shared = f"batch_assets_{uuid4().hex[:8]}"
        solo = f"{shared}_solo"
        workers = [
            stack.enter_context(celery_worker("worker1", [shared, solo], env, logs["worker1"])),
            stack.enter_context(celery_worker("worker2", [shared], env, logs["worker2"])),
        ]

        # While the workers start: the vendors' files, and the single-process reference run.
        for spec in demo_specs.values():
            for day in DAYS:
                drop_file(LocalFolderStore(data), spec, day=day, n=1, records=RECORDS)
        shutil.copytree(data, reference)
        started = time.monotonic()
        settings = Settings(vendors_dir=VENDORS_DIR, storage="local", data_dir=reference)
        single = slice_defs(settings).resolve_job_def("process_vendor_files_job")
        for day in DAYS:
            assert single.execute_in_process(partition_key=day, instance=dg.DagsterInstance.ephemeral()).success
        timings["single_process_in_process_s"] = time.monotonic() - started
        expected = files_of(reference)
        assert any(k.startswith("outbound/") for k in expected) and any(k.startswith("staged/") for k in expected)

        # Load the Celery code location here while the workers finish starting (the load is cached).
        assert celery_job().get_definition().name == JOB
        wait_until_ready(logs, workers)
        timings["workers_ready_after_s"] = time.monotonic() - t0
        with dg.DagsterInstance.get() as instance:
            runs = [("one_worker", solo)] if BASELINE else []
            for label, queue in [*runs, ("two_workers", shared)]:
                launched = time.monotonic()
                placed, timings[f"{label}_runs_s"] = {}, 0.0
                for day in DAYS:
                    run = run_on_celery(instance, queue, day)
                    stats = instance.get_run_stats(run.run_id)
                    timings[f"{label}_runs_s"] += stats.end_time - stats.start_time
                    placed.update({f"{day}:{step}": w for step, w in workers_by_step(instance, run.run_id).items()})
                timings[f"{label}_execute_jobs_s"] = time.monotonic() - launched
                written = files_of(data)
                assert written.keys() == expected.keys(), (label, sorted(written.keys() ^ expected.keys()), placed)
                different = sorted(k for k in expected if not same_output(k, written[k], expected[k]))
                assert not different, f"{label}: the Celery run wrote other bytes than one process: {different}"
                if label == "one_worker":
                    assert set(placed.values()) == {"worker1"}, placed
                else:
                    assert set(placed.values()) == {"worker1", "worker2"}, placed
                steps = {node.name for node in single.nodes_in_topological_order}
                assert set(placed) == {f"{day}:{step}" for day in DAYS for step in steps}, placed

    timings["workers_stopped_after_s"] = time.monotonic() - t0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=2))
    print(f"celery timings: {timings}")
