"""Session partitions: exactly the exchange's sessions, and factors see 250 sessions back."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from batch_assets.defs.factors.partitions import factor_partitions
from batch_assets.defs.market.partitions import session_partitions
from batch_assets.lib.markets.calendars import exchange_sessions, sessions_before
from batch_assets.lib.settings import Settings

SETTINGS = Settings(markets_start="2015-01-02")
NOW = datetime(2026, 11, 20, 17, 0, tzinfo=ZoneInfo("Asia/Seoul"))  # a Friday, after the KRX close


@pytest.mark.parametrize("exchange", ["krx", "us"])
def test_the_partitions_are_exactly_the_sessions_since_the_start(exchange: str) -> None:
    keys = session_partitions(exchange, SETTINGS).get_partition_keys(current_time=NOW)
    assert keys[0] == "2015-01-02"
    assert keys == [d.isoformat() for d in exchange_sessions(exchange, "2015-01-02", keys[-1])]


def test_holidays_and_weekends_are_not_partitions() -> None:
    later = datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC"))
    krx = set(session_partitions("krx", SETTINGS).get_partition_keys(current_time=later))
    us = set(session_partitions("us", SETTINGS).get_partition_keys(current_time=later))
    assert "2026-09-24" not in krx and "2026-09-25" not in krx  # Chuseok
    assert "2026-09-23" in krx and "2026-09-24" in us
    assert "2026-11-26" not in us and "2026-11-26" in krx  # Thanksgiving
    assert not {"2026-11-21", "2026-11-22"} & (krx | us)  # a weekend


def test_the_current_session_is_a_partition_so_an_after_close_run_can_target_it() -> None:
    partitions = session_partitions("krx", SETTINGS)
    assert partitions.get_partition_keys(current_time=NOW)[-1] == "2026-11-20"
    saturday = datetime(2026, 11, 21, 12, tzinfo=ZoneInfo("Asia/Seoul"))
    assert partitions.get_partition_keys(current_time=saturday)[-1] == "2026-11-23"


def test_bars_and_factors_share_one_partitions_definition() -> None:
    assert session_partitions("us", SETTINGS) == factor_partitions("us", SETTINGS)


def test_a_factor_session_depends_on_its_bars_and_the_250_sessions_before() -> None:
    partitions = session_partitions("krx", SETTINGS)
    mapping = dg.TimeWindowPartitionMapping(start_offset=-250)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        partitions.subset_with_partition_keys(["2026-10-06"]), partitions, partitions
    ).partitions_subset.get_partition_keys()
    assert upstream == [d.isoformat() for d in sessions_before("krx", "2026-10-06", 250)] + ["2026-10-06"]
    assert date(2026, 9, 24).isoformat() not in upstream
