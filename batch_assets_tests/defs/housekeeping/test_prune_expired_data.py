"""Retention on a real instance (the PostgreSQL profile) and a real local store: old runs with
their event logs and old day folders go, recent ones and the latest materializations stay, and a
dry run only reports."""

import datetime as dt
import shutil

import dagster as dg
import psycopg2
import pytest

from batch_assets.defs.housekeeping.definitions import build_housekeeping
from batch_assets.defs.resources import FileStoreResource
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.postgres

LEDGER_DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(partitions_def=LEDGER_DAYS, group_name="test_ledger", owners=["team:test"])
def ledger() -> None:
    """A daily asset whose runs age."""


@dg.op
def boom() -> None:
    raise dg.Failure("failed on purpose")


@dg.op
def nothing() -> None:
    pass


@dg.job
def failing_job() -> None:
    boom()


@dg.job
def plain_job() -> None:
    nothing()


@pytest.fixture
def instance(tmp_path, postgres_db, monkeypatch) -> dg.DagsterInstance:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {
        "DAGSTER_PG_HOST": str(postgres_db["host"]),
        "DAGSTER_PG_PORT": str(postgres_db["port"]),
        "DAGSTER_PG_USERNAME": str(postgres_db["user"]),
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": str(postgres_db["db_name"]),
        "DAGSTER_MAX_CONCURRENT_RUNS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst
        # The database is shared by the session: leave it empty for the next test.
        for record in inst.get_run_records():
            inst.delete_run(record.dagster_run.run_id)


def backdate(pg: dict, run_ids: list[str], days: float) -> None:
    """Make runs look ``days`` old, as the run table records it."""
    moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
    with psycopg2.connect(dbname=pg["db_name"], host=pg["host"], port=pg["port"], user=pg["user"]) as conn:
        conn.cursor().execute(
            "UPDATE runs SET create_timestamp = %s, update_timestamp = %s WHERE run_id = ANY(%s)",
            (moment, moment, run_ids),
        )


def drop(store: LocalFolderStore, key: str, text: str = "x") -> None:
    with store.publish(key) as path:
        path.write_text(text)


def outputs(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.step_key: {k: v.value for k, v in e.event_specific_data.metadata.items()}
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
    }


def test_old_runs_and_old_day_folders_are_pruned_after_a_dry_run_reports_them(instance, postgres_db, tmp_path) -> None:
    latest_old = dg.materialize([ledger], instance=instance, partition_key="2026-01-01").run_id
    superseded = dg.materialize([ledger], instance=instance, partition_key="2026-01-02").run_id
    newer = dg.materialize([ledger], instance=instance, partition_key="2026-01-02").run_id
    failed = failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id
    old_plain = plain_job.execute_in_process(instance=instance).run_id
    recent_plain = plain_job.execute_in_process(instance=instance).run_id
    backdate(postgres_db, [latest_old, superseded, failed, old_plain], days=120)

    store = LocalFolderStore(tmp_path / "data")
    today = dt.datetime.now(dt.UTC).date()
    old_day, kept_day = (today - dt.timedelta(days=40)).isoformat(), (today - dt.timedelta(days=5)).isoformat()
    expired = [
        f"staged/acme_retail/{old_day}/orders_1.csv.parquet",
        f"rejects/acme_retail/{old_day}/orders_1.csv.jsonl",
        f"outbound/acme_retail/{old_day}/orders_1.csv",
        f"outbound/hooli_ads/{old_day}/hooli_ads_{old_day}.csv",
    ]
    kept = [
        f"staged/acme_retail/{kept_day}/orders_1.csv.parquet",
        f"inbound/acme_retail/{old_day}/orders_1.csv",  # the vendor's original is never pruned here
        "staged/acme_retail/not-a-day/notes.txt",  # nor anything that is not a day folder
    ]
    for key in expired + kept:
        drop(store, key)

    settings = Settings(data_dir=tmp_path / "data", retention_run_days=90, retention_file_days=30)
    defs = dg.Definitions.merge(
        build_housekeeping(settings),
        dg.Definitions(resources={"file_store": FileStoreResource(backend="local", root=str(tmp_path / "data"))}),
    )
    job = defs.resolve_job_def("prune_expired_data_job")

    dry = outputs(job.execute_in_process(instance=instance, run_config={"dry_run": True}))
    assert dry["prune_run_history"]["runs_to_delete"] == 3
    assert dry["prune_run_history"]["runs_deleted"] == 0
    assert dry["prune_run_history"]["runs_kept_latest_materialization"] == 1
    assert set(dry["prune_run_history"]["run_ids"]) == {superseded, failed, old_plain}
    assert dry["prune_file_store"]["files_to_delete"] == 4
    assert dry["prune_file_store"]["files_deleted"] == 0
    assert dry["prune_file_store"]["files_by_area"] == {"staged": 1, "rejects": 1, "outbound": 2}
    assert all(instance.get_run_by_id(r) for r in (latest_old, superseded, newer, failed, old_plain, recent_plain))
    assert all(store.stat(k) for k in expired + kept)

    real = outputs(job.execute_in_process(instance=instance))
    assert real["prune_run_history"]["runs_deleted"] == 3
    assert real["prune_file_store"]["files_deleted"] == 4
    for run_id in (superseded, failed, old_plain):
        assert instance.get_run_by_id(run_id) is None
        assert instance.all_logs(run_id) == []  # the event log went with the run
    for run_id in (latest_old, newer, recent_plain):
        assert instance.get_run_by_id(run_id) is not None
    # Each partition still shows its latest materialization.
    records = instance.fetch_materializations(ledger.key, limit=10).records
    assert {(r.partition_key, r.run_id) for r in records} == {("2026-01-01", latest_old), ("2026-01-02", newer)}
    assert [k for k in expired if store.stat(k)] == []
    assert all(store.stat(k) for k in kept)

    again = outputs(job.execute_in_process(instance=instance, run_config={"dry_run": True}))
    assert again["prune_run_history"]["runs_to_delete"] == 0
    assert again["prune_file_store"]["files_to_delete"] == 0
