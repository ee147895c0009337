"""Where market data lives in the file store: one Parquet file per exchange, dataset and session."""

from __future__ import annotations

from datetime import date

BARS = "daily_bars"
FACTORS = "daily"


def bars_prefix(exchange: str) -> str:
    return f"market/{exchange}/{BARS}/"


def bars_key(exchange: str, session: date) -> str:
    """e.g. 'market/krx/daily_bars/2026-11-20.parquet'."""
    return f"{bars_prefix(exchange)}{session.isoformat()}.parquet"


def factors_prefix(exchange: str) -> str:
    return f"factors/{exchange}/{FACTORS}/"


def factors_key(exchange: str, session: date) -> str:
    """e.g. 'factors/us/daily/2026-11-20.parquet'."""
    return f"{factors_prefix(exchange)}{session.isoformat()}.parquet"
