"""User-defined schedules: rows in a database that say what to run, when, in which timezone.

Users add, enable, disable and remove schedules at runtime without a deploy (seed 000 §2.3(3));
one dispatcher sensor reads the table on every tick. The table lives in PostgreSQL in production
and in a SQLite file by default, behind ``UserScheduleStore``.

A schedule targets assets: ``job:<asset job>`` (the assets that job runs) or ``assets:<Dagster
asset selection>`` (``group:vendor_acme_retail``, ``key:"vendor/acme_retail/staged"``, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from batch_assets.lib.cron_ticks import InvalidCron, check_cron, utc_text
from batch_assets.lib.settings import Settings

PARTITION_RULES = {
    "none": "unpartitioned assets",
    "last": "the latest partition at the tick, as Dagster's partitioned schedules do",
    "tick_day": "the tick's date in the schedule's timezone (YYYY-MM-DD)",
    "previous_day": "the day before the tick's date in the schedule's timezone",
}
TARGET_KINDS = ("job", "assets")
# Tags the dispatcher sets itself, or Dagster sets from the request: a user tag may not shadow them.
SCHEDULE_TAG = "batch_assets/user_schedule"
TICK_TAG = "batch_assets/scheduled_time"
RESERVED_TAGS = (SCHEDULE_TAG, TICK_TAG, "dagster/partition", "dagster/run_key", "dagster/sensor_name")
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_JOB = re.compile(r"[A-Za-z0-9_]+")


class InvalidSchedule(ValueError):
    """A schedule that cannot be stored or dispatched; the message says which field and why."""


class ScheduleExists(ValueError):
    """``add`` of an id that is already in the table."""


@dataclass(frozen=True)
class UserSchedule:
    id: str
    target: str  # 'job:<asset job name>' or 'assets:<asset selection>'
    cron: str  # 5 fields or an @-alias, in ``timezone``
    timezone: str
    partition: str = "none"  # one of PARTITION_RULES
    tags: dict[str, str] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    description: str = ""
    # Ticks at or before this instant never fire: a schedule starts when it is added or re-enabled.
    active_since: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def target_kind(self) -> str:
        return self.target.partition(":")[0]

    @property
    def target_value(self) -> str:
        return self.target.partition(":")[2]


def validate(schedule: UserSchedule) -> UserSchedule:
    """The schedule with its cron normalised, or InvalidSchedule naming every problem found."""
    problems: list[str] = []
    if not _ID.fullmatch(schedule.id):
        problems.append(f"id '{schedule.id}': use 1-64 characters a-z 0-9 _ . - starting with a letter or digit")
    cron = schedule.cron
    try:
        cron = check_cron(schedule.cron)
    except InvalidCron as exc:
        problems.append(f"cron: {exc}")
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone '{schedule.timezone}' is not an IANA timezone (e.g. Europe/Paris, UTC)")
    problems.extend(_target_problems(schedule.target))
    if schedule.partition not in PARTITION_RULES:
        problems.append(f"partition '{schedule.partition}': use one of {', '.join(PARTITION_RULES)}")
    if not isinstance(schedule.tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in schedule.tags.items()
    ):
        problems.append("tags: expected a mapping of strings to strings")
    elif shadowed := sorted(k for k in schedule.tags if k in RESERVED_TAGS):
        problems.append(f"tags: {', '.join(shadowed)} are set by the dispatcher")
    if not isinstance(schedule.run_config, dict):
        problems.append("run_config: expected a JSON object")
    if problems:
        raise InvalidSchedule(f"schedule '{schedule.id}': " + "; ".join(problems))
    return replace(schedule, cron=cron)


def _target_problems(target: str) -> list[str]:
    kind, sep, value = target.partition(":")
    if not sep or kind not in TARGET_KINDS or not value.strip():
        return [f"target '{target}': use job:<asset job name> or assets:<asset selection>"]
    if kind == "job" and not _JOB.fullmatch(value):
        return [f"target '{target}': '{value}' is not a job name"]
    if kind == "assets":
        try:
            parse_selection(value)
        except Exception as exc:  # the parser raises several error types
            return [f"target '{target}': {str(exc).splitlines()[0]}"]
    return []


def parse_selection(text: str):
    """Dagster's asset selection syntax, parsed (resolved against the assets at tick time)."""
    import dagster as dg  # the grammar is Dagster's; imported late so the CLI's other commands stay light

    with warnings.catch_warnings():
        # group: selections go through a beta parameter inside Dagster's own parser.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.AssetSelection.from_string(text)


def run_key(schedule_id: str, tick: dt.datetime) -> str:
    """One key per schedule and tick: Dagster never starts two runs with one sensor's run key."""
    return f"user_schedule:{schedule_id}:{utc_text(tick)}"


def tick_day(schedule: UserSchedule, tick: dt.datetime) -> str | None:
    """The date partition key of ``tick`` under a day rule, or None for other rules."""
    day = tick.astimezone(ZoneInfo(schedule.timezone)).date()
    if schedule.partition == "tick_day":
        return day.isoformat()
    if schedule.partition == "previous_day":
        return (day - dt.timedelta(days=1)).isoformat()
    return None


@dataclass(frozen=True)
class StoredSchedule:
    """One row as stored: the schedule, or why the row cannot be used (edited by hand, say)."""

    id: str
    enabled: bool
    raw: dict[str, Any]
    schedule: UserSchedule | None = None
    problem: str | None = None


class UserScheduleStore(ABC):
    """The table of user schedules."""

    @abstractmethod
    def add(self, schedule: UserSchedule) -> UserSchedule:
        """Validate and insert; InvalidSchedule or ScheduleExists. Returns what was stored."""

    @abstractmethod
    def rows(self) -> list[StoredSchedule]:
        """Every row, sorted by id; a row that does not validate carries its problem."""

    @abstractmethod
    def set_enabled(self, schedule_id: str, enabled: bool, now: dt.datetime | None = None) -> bool:
        """Enable (from ``now`` on: ticks while it was disabled never fire) or disable; False if
        there is no such schedule."""

    @abstractmethod
    def remove(self, schedule_id: str) -> bool:
        """Delete the row; False if there is no such schedule."""

    def get(self, schedule_id: str) -> StoredSchedule | None:
        return next((row for row in self.rows() if row.id == schedule_id), None)


_metadata = sa.MetaData()
TABLE = sa.Table(
    "batch_assets_user_schedules",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("partition_rule", sa.String(32), nullable=False, server_default="none"),
    sa.Column("tags", sa.Text, nullable=False, server_default="{}"),
    sa.Column("run_config", sa.Text, nullable=False, server_default="{}"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("active_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite keeps no offset: every value is written in UTC and read back as UTC.
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class SqlUserScheduleStore(UserScheduleStore):
    """The table in any SQLAlchemy database: PostgreSQL (psycopg2) or a SQLite file."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            _metadata.create_all(self.engine)
        except sa.exc.DatabaseError:
            # Another process created the table at the same moment; anything else fails here.
            if not sa.inspect(self.engine).has_table(TABLE.name):
                raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlUserScheduleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, schedule: UserSchedule) -> UserSchedule:
        schedule = validate(schedule)
        now = _utc(dt.datetime.now(dt.UTC))
        values = {
            "id": schedule.id,
            "target": schedule.target,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "partition_rule": schedule.partition,
            "tags": json.dumps(schedule.tags, sort_keys=True),
            "run_config": json.dumps(schedule.run_config, sort_keys=True),
            "enabled": schedule.enabled,
            "description": schedule.description,
            "active_since": _utc(schedule.active_since),
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(TABLE.insert().values(**values))
        except sa.exc.IntegrityError:
            raise ScheduleExists(f"schedule '{schedule.id}' already exists (remove it first)") from None
        return schedule

    def rows(self) -> list[StoredSchedule]:
        with self.engine.connect() as conn:
            found = conn.execute(TABLE.select().order_by(TABLE.c.id)).mappings().all()
        return [_parse_row(dict(row)) for row in found]

    def set_enabled(self, schedule_id: str, enabled: bool, now: dt.datetime | None = None) -> bool:
        now = _utc(now or dt.datetime.now(dt.UTC))
        # Enabling a schedule that is already enabled keeps its start: a repeated command loses no tick.
        since = sa.case((TABLE.c.enabled, TABLE.c.active_since), else_=now) if enabled else TABLE.c.active_since
        query = (
            TABLE.update().where(TABLE.c.id == schedule_id).values(enabled=enabled, updated_at=now, active_since=since)
        )
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount == 1

    def remove(self, schedule_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(TABLE.delete().where(TABLE.c.id == schedule_id)).rowcount == 1


def _parse_row(row: dict[str, Any]) -> StoredSchedule:
    raw = {k: (utc_text(_utc(v)) if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    enabled = bool(row.get("enabled"))
    try:
        tags = json.loads(row["tags"] or "{}")
        run_config = json.loads(row["run_config"] or "{}")
    except (TypeError, ValueError) as exc:
        return StoredSchedule(row["id"], enabled, raw, problem=f"schedule '{row['id']}': unreadable JSON ({exc})")
    try:
        schedule = validate(
            UserSchedule(
                id=row["id"],
                target=row["target"],
                cron=row["cron"],
                timezone=row["timezone"],
                partition=row["partition_rule"],
                tags=tags,
                run_config=run_config,
                enabled=enabled,
                description=row["description"] or "",
                active_since=_utc(row["active_since"]),
            )
        )
    except InvalidSchedule as exc:
        return StoredSchedule(row["id"], enabled, raw, problem=str(exc))
    return StoredSchedule(row["id"], enabled, raw, schedule=schedule)


def default_store_url(settings: Settings) -> str:
    """``BATCH_ASSETS_USER_SCHEDULES_URL``, else a SQLite file under DAGSTER_HOME, else under the
    data dir: the webserver, daemon and CLI of one machine share it."""
    if settings.user_schedules_url:
        return settings.user_schedules_url
    folder = settings.dagster_home or settings.data_dir
    return f"sqlite:///{(Path(folder) / 'user_schedules.sqlite').resolve()}"
