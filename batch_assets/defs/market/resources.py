"""The market slice's resource: which bar source serves each exchange, built from settings."""

from pathlib import Path
from typing import Literal

import dagster as dg

from batch_assets.lib.markets.sources import SelectedSource, SourceConfig, select_source
from batch_assets.lib.settings import Settings


class MarketDataResource(dg.ConfigurableResource):
    """Where daily bars come from: the data-collector over HTTP, a folder of price files or synthetic bars."""

    source: Literal["auto", "collector", "folder", "synthetic"] = "auto"
    krx_collector_url: str | None = None
    us_collector_url: str | None = None
    folder: str | None = None
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_seconds: float = 0.5
    synthetic_symbols: int = 40
    synthetic_seed: int = 4

    def config(self) -> SourceConfig:
        urls = (("krx", self.krx_collector_url), ("us", self.us_collector_url))
        return SourceConfig(
            mode=self.source,
            collector_urls=tuple((exchange, url) for exchange, url in urls if url),
            folder=Path(self.folder) if self.folder else None,
            timeout_seconds=self.timeout_seconds,
            attempts=self.attempts,
            backoff_seconds=self.backoff_seconds,
            synthetic_symbols=self.synthetic_symbols,
            synthetic_seed=self.synthetic_seed,
        )

    def source_for(self, exchange: str) -> SelectedSource:
        """The source serving ``exchange`` and why (seed 004 §5: no collector URL, the local source)."""
        return select_source(exchange, self.config())


def build_market_resource(settings: Settings) -> MarketDataResource:
    return MarketDataResource(
        source=settings.markets_source,
        krx_collector_url=settings.krx_collector_url,
        us_collector_url=settings.us_collector_url,
        folder=str(settings.markets_folder.resolve()) if settings.markets_folder else None,
        timeout_seconds=settings.collector_timeout_seconds,
        attempts=settings.collector_attempts,
        backoff_seconds=settings.collector_backoff_seconds,
        synthetic_symbols=settings.synthetic_symbols,
        synthetic_seed=settings.synthetic_seed,
    )
