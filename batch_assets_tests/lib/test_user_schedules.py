"""The user schedule table on real databases: a SQLite file (the default) and PostgreSQL."""

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from batch_assets.lib.settings import Settings
from batch_assets.lib.user_schedules import (
    TABLE,
    InvalidSchedule,
    ScheduleExists,
    SqlUserScheduleStore,
    UserSchedule,
    default_store_url,
    run_key,
    tick_day,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'home' / 'user_schedules.sqlite'}"
    else:
        pg = request.getfixturevalue("postgres_db")
        url = f"postgresql+psycopg2://{pg['user']}@{pg['host']}:{pg['port']}/{pg['db_name']}"
    with SqlUserScheduleStore(url) as s:
        yield s
        with s.engine.begin() as conn:
            conn.execute(TABLE.delete())


def schedule(**changes) -> UserSchedule:
    values = {
        "id": "acme-morning",
        "target": "job:process_vendor_inbound_job",
        "cron": "0 7 * * 1-5",
        "timezone": "Europe/Paris",
        "partition": "tick_day",
        "tags": {"priority": "HIGH"},
        "run_config": {"ops": {}},
    }
    return UserSchedule(**(values | changes))


def test_a_schedule_added_reads_back_with_every_field(store) -> None:
    since = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    store.add(schedule(cron="0  7 * * 1-5", active_since=since, description="ACME before opening"))
    [row] = store.rows()
    assert row.problem is None
    assert row.schedule == schedule(active_since=since, description="ACME before opening")


def test_an_id_can_be_added_only_once(store) -> None:
    store.add(schedule())
    with pytest.raises(ScheduleExists, match="already exists"):
        store.add(schedule(cron="0 8 * * *"))


def test_an_invalid_schedule_is_refused_at_add_time_naming_each_problem(store) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        store.add(
            schedule(
                cron="0 25 * * *",
                timezone="Mars/Olympus",
                target="jobs:x",
                partition="weekly",
                tags={"dagster/partition": "x"},
            )
        )
    message = str(refused.value)
    for part in (
        "cron: '0 25 * * *' is not a valid cron",
        "Mars/Olympus",
        "target 'jobs:x'",
        "partition 'weekly'",
        "set by the dispatcher",
    ):
        assert part in message
    assert store.rows() == []


def test_an_asset_selection_target_is_parsed_at_add_time(store) -> None:
    store.add(schedule(id="acme-group", target="assets:group:vendor_acme_retail"))
    with pytest.raises(InvalidSchedule, match="Invalid selection string"):
        store.add(schedule(id="broken", target="assets:key:(("))


def test_a_row_broken_by_hand_is_listed_with_its_problem_not_raised(store) -> None:
    """Someone edits the table with SQL: the dispatcher must report the row, not crash on it."""
    store.add(schedule())
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        conn.execute(
            TABLE.insert().values(
                id="hand-made",
                target="job:x",
                cron="61 * * * *",
                timezone="UTC",
                active_since=now,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            TABLE.insert().values(
                id="bad-json",
                target="job:x",
                cron="0 * * * *",
                timezone="UTC",
                tags="{oops",
                active_since=now,
                created_at=now,
                updated_at=now,
            )
        )
    rows = {row.id: row for row in store.rows()}
    assert rows["acme-morning"].schedule is not None
    assert rows["hand-made"].schedule is None and "'61 * * * *' is not a valid cron" in rows["hand-made"].problem
    assert rows["bad-json"].schedule is None and "unreadable JSON" in rows["bad-json"].problem


def test_enabling_starts_a_schedule_from_now_and_repeating_it_changes_nothing(store) -> None:
    """Ticks while a schedule was disabled never fire: enabling moves its start to now."""
    store.add(schedule(active_since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    assert store.set_enabled("acme-morning", False, now=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    assert store.get("acme-morning").schedule.enabled is False
    assert store.set_enabled("acme-morning", True, now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert store.get("acme-morning").schedule.active_since == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert store.set_enabled("acme-morning", True, now=dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    assert store.get("acme-morning").schedule.active_since == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert store.set_enabled("nope", True) is False


def test_remove_deletes_the_row(store) -> None:
    store.add(schedule())
    assert store.remove("acme-morning") is True
    assert store.remove("acme-morning") is False
    assert store.rows() == []


def test_two_stores_on_one_database_see_each_other(store) -> None:
    """The CLI and the dispatcher are different processes over one table."""
    with SqlUserScheduleStore(store.url) as other:
        other.add(schedule())
    assert [row.id for row in store.rows()] == ["acme-morning"]
    assert sa.inspect(store.engine).has_table(TABLE.name)


def test_the_default_table_is_a_sqlite_file_under_dagster_home_else_the_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BATCH_ASSETS_USER_SCHEDULES_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert (
        default_store_url(Settings(data_dir=tmp_path / "data"))
        == f"sqlite:///{tmp_path / 'home' / 'user_schedules.sqlite'}"
    )
    monkeypatch.delenv("DAGSTER_HOME")
    assert (
        default_store_url(Settings(data_dir=tmp_path / "data"))
        == f"sqlite:///{tmp_path / 'data' / 'user_schedules.sqlite'}"
    )
    monkeypatch.setenv("BATCH_ASSETS_USER_SCHEDULES_URL", "postgresql+psycopg2://u@db/x")
    assert default_store_url(Settings()) == "postgresql+psycopg2://u@db/x"
    assert Path(tmp_path).exists()


def test_run_keys_and_day_partitions_follow_the_tick_in_the_schedule_timezone() -> None:
    tick = dt.datetime(2026, 6, 1, 22, 30, tzinfo=dt.UTC)  # 2026-06-02 07:30 in Tokyo
    assert run_key("acme-morning", tick) == "user_schedule:acme-morning:2026-06-01T22:30:00Z"
    tokyo = schedule(timezone="Asia/Tokyo")
    assert tick_day(tokyo, tick) == "2026-06-02"
    assert tick_day(schedule(timezone="Asia/Tokyo", partition="previous_day"), tick) == "2026-06-01"
    assert tick_day(schedule(timezone="UTC", partition="last"), tick) is None
