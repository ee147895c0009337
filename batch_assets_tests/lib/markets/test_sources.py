"""The folder and synthetic sources, and which source serves an exchange (seed 004 §5's fallback)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from batch_assets.lib.markets.calendars import exchange_sessions
from batch_assets.lib.markets.collector import CollectorSource
from batch_assets.lib.markets.folder import FolderSource
from batch_assets.lib.markets.schema import BAR_SCHEMA, BarDataError
from batch_assets.lib.markets.sources import SourceConfig, SourceConfigError, select_source
from batch_assets.lib.markets.synthetic import SyntheticSource
from batch_assets.lib.settings import Settings

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2026-11-18,226.0,229.5,225.1,228.0,227.5,48000000
2026-11-19,null,null,null,null,null,null
2026-11-20,228.1,230.0,227.5,229.4,228.9,51234000
"""
# A KRX download: CP949, Korean headers, thousands separators, dotted dates, extra columns, and a
# suspended day (zero open/high/low and volume, the last close).
KRX = """날짜,종가,대비,시가,고가,저가,거래량,거래대금
2026.11.20,"71,000",500,"70,500","71,200","70,100","12,345,678","876,543,000,000"
2026.11.19,"70,500",-300,0,0,0,0,0
2026.11.18,"70,800",100,"70,600","71,000","70,300","9,876,543","700,000,000,000"
"""


def write_folder(root: Path) -> None:
    (root / "us").mkdir(parents=True)
    (root / "krx").mkdir(parents=True)
    (root / "us" / "AAPL.csv").write_text(YAHOO, encoding="utf-8")
    (root / "krx" / "005930.csv").write_bytes(KRX.encode("cp949"))
    # A Parquet file with the Korean header and real date values.
    pq.write_table(
        pa.table(
            {
                "날짜": pa.array([date(2026, 11, 19), date(2026, 11, 20)], pa.date32()),
                "시가": [100.0, 101.0],
                "고가": [102.0, 103.0],
                "저가": [99.0, 100.0],
                "종가": [101.0, 102.0],
                "거래량": pa.array([10, 20], pa.int64()),
            }
        ),
        root / "krx" / "000660.parquet",
    )


def test_yahoo_csv_headers_are_read_and_null_rows_dropped(tmp_path: Path) -> None:
    write_folder(tmp_path)
    source = FolderSource(tmp_path)
    day = source.fetch("us", date(2026, 11, 20))
    assert day.schema == BAR_SCHEMA
    assert day.to_pylist() == [
        {
            "symbol": "AAPL",
            "session": date(2026, 11, 20),
            "open": 228.1,
            "high": 230.0,
            "low": 227.5,
            "close": 229.4,
            "adj_close": 228.9,
            "volume": 51234000,
            "halted": False,
            "source": "folder",
        }
    ]
    assert source.fetch("us", date(2026, 11, 19)).num_rows == 0  # Yahoo's "null" row


def test_krx_korean_headers_in_cp949_with_separators_and_a_halt(tmp_path: Path) -> None:
    write_folder(tmp_path)
    got = dict(FolderSource(tmp_path).fetch_range("krx", [date(2026, 11, 19), date(2026, 11, 20)]))
    day = got[date(2026, 11, 20)].to_pylist()
    assert [r["symbol"] for r in day] == ["000660", "005930"]  # leading zeros kept, sorted
    samsung = day[1]
    assert (samsung["open"], samsung["high"], samsung["low"], samsung["close"]) == (70500, 71200, 70100, 71000)
    assert samsung["volume"] == 12_345_678 and samsung["adj_close"] == 71000 and not samsung["halted"]
    halted = got[date(2026, 11, 19)].filter(pc.equal(got[date(2026, 11, 19)]["symbol"], "005930")).to_pylist()[0]
    assert halted["halted"] and halted["volume"] == 0 and halted["close"] == 70500


def test_a_file_without_a_known_price_column_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "us").mkdir()
    (tmp_path / "us" / "X.csv").write_text("Date,Open,High,Low,Volume\n2026-11-20,1,1,1,1\n")
    with pytest.raises(BarDataError, match=r"X.csv: no column for close"):
        FolderSource(tmp_path).fetch("us", date(2026, 11, 20))


def test_synthetic_bars_are_deterministic_whatever_range_asks() -> None:
    source = SyntheticSource(symbols=12, seed=7)
    sessions = exchange_sessions("krx", "2026-10-01", "2026-11-20")
    by_range = dict(source.fetch_range("krx", sessions))
    alone = source.fetch("krx", sessions[17])
    assert alone.equals(by_range[sessions[17]])
    assert alone.schema == BAR_SCHEMA and alone.num_rows == 12
    assert not SyntheticSource(symbols=12, seed=8).fetch("krx", sessions[17]).equals(alone)


def test_synthetic_bars_include_halts_with_zero_volume_and_keep_the_price_rules() -> None:
    sessions = exchange_sessions("us", "2025-01-01", "2025-12-31")
    days = [t for _, t in SyntheticSource(symbols=40).fetch_range("us", sessions)]
    bars = pa.concat_tables(days)
    halted = bars.filter(bars["halted"])
    assert 0 < halted.num_rows < bars.num_rows * 0.01
    assert pc.all(pc.equal(halted["volume"], 0)).as_py()
    traded = bars.filter(pc.invert(bars["halted"]))
    assert pc.all(pc.greater_equal(traded["high"], pc.max_element_wise(traded["open"], traded["close"]))).as_py()
    assert pc.all(pc.less_equal(traded["low"], pc.min_element_wise(traded["open"], traded["close"]))).as_py()
    assert pc.min(traded["low"]).as_py() > 0


def test_no_collector_url_falls_back_to_the_local_source() -> None:
    """Seed 004 §5: unsetting the collector URL rolls back to the local implementation."""
    chosen = select_source("krx", SourceConfig(collector_urls=(("us", "http://collector:8000"),)))
    assert isinstance(chosen.source, SyntheticSource)
    assert "BATCH_ASSETS_KRX_COLLECTOR_URL not set" in chosen.reason
    us = select_source("us", SourceConfig(collector_urls=(("us", "http://collector:8000"),)))
    assert isinstance(us.source, CollectorSource) and us.source.describe() == "collector http://collector:8000"


def test_the_folder_is_the_local_source_when_configured(tmp_path: Path) -> None:
    chosen = select_source("us", SourceConfig(folder=tmp_path))
    assert isinstance(chosen.source, FolderSource) and "folder" in chosen.reason


def test_a_required_collector_without_url_is_a_configuration_error() -> None:
    with pytest.raises(SourceConfigError, match="BATCH_ASSETS_US_COLLECTOR_URL is not set"):
        select_source("us", SourceConfig(mode="collector"))


def test_an_empty_collector_url_in_the_environment_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_ASSETS_US_COLLECTOR_URL", "")
    monkeypatch.setenv("BATCH_ASSETS_KRX_COLLECTOR_URL", "http://127.0.0.1:9")
    settings = Settings()
    assert settings.us_collector_url is None and settings.krx_collector_url == "http://127.0.0.1:9"
