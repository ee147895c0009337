"""The seed's cron table as schedules: one loop, one schedule per scheduled row and market.

Every schedule ticks at the seed's cron (converted to 5 fields, Asia/Seoul). Its policy
(``ticks.py``) picks the partition and says whether there is work; without work the tick skips with
the reason, shown on the tick in the UI. A decision that carries a token starts at most one run per
token: while the state it acts on does not change, the minute-level ticks skip.
"""

import datetime as dt

import dagster as dg

from batch_assets.defs.resources import FileStoreResource
from batch_assets.defs.trading.jobs import SEED_JOB_TAG, is_checks_only
from batch_assets.defs.trading.resources import BrokerResource
from batch_assets.defs.trading.ticks import Decision, TickInput, decide
from batch_assets.lib.markets import trading_layout as tl
from batch_assets.lib.markets.crons import CronRow, CronTable
from batch_assets.lib.markets.venues import first_session_from
from batch_assets.lib.settings import Settings

TOKEN_TAG = "batch_assets/tick_token"
RANGE_START_TAG = "dagster/asset_partition_range_start"  # a run over several sessions (a catch-up)
RANGE_END_TAG = "dagster/asset_partition_range_end"


def build_cron_schedules(table: CronTable, jobs: dict, settings: Settings) -> list[dg.ScheduleDefinition]:
    return [
        cron_schedule(table, row, market, jobs[row.job_name(market)], settings)
        for row in table.scheduled()
        for market in row.markets or [None]
    ]


def cron_schedule(table: CronTable, row: CronRow, market: str | None, job, settings: Settings) -> dg.ScheduleDefinition:
    first = first_session_from(market, settings.trading_start) if market else None
    checks_only = is_checks_only(row)

    @dg.schedule(
        name=row.schedule_name(market),
        cron_schedule=row.unix_cron(),
        job=job,
        execution_timezone=table.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{row.id} ({row.name}) at Spring cron '{row.cron}' {table.timezone}: {row.description}",
        tags={SEED_JOB_TAG: row.id},
    )
    def _schedule(
        context: dg.ScheduleEvaluationContext, file_store: FileStoreResource, broker: BrokerResource
    ) -> dg.RunRequest | dg.SkipReason:
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        store = file_store.store()
        tick = TickInput(
            row=row,
            market=market,
            now=now,
            store=store,
            broker=broker.broker(store),
            first_session=first,
            lookback=settings.trading_lookback_sessions,
            timezone=table.timezone,
        )
        decision = decide(tick)
        if decision.skip:
            return dg.SkipReason(decision.skip)
        if decision.token and (handled := _run_with_token(context.instance, decision.token)):
            return dg.SkipReason(f"{_what(decision, market)}: nothing new since run {handled}")
        return run_request(row, market, decision, now, checks_only)

    return _schedule


def _run_with_token(instance: dg.DagsterInstance, token: str) -> str | None:
    records = instance.get_run_records(filters=dg.RunsFilter(tags={TOKEN_TAG: token}), limit=1)
    if not records:
        return None
    run = records[0].dagster_run
    return f"{run.run_id[:8]} ({run.status.value})"


def _what(decision: Decision, market: str | None) -> str:
    sessions = decision.sessions
    span = f"{sessions[0]}..{sessions[-1]}" if len(sessions) > 1 else str(sessions[0]) if sessions else decision.month
    return f"{(market or '').upper()} {span}".strip()


def run_request(
    row: CronRow, market: str | None, decision: Decision, now: dt.datetime, checks_only: bool
) -> dg.RunRequest:
    tags = {SEED_JOB_TAG: row.id, **({"market": market} if market else {})}
    if decision.token:
        tags[TOKEN_TAG] = decision.token
    selection = [dg.AssetKey.from_user_string(s) for s in decision.steps] if decision.steps else None
    sessions = [str(s) for s in decision.sessions]
    if checks_only:
        # A checks-only run has no partition: its checks read the session from the tag.
        tags.update({tl.SESSION_TAG: sessions[-1], tl.TICK_TIME_TAG: now.isoformat()})
        return dg.RunRequest(tags=tags)
    if decision.month:
        return dg.RunRequest(partition_key=decision.month, tags=tags)
    if len(sessions) > 1:
        tags.update({RANGE_START_TAG: sessions[0], RANGE_END_TAG: sessions[-1]})
        return dg.RunRequest(tags=tags, asset_selection=selection)
    return dg.RunRequest(partition_key=sessions[0], tags=tags, asset_selection=selection)
