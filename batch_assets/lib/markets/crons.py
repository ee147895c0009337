"""Seed 004's batch-job table as data: Spring 6-field crons converted to 5-field ones, faithfully.

Spring's ``CronExpression`` reads ``second minute hour day-of-month month day-of-week``. Dagster
(like Unix cron) has no seconds, so a Spring cron converts only if it fires at second 0: the
seconds field must be ``0``. Everything else converts field by field:

- ``?`` (no specific value) becomes ``*``;
- month names (JAN-DEC) and day names (MON-SUN) become numbers; Spring's Sunday is 0 or 7, Unix's 0;
- ``a/n`` (from a, every n) becomes ``a-<last>/n``; day-of-week steps and ranges are expanded
  in Spring's numbering (MON=1 … SUN=7) and written out as Unix day numbers;
- ``@hourly`` ``@daily`` ``@midnight`` ``@weekly`` ``@monthly`` ``@yearly`` ``@annually`` expand first.

Refused, with an error naming the job: a non-zero or non-single seconds field, ``L``, ``W`` and
``#`` (no Unix equivalent), a value out of its field's range, a wrong number of fields, and
restricting both day-of-month and day-of-week (Spring requires both to match, Unix cron either one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * SUN",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
MONTHS = {
    m: i
    for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)
}
# Spring numbers the days MON=1 … SUN=7 (and 0 for Sunday too).
DAYS = {d: i for i, d in enumerate(["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], start=1)}
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12))


class CronConversionError(ValueError):
    """A Spring cron that has no faithful 5-field equivalent; the message names the job."""


def spring_to_unix(job_id: str, spring: str) -> str:
    """The 5-field cron that fires exactly when the Spring 6-field ``spring`` does."""

    def fail(why: str) -> CronConversionError:
        return CronConversionError(f"job {job_id!r}: Spring cron {spring!r} cannot become a 5-field cron: {why}")

    expression = MACROS.get(spring.strip().lower(), spring)
    parts = expression.split()
    if len(parts) != 6:
        raise fail(f"expected 6 fields (second minute hour day-of-month month day-of-week), got {len(parts)}")
    seconds, *rest = (p.upper() for p in parts)
    if seconds not in ("0", "00"):
        raise fail(f"it fires at second(s) {seconds!r}; Dagster schedules fire at second 0 only")
    if special := re.search(r"[LW#]", re.sub(r"[A-Z]{3}", "", " ".join(rest))):
        raise fail(f"{special.group()!r} (last / weekday / nth) has no Unix cron equivalent")
    if "?" in rest[3]:
        raise fail("'?' is only allowed in day-of-month and day-of-week")
    minute, hour, dom, month, dow = rest
    dom, dow = dom.replace("?", "*"), dow.replace("?", "*")
    if dom != "*" and dow != "*":
        raise fail("it restricts both day-of-month and day-of-week (Spring: both must match; Unix: either)")
    converted = []
    for (name, low, high), value in zip(FIELDS, (minute, hour, dom, month), strict=True):
        try:
            converted.append(_plain_field(value, low, high, MONTHS if name == "month" else {}))
        except ValueError as error:
            raise fail(f"{name} {value!r}: {error}") from None
    try:
        converted.append(_day_of_week(dow))
    except ValueError as error:
        raise fail(f"day-of-week {dow!r}: {error}") from None
    return " ".join(converted)


def _number(token: str, names: dict[str, int], low: int, high: int) -> int:
    value = names[token] if token in names else int(token) if token.isdigit() else None
    if value is None:
        raise ValueError(f"{token!r} is not a number or a known name")
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}-{high}")
    return value


def _plain_field(value: str, low: int, high: int, names: dict[str, int]) -> str:
    out = []
    for item in value.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"step {step!r} must be a positive number")
        if base == "*":
            out.append(f"*/{step}" if step else "*")
            continue
        first, dash, last = base.partition("-")
        start = _number(first, names, low, high)
        end = _number(last, names, low, high) if dash else (high if step else start)
        if end < start:
            raise ValueError(f"range {base!r} runs backwards")
        text = str(start) if start == end and not step else f"{start}-{end}"
        out.append(f"{text}/{step}" if step else text)
    return ",".join(out)


def _day_of_week(value: str) -> str:
    if value == "*":
        return "*"
    days: set[int] = set()
    for item in value.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"step {step!r} must be a positive number")
        if base == "*":
            start, end = 1, 7
        else:
            first, dash, last = base.partition("-")
            start = _number(first, DAYS, 0, 7)
            end = _number(last, DAYS, 0, 7) if dash else (7 if step else start)
            if end < start:
                raise ValueError(f"range {base!r} runs backwards")
        days.update(range(start, end + 1, int(step) if step else 1))
    unix = sorted({d % 7 for d in days})  # Spring's 7 (and 0) is Unix's 0: Sunday
    if len(unix) == 7:
        return "*"
    runs: list[list[int]] = []
    for d in unix:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


Tick = Literal[
    "local_session",
    "latest_completed",
    "bars_collected",
    "targets_due",
    "strategy_due",
    "orders_due",
    "open_orders",
    "unfilled_after_close",
    "unbooked_session",
    "positions_while_trading",
    "previous_month",
]
Market = Literal["krx", "us"]
JOB_NAME = re.compile(r"^[a-z]+(_[a-z0-9{}]+)+_job$")


class CronRow(BaseModel):
    """One batch job of the seed: when it runs and what Dagster job does its work, per market."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="The seed's job id.")
    name: str = Field(min_length=1, description="The seed's name of the job.")
    cron: str | None = Field(None, description="Spring 6-field cron, Asia/Seoul; None for a manual job.")
    mode: Literal["scheduled", "manual"]
    job: str = Field(description="Dagster job name; '{market}' is replaced by each market's code.")
    markets: list[Market] = Field(default_factory=list)
    targets: list[str] = Field(min_length=1, description="Asset keys 'a/b/c' or checks 'a/b/c:check_name'.")
    tick: Tick | None = Field(None, description="How a tick picks its partition and decides there is work.")
    strategy: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> CronRow:
        if not JOB_NAME.match(self.job):
            raise ValueError(f"{self.id}: job name {self.job!r} must be <verb>_<thing>_job in lower_snake_case")
        if len(self.markets) > 1 and "{market}" not in self.job:
            raise ValueError(f"{self.id}: a job for several markets needs '{{market}}' in its name")
        if not self.markets and "{market}" in self.job:
            raise ValueError(f"{self.id}: '{{market}}' in the job name but no markets")
        if self.mode == "scheduled" and (self.cron is None or self.tick is None):
            raise ValueError(f"{self.id}: a scheduled job needs a cron and a tick")
        if self.mode == "manual" and (self.cron is not None or self.tick is not None):
            raise ValueError(f"{self.id}: a manual job has no cron and no tick")
        if self.tick == "strategy_due" and not self.strategy:
            raise ValueError(f"{self.id}: tick 'strategy_due' needs the strategy")
        return self

    def for_market(self, market: str | None) -> tuple[str, list[str]]:
        """The job name and targets of the row for ``market`` (None for a market-less row)."""
        fill = {"market": market or ""}
        return self.job.format(**fill), [t.format(**fill) for t in self.targets]

    def job_name(self, market: str | None) -> str:
        return self.for_market(market)[0]

    def schedule_name(self, market: str | None) -> str:
        return self.job_name(market).removesuffix("_job") + "_schedule"

    def unix_cron(self) -> str:
        if self.cron is None:
            raise CronConversionError(f"job {self.id!r} is manual: it has no cron")
        return spring_to_unix(self.id, self.cron)


class CronTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Seoul"
    jobs: list[CronRow]

    @model_validator(mode="after")
    def _unique(self) -> CronTable:
        ids = [r.id for r in self.jobs]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"job ids appear twice: {dupes}")
        names = [r.job_name(m) for r in self.jobs for m in (r.markets or [None])]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"Dagster job names appear twice: {dupes}")
        for row in self.jobs:
            if row.mode == "scheduled":
                row.unix_cron()  # every cron converts when the table loads, or the load fails naming the job
        return self

    def scheduled(self) -> list[CronRow]:
        return [r for r in self.jobs if r.mode == "scheduled"]


def load_cron_table(path: Path) -> CronTable:
    """Read and check the table; a bad row stops the load with the job's id and the problem."""
    return CronTable.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
