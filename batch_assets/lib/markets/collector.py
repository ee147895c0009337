"""Daily bars from the investment data-collector over HTTP (the contract is in docs/markets.md).

``GET {base_url}/daily-bars?exchange=<krx|us>&session=<YYYY-MM-DD>`` answers
``{"exchange": ..., "session": ..., "bars": [{"symbol", "open", "high", "low", "close",
"adj_close"?, "volume", "halted"?}, ...]}``. Connection errors, timeouts, 5xx and 429 are retried
with exponential backoff; any other 4xx and a malformed body fail at once, with the URL, the
status and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import httpx
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from batch_assets.lib.markets.schema import BarDataError, conform_bars
from batch_assets.lib.markets.sources import BarSource

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
BODY_EXCERPT = 300


class CollectorError(RuntimeError):
    """The collector did not deliver a session's bars; the message says what happened."""


class CollectorRequestError(CollectorError):
    """The collector refused the request (a 4xx other than 429): retrying would not help."""


class CollectorResponseError(CollectorError):
    """The collector answered 200 with a body that is not the contract's."""


class CollectorUnavailableError(CollectorError):
    """Connection errors, timeouts or 5xx on every attempt."""


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class CollectorBar(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symbol: str = Field(min_length=1)
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adj_close: float | None = None
    volume: int | None
    halted: bool = False


class CollectorDay(BaseModel):
    model_config = ConfigDict(extra="ignore")

    exchange: str
    session: date
    bars: list[CollectorBar]


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "…"


class CollectorSource(BarSource):
    """The data-collector's daily bars of an exchange, one GET per session."""

    kind = "collector"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"collector URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout_seconds)
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds

    def describe(self) -> str:
        return f"collector {self.base_url}"

    def fetch(self, exchange: str, session: date) -> pa.Table:
        with self._client() as client:
            return self._fetch(client, exchange, session)

    def fetch_range(self, exchange: str, sessions: Sequence[date]) -> Iterator[tuple[date, pa.Table]]:
        # One client for the range: the connection is kept alive between sessions.
        with self._client() as client:
            for session in sessions:
                yield session, self._fetch(client, exchange, session)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=self.timeout, headers={"Accept": "application/json"})

    def _fetch(self, client: httpx.Client, exchange: str, session: date) -> pa.Table:
        params = {"exchange": exchange, "session": session.isoformat()}
        url = f"{self.base_url}/daily-bars?exchange={exchange}&session={session.isoformat()}"
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            reraise=True,
        )
        try:
            response = retrying(self._get, client, params)
        except httpx.TimeoutException as error:
            raise CollectorUnavailableError(
                f"GET {url} timed out after {self.timeout.read}s on each of {self.attempts} attempt(s): "
                f"{type(error).__name__}"
            ) from error
        except httpx.TransportError as error:
            raise CollectorUnavailableError(
                f"GET {url} failed on each of {self.attempts} attempt(s): {type(error).__name__}: {error}"
            ) from error
        except _Retryable as error:
            raise CollectorUnavailableError(f"GET {url}: {error} on each of {self.attempts} attempt(s)") from error
        if response.status_code >= 400:
            raise CollectorRequestError(
                f"GET {url} was refused: {response.status_code} {response.reason_phrase}: {_excerpt(response.text)}"
            )
        return self._parse(response, url, exchange, session)

    @staticmethod
    def _get(client: httpx.Client, params: dict[str, str]) -> httpx.Response:
        response = client.get("/daily-bars", params=params)
        if response.status_code in RETRIED_STATUSES:
            raise _Retryable(f"{response.status_code} {response.reason_phrase}: {_excerpt(response.text)}")
        return response

    @staticmethod
    def _parse(response: httpx.Response, url: str, exchange: str, session: date) -> pa.Table:
        try:
            day = CollectorDay.model_validate_json(response.content)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]
            )
            raise CollectorResponseError(
                f"GET {url} returned a body that is not the daily-bars contract ({problems}): {_excerpt(response.text)}"
            ) from error
        if day.exchange != exchange or day.session != session:
            raise CollectorResponseError(
                f"GET {url} returned bars of {day.exchange} {day.session}, not of {exchange} {session}"
            )
        bars = day.bars
        table = pa.table(
            {
                "symbol": pa.array([b.symbol for b in bars], pa.string()),
                **{c: pa.array([getattr(b, c) for b in bars], pa.float64()) for c in ("open", "high", "low", "close")},
                # A bar without adj_close has no corporate action to adjust for: adj_close = close.
                "adj_close": pa.array([b.close if b.adj_close is None else b.adj_close for b in bars], pa.float64()),
                "volume": pa.array([b.volume for b in bars], pa.int64()),
                "halted": pa.array([b.halted for b in bars], pa.bool_()),
            }
        )
        try:
            return conform_bars(table, session, CollectorSource.kind)
        except BarDataError as error:
            raise CollectorResponseError(f"GET {url}: {error}") from error
