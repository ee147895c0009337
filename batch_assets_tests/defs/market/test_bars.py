"""Materializing daily bars: real local storage, files read back, checks evaluated, sources chosen."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets.lib.markets.layout import bars_key
from batch_assets.lib.markets.schema import BAR_SCHEMA
from batch_assets.lib.markets.synthetic import SyntheticSource
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.defs.market.helpers import BARS, FACTORS, checks_of, metadata_of, run_assets
from batch_assets_tests.lib.markets.collector_server import Answer, running_collector

SESSION = "2026-11-20"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded defaults: local store under tmp_path, no collector URL, no folder."""
    return Settings(data_dir=tmp_path / "data", markets_start="2026-01-02", synthetic_symbols=20)


def read_bars(settings: Settings, exchange: str, session: str) -> pa.Table:
    return pq.read_table(LocalFolderStore(settings.data_dir).root / bars_key(exchange, date.fromisoformat(session)))


def test_a_session_of_synthetic_bars_is_stored_in_the_contract_schema(settings) -> None:
    result = run_assets(settings, [BARS["krx"]], SESSION)
    assert result.success
    table = read_bars(settings, "krx", SESSION)
    assert table.schema == BAR_SCHEMA
    assert table.num_rows == 20 and table["symbol"].to_pylist() == sorted(table["symbol"].to_pylist())
    meta = metadata_of(result, BARS["krx"])
    assert meta["rows"] == meta["dagster/row_count"] == 20
    assert meta["symbols"] == 20
    assert meta["source"] == "synthetic (20 symbols, seed 4)"
    assert "BATCH_ASSETS_KRX_COLLECTOR_URL not set" in meta["source_reason"]  # the §5 fallback
    assert "| symbol | session |" in meta["preview"]
    assert all(c.passed for c in checks_of(result).values())


def test_rematerializing_a_session_replaces_its_file_with_the_same_content(settings) -> None:
    """A rerun, a retry or a backfill over a stored session must not duplicate it."""
    assert run_assets(settings, [BARS["us"]], SESSION).success
    store = LocalFolderStore(settings.data_dir)
    first = {o.key: store.read_bytes(o.key) for o in store.list("market/")}
    assert run_assets(settings, [BARS["us"]], SESSION).success
    second = {o.key: store.read_bytes(o.key) for o in store.list("market/")}
    assert list(second) == ["market/us/daily_bars/2026-11-20.parquet"]
    assert first == second


def test_a_session_with_a_trading_halt_passes_the_price_checks(settings) -> None:
    sessions = exchange_sessions("us", "2026-01-02", "2026-11-20")
    halted_on = next(
        s for s, t in SyntheticSource(symbols=20).fetch_range("us", sessions) if pc.any(t["halted"]).as_py()
    ).isoformat()
    result = run_assets(settings, [BARS["us"]], halted_on)
    assert result.success
    assert metadata_of(result, BARS["us"])["halted_rows"] >= 1
    checks = checks_of(result)
    for name in ("high_low_consistent", "prices_positive_unless_halted", "volume_non_negative"):
        assert checks[f"market/us/daily_bars:{name}"].passed


def write_prices(folder: Path, symbol: str, rows: list[str]) -> None:
    (folder / "us").mkdir(parents=True, exist_ok=True)
    (folder / "us" / f"{symbol}.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(rows))


def test_a_symbol_missing_from_the_next_session_is_named_by_the_gap_check(tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    write_prices(folder, "AAA", ["2026-11-19,10,11,9,10.5,10.5,100", "2026-11-20,10,11,9,10.5,10.5,100"])
    write_prices(folder, "BBB", ["2026-11-19,10,11,9,10.5,10.5,100"])  # no bar on the 20th
    settings = Settings(data_dir=tmp_path / "data", markets_start="2026-01-02", markets_folder=folder)
    result = run_assets(settings, [BARS["us"]], "2026-11-19", "2026-11-20")
    assert result.success
    assert metadata_of(result, BARS["us"])["source"] == f"folder {folder}"
    gap = checks_of(result)["market/us/daily_bars:no_missing_symbols"]
    assert not gap.passed
    assert gap.metadata["missing_by_session"].value == {"2026-11-20": ["BBB"]}
    assert "BBB" in gap.description


def test_impossible_bars_fail_a_blocking_check_and_stop_the_factors(tmp_path: Path) -> None:
    """Factors computed from a high below the close would mislead every strategy downstream."""
    folder = tmp_path / "prices"
    write_prices(folder, "BAD", ["2026-11-20,10,10.2,9,10.5,10.5,100"])
    settings = Settings(data_dir=tmp_path / "data", markets_start="2026-01-02", markets_folder=folder)
    result = run_assets(settings, [BARS["us"], FACTORS["us"]], SESSION)
    check = checks_of(result)["market/us/daily_bars:high_low_consistent"]
    assert not check.passed and check.metadata["examples"].value[0]["symbol"] == "BAD"
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key == FACTORS["us"]]
    assert not list(LocalFolderStore(settings.data_dir).list("factors/"))


def test_the_collector_serves_when_its_url_is_set_and_the_metadata_says_so(tmp_path: Path) -> None:
    with running_collector() as collector:
        settings = Settings(
            data_dir=tmp_path / "data", markets_start="2026-01-02", us_collector_url=collector.url + "/"
        )
        result = run_assets(settings, [BARS["us"]], "2026-11-18", "2026-11-20")
    assert result.success
    meta = metadata_of(result, BARS["us"])
    assert meta["source"] == f"collector {collector.url}" and meta["source_kind"] == "collector"
    assert meta["sessions"] == 3 and meta["rows"] == 9
    assert [r["session"] for r in collector.requests] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert read_bars(settings, "us", "2026-11-19")["source"].to_pylist() == ["collector"] * 3


def failure_of(result) -> str:
    return result.get_step_failure_events()[0].step_failure_data.user_failure_data.description


def test_a_refusing_collector_fails_the_run_with_its_answer(tmp_path: Path) -> None:
    with running_collector() as collector:
        collector.default = lambda exchange, session: Answer(404, "not collected yet")
        settings = Settings(data_dir=tmp_path / "data", markets_start="2026-01-02", krx_collector_url=collector.url)
        result = run_assets(settings, [BARS["krx"]], SESSION)
    assert not result.success
    assert failure_of(result) == (
        f"collector {collector.url}: GET {collector.url}/daily-bars?exchange=krx&session={SESSION} "
        "was refused: 404 Not Found: not collected yet"
    )
    assert not list(LocalFolderStore(settings.data_dir).list("market/"))


def test_a_required_collector_without_a_url_fails_the_run_saying_which_variable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", markets_start="2026-01-02", markets_source="collector")
    result = run_assets(settings, [BARS["us"]], SESSION)
    assert not result.success
    assert failure_of(result) == "BATCH_ASSETS_MARKETS_SOURCE=collector but BATCH_ASSETS_US_COLLECTOR_URL is not set"
