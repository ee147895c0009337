"""Deployment settings, read from ``BATCH_ASSETS_*`` environment variables when definitions load.

The one place that reads the environment for configuration (secrets are read where used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATCH_ASSETS_", extra="ignore")

    profile: Literal["production", "demo"] = Field(
        "production",
        description="production: a missing secret (a masking key) stops the code location from loading; "
        "demo: a public demo key stands in for a missing masking key (scripts/demo.sh).",
    )
    # Relative paths resolve against the working directory: the project root for the README's
    # commands, WORKDIR in the container.
    vendors_dir: Path = Field(Path("vendors"), description="Folder of vendor spec files.")
    storage: Literal["local", "s3"] = "local"
    data_dir: Path = Field(Path(".data"), description="Root of the local file store.")
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_attempts: int = Field(
        6, ge=1, description="Tries per S3 request on throttling, 5xx and dropped connections (exponential backoff)."
    )
    timezone: str = Field("UTC", description="Timezone of vendor days and the inbound/outbound windows.")
    partitions_start: str = "2026-01-01"
    arrival_lookback_days: int = Field(2, ge=0, description="Past days whose inbound folders the sensor watches.")
    arrival_settle_seconds: float = Field(
        5.0, ge=0, description="A file modified more recently than this may still be uploading."
    )
    arrival_lag_seconds: float = Field(
        900.0, ge=1, description="How far behind the newest processed file the sensor keeps looking."
    )
    arrival_vendors_per_run: int = Field(
        1,
        ge=1,
        description="Vendor days that become ready in one sensor tick (same day, priority and lane) share a run, "
        "up to this many vendors. 1: one run per vendor and day. A run costs ~10 CPU-s of Dagster before any work; "
        "when 100 vendors land at once, 10 saves most of it (docs/performance.md).",
    )
    arrival_lanes: int = Field(
        4, ge=1, description="With shared runs: runs of one lane wait for each other; a vendor's lane never changes."
    )
    sensor_interval_seconds: int = 30
    chunk_size: int = Field(50_000, ge=1)  # the engine's DEFAULT_CHUNK_SIZE
    duckdb_memory_limit: str = "256MB"
    duckdb_threads: int = Field(2, ge=1)

    # --- limits: what one inbound file may hold (batch_assets/lib/formats/common.py ReadLimits) ---
    max_file_bytes: int = Field(4 << 30, ge=1, description="A bigger inbound file is quarantined unread.")
    max_record_bytes: int = Field(
        1 << 20, ge=1, description="A longer record is rejected, or its file quarantined where it cannot be skipped."
    )
    max_nesting_depth: int = Field(64, ge=1, description="Deeper JSON or XML nesting is refused.")
    # --- end limits ---

    # --- scheduling/housekeeping (batch_assets/defs/scheduling, batch_assets/defs/housekeeping) ---
    user_schedules_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the user-defined schedule table (PostgreSQL in production); "
        "unset: SQLite file user_schedules.sqlite under DAGSTER_HOME, else under the data dir.",
    )
    dagster_home: Path | None = Field(None, validation_alias="DAGSTER_HOME")
    user_schedules_interval_seconds: int = Field(30, ge=1, description="Dispatcher sensor tick interval.")
    user_schedules_max_catchup_ticks: int = Field(
        5, ge=1, description="Ticks per schedule fired after a pause of the sensor; older missed ticks are skipped."
    )
    retention_run_days: float = Field(90.0, gt=0, description="Finished runs older than this are deleted.")
    retention_file_days: int = Field(
        30, ge=1, description="Staged, rejects and outbound day folders older than this many days are deleted."
    )
    # --- end scheduling/housekeeping ---

    # --- operations: run notifications (batch_assets/defs/operations, batch_assets/lib/notify.py) ---
    ui_base_url: str = Field("http://127.0.0.1:3000", description="The Dagster UI as operators reach it (links).")
    notify_webhook_url: SecretStr | None = Field(
        None, description="Slack-compatible incoming webhook; unset: a JSON-lines log under the data dir."
    )
    notify_jobs: str = Field(
        "process_vendor_files_job,process_vendor_inbound_job,deliver_vendor_outbound_job",
        description="Comma-separated job names whose successes and failures are notified; '*' for every job.",
    )
    notify_attempts: int = Field(3, ge=1, description="Delivery attempts within one sensor tick.")
    notify_outbox_max_age_hours: float = Field(
        72.0, gt=0, description="An undelivered notification older than this goes to the dead-letter log."
    )
    # --- end operations ---

    # --- markets: daily bars and factors (batch_assets/defs/market, batch_assets/defs/factors) ---
    markets_start: str = Field("2015-01-02", description="First session of the bar and factor partitions.")
    markets_source: Literal["auto", "collector", "folder", "synthetic"] = Field(
        "auto",
        description="Where bars come from; auto: the exchange's collector if its URL is set, "
        "else the folder if set, else synthetic bars (seed 004 §5's fallback).",
    )
    krx_collector_url: str | None = Field(None, description="Base URL of the data-collector serving KRX bars.")
    us_collector_url: str | None = Field(None, description="Base URL of the data-collector serving US bars.")
    markets_folder: Path | None = Field(
        None, description="Folder of per-symbol price files: <folder>/<krx|us>/<SYMBOL>.csv|.parquet."
    )
    collector_timeout_seconds: float = Field(10.0, gt=0, description="Per-request timeout of the collector.")
    collector_attempts: int = Field(4, ge=1, description="Attempts per session on 5xx, 429 and connection errors.")
    collector_backoff_seconds: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt.")
    synthetic_symbols: int = Field(40, ge=1, description="Symbols per exchange of the synthetic source.")
    synthetic_seed: int = Field(4, description="Seed of the synthetic random walks.")
    factors_memory_limit: str = Field("512MB", description="DuckDB memory limit of a factor computation.")

    @field_validator("krx_collector_url", "us_collector_url", "markets_folder", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `export BATCH_ASSETS_US_COLLECTOR_URL=` switches the collector off (the §5 rollback).
        return None if isinstance(value, str) and not value.strip() else value

    # --- end markets ---

    # --- trading: strategies, orders, positions, PnL (batch_assets/defs/trading, batch_assets/defs/pnl) ---
    trading_start: str = Field(
        "2026-01-02", description="First day traded; each market's first session on or after it starts flat."
    )
    trading_capital_krw: float = Field(100_000_000.0, gt=0, description="Capital of each strategy on KRX (KRW).")
    trading_capital_usd: float = Field(100_000.0, gt=0, description="Capital of each strategy on the US market.")
    trading_broker: Literal["paper"] = Field("paper", description="Where orders go; 'paper' fills from daily bars.")
    trading_fill_at: Literal["open", "close"] = Field(
        "close", description="Paper broker: market orders fill at the session's close (default) or open."
    )
    trading_fee_bps: float = Field(0.0, ge=0, description="Paper broker: fee per fill, basis points of its value.")
    trading_max_volume_share: float = Field(
        0.1, gt=0, le=1, description="Paper broker: at most this share of a session's volume fills."
    )
    trading_lookback_sessions: int = Field(
        5, ge=1, description="Past sessions the minute-level ticks look at for open orders and unbooked sessions."
    )
    # --- end trading ---

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value


def load_settings() -> Settings:
    return Settings()
