"""Deterministic synthetic daily bars for the demo and tests: a seeded random walk per symbol.

Each symbol's log price walks from a fixed origin session (the first session of 2000), so a
session's bars are the same whichever range asks for them and in whichever process. About one
symbol-session in 500 is a trading halt: zero volume, zero open/high/low, the last close (how
KRX reports a suspended stock) and ``halted = true``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import numpy as np
import pyarrow as pa

from batch_assets.lib.markets.calendars import SNAPSHOT_START, exchange_sessions
from batch_assets.lib.markets.schema import BAR_SCHEMA
from batch_assets.lib.markets.sources import BarSource

EXCHANGE_SEEDS = {"krx": 1, "us": 2}
HALT_Z = 3.09  # |z| above this on the halt draw: a probability of about 0.2%
# Sessions generated per pass in fetch_range: bounds memory to sessions x symbols of one pass.
SESSIONS_PER_PASS = 500


def synthetic_symbols(exchange: str, count: int) -> list[str]:
    """KRX-like six-digit codes ('900000', …) or US-like tickers ('SYN0000', …)."""
    return [f"9{i:05d}" if exchange == "krx" else f"SYN{i:04d}" for i in range(count)]


class SyntheticSource(BarSource):
    """``symbols`` random walks per exchange, fixed by ``seed``."""

    kind = "synthetic"

    def __init__(self, symbols: int = 40, seed: int = 4) -> None:
        self.symbols = symbols
        self.seed = seed

    def describe(self) -> str:
        return f"synthetic ({self.symbols} symbols, seed {self.seed})"

    def fetch(self, exchange: str, session: date) -> pa.Table:
        return next(iter(self.fetch_range(exchange, [session])))[1]

    def fetch_range(self, exchange: str, sessions: Sequence[date]) -> Iterator[tuple[date, pa.Table]]:
        for start in range(0, len(sessions), SESSIONS_PER_PASS):
            chunk = list(sessions[start : start + SESSIONS_PER_PASS])
            yield from self._walks(exchange, chunk)

    def _walks(self, exchange: str, chunk: list[date]) -> Iterator[tuple[date, pa.Table]]:
        calendar = exchange_sessions(exchange, SNAPSHOT_START, max(chunk))
        position = {d: i for i, d in enumerate(calendar)}
        rows = np.array([position.get(d, -1) for d in chunk])
        valid = rows >= 0  # a day that is not a session has no bars
        take = rows[valid]
        n = len(calendar)
        symbols = synthetic_symbols(exchange, self.symbols)
        krx = exchange == "krx"
        cols = {c: np.empty((len(take), len(symbols))) for c in ("open", "high", "low", "close")}
        volume = np.empty((len(take), len(symbols)), dtype=np.int64)
        halted = np.empty((len(take), len(symbols)), dtype=bool)
        for j in range(len(symbols)):
            rng = np.random.default_rng([self.seed, EXCHANGE_SEEDS.get(exchange, 9), j])
            base = 10 ** rng.uniform(3.7, 5.5) if krx else 10 ** rng.uniform(1.0, 2.7)
            sigma = rng.uniform(0.01, 0.03)
            # One draw of (n, 6) normals: row i is the same for every n, so history never changes.
            z = rng.standard_normal((n, 6))
            log_close = np.log(base) + np.cumsum(0.0002 + sigma * z[:, 0])
            close = np.exp(log_close)
            prev = np.exp(np.concatenate([[np.log(base)], log_close[:-1]]))
            opening = prev * np.exp(0.3 * sigma * z[:, 1])
            high = np.maximum(opening, close) * (1 + 0.5 * sigma * np.abs(z[:, 2]))
            low = np.minimum(opening, close) * (1 - 0.5 * sigma * np.abs(z[:, 3]))
            vol = np.round(np.exp(12.0 + 0.5 * z[:, 4])).astype(np.int64)
            halt = np.abs(z[:, 5]) > HALT_Z
            digits = 0 if krx else 2
            c, o, h, lo = (np.round(a[take], digits) for a in (close, opening, high, low))
            h, lo = np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c))
            hs = halt[take]
            last_close = np.round(prev[take], digits)
            cols["close"][:, j] = np.where(hs, last_close, c)
            for name, values in (("open", o), ("high", h), ("low", lo)):
                cols[name][:, j] = np.where(hs, 0.0, values)
            volume[:, j] = np.where(hs, 0, vol[take])
            halted[:, j] = hs
        i = 0
        for session, ok in zip(chunk, valid, strict=True):
            if not ok:
                yield session, BAR_SCHEMA.empty_table()
                continue
            yield (
                session,
                pa.table(
                    {
                        "symbol": pa.array(symbols, pa.string()),
                        "session": pa.array([session] * len(symbols), pa.date32()),
                        **{name: pa.array(cols[name][i]) for name in ("open", "high", "low", "close")},
                        "adj_close": pa.array(cols["close"][i]),
                        "volume": pa.array(volume[i]),
                        "halted": pa.array(halted[i]),
                        "source": pa.array([self.kind] * len(symbols), pa.string()),
                    },
                    schema=BAR_SCHEMA,
                ),
            )
            i += 1
