"""Where daily bars come from: one interface, three implementations, chosen by configuration.

- ``CollectorSource`` asks the investment data-collector over HTTP (``collector.py``).
- ``FolderSource`` reads per-symbol price files a user already has (``folder.py``).
- ``SyntheticSource`` makes a deterministic random walk for the demo and tests (``synthetic.py``).

``select_source`` applies seed 004's rollback rule per exchange: with the collector URL unset,
the local implementation runs (the folder when one is configured, else the synthetic walk).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar, Literal

import pyarrow as pa

SourceMode = Literal["auto", "collector", "folder", "synthetic"]


class BarSource(ABC):
    """Daily bars of one exchange's sessions, as ``schema.BAR_SCHEMA`` tables."""

    kind: ClassVar[str]  # the value of the bars' ``source`` column: 'collector', 'folder', 'synthetic'

    @abstractmethod
    def describe(self) -> str:
        """One line for run metadata: which source, where."""

    @abstractmethod
    def fetch(self, exchange: str, session: date) -> pa.Table:
        """Every symbol's bar of ``session`` (a table in BAR_SCHEMA, sorted by symbol; maybe empty)."""

    def fetch_range(self, exchange: str, sessions: Sequence[date]) -> Iterator[tuple[date, pa.Table]]:
        """``(session, bars)`` for each of ``sessions``, in the order given, one session in memory at a time."""
        for session in sessions:
            yield session, self.fetch(exchange, session)


class SourceConfigError(ValueError):
    """The configuration asks for a source it does not describe (e.g. the collector without a URL)."""


@dataclass(frozen=True)
class SourceConfig:
    mode: SourceMode = "auto"
    collector_urls: tuple[tuple[str, str], ...] = ()  # (exchange, base URL) for the exchanges that have one
    folder: Path | None = None  # <folder>/<exchange>/<SYMBOL>.csv|.parquet
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_seconds: float = 0.5
    synthetic_symbols: int = 40
    synthetic_seed: int = 4

    def collector_url(self, exchange: str) -> str | None:
        return dict(self.collector_urls).get(exchange) or None


@dataclass(frozen=True)
class SelectedSource:
    source: BarSource
    reason: str  # why this one: shown next to the source in the materialization metadata


def select_source(exchange: str, config: SourceConfig) -> SelectedSource:
    """The source that serves ``exchange`` under ``config``, and why."""
    from batch_assets.lib.markets.collector import CollectorSource
    from batch_assets.lib.markets.folder import FolderSource
    from batch_assets.lib.markets.synthetic import SyntheticSource

    env = f"BATCH_ASSETS_{exchange.upper()}_COLLECTOR_URL"
    url = config.collector_url(exchange)

    def collector(reason: str) -> SelectedSource:
        source = CollectorSource(
            url or "",
            timeout_seconds=config.timeout_seconds,
            attempts=config.attempts,
            backoff_seconds=config.backoff_seconds,
        )
        return SelectedSource(source, reason)

    def folder(reason: str) -> SelectedSource:
        if config.folder is None:
            raise SourceConfigError("the folder source needs BATCH_ASSETS_MARKETS_FOLDER")
        return SelectedSource(FolderSource(config.folder), reason)

    def synthetic(reason: str) -> SelectedSource:
        return SelectedSource(SyntheticSource(config.synthetic_symbols, config.synthetic_seed), reason)

    if config.mode == "collector":
        if not url:
            raise SourceConfigError(f"BATCH_ASSETS_MARKETS_SOURCE=collector but {env} is not set")
        return collector("configured: collector")
    if config.mode == "folder":
        return folder("configured: folder")
    if config.mode == "synthetic":
        return synthetic("configured: synthetic")
    if url:
        return collector(f"auto: {env} is set")
    if config.folder is not None:
        return folder(f"auto: {env} not set, local fallback to the folder")
    return synthetic(f"auto: {env} not set and no BATCH_ASSETS_MARKETS_FOLDER, local fallback to synthetic bars")
