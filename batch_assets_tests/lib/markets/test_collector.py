"""The HTTP collector client against a real HTTP server on loopback (no mocked client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from batch_assets.lib.markets.collector import (
    CollectorRequestError,
    CollectorResponseError,
    CollectorSource,
    CollectorUnavailableError,
)
from batch_assets.lib.markets.schema import BAR_SCHEMA
from batch_assets_tests.lib.markets.collector_server import Answer, FakeCollector, bars_body, running_collector

SESSION = date(2026, 11, 20)


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    with running_collector() as server:
        yield server


def client(server: FakeCollector, **kwargs) -> CollectorSource:
    options = {"timeout_seconds": 2.0, "attempts": 3, "backoff_seconds": 0.01} | kwargs
    return CollectorSource(server.url, **options)


def test_a_session_is_fetched_with_the_contracts_request_and_stored_in_the_bar_schema(collector) -> None:
    table = client(collector).fetch("us", SESSION)
    assert table.schema == BAR_SCHEMA
    assert table["symbol"].to_pylist() == ["AAA", "BBB", "HALT"]
    assert table["source"].to_pylist() == ["collector"] * 3
    assert table["adj_close"].to_pylist() == table["close"].to_pylist()  # no adj_close in the body
    assert table["halted"].to_pylist() == [False, False, True]
    assert collector.requests == [{"path": "/daily-bars", "exchange": "us", "session": "2026-11-20"}]


def test_a_5xx_is_retried_with_backoff_and_the_next_answer_is_used(collector) -> None:
    """The collector restarts or its upstream hiccups: a transient error must not fail the day."""
    collector.script.extend([Answer(503, "warming up"), Answer(500, "oops")])
    table = client(collector).fetch("krx", SESSION)
    assert table.num_rows == 3
    assert len(collector.requests) == 3


def test_a_5xx_on_every_attempt_fails_saying_so(collector) -> None:
    collector.script.extend([Answer(502, "bad gateway")] * 3)
    with pytest.raises(CollectorUnavailableError, match=r"502 Bad Gateway.*3 attempt"):
        client(collector).fetch("krx", SESSION)
    assert len(collector.requests) == 3


def test_a_slow_collector_times_out_after_the_attempts(collector) -> None:
    collector.script.extend([Answer(200, bars_body("us", "2026-11-20"), delay=1.0)] * 2)
    started = time.monotonic()
    with pytest.raises(CollectorUnavailableError, match="timed out"):
        client(collector, timeout_seconds=0.2, attempts=2).fetch("us", SESSION)
    assert time.monotonic() - started < 1.5
    assert len(collector.requests) == 2


def test_a_timeout_then_an_answer_succeeds(collector) -> None:
    collector.script.append(Answer(200, bars_body("us", "2026-11-20"), delay=0.8))
    table = client(collector, timeout_seconds=0.2).fetch("us", SESSION)
    assert table.num_rows == 3


def test_a_4xx_fails_at_once_without_retrying(collector) -> None:
    """A refused request (unknown exchange, session not collected) does not get better by retrying."""
    collector.script.append(Answer(404, '{"detail": "session 2026-11-20 not collected yet"}'))
    with pytest.raises(CollectorRequestError, match=r"404 Not Found: .*not collected yet"):
        client(collector).fetch("us", SESSION)
    assert len(collector.requests) == 1


def test_429_is_retried_like_a_5xx(collector) -> None:
    collector.script.append(Answer(429, "slow down"))
    assert client(collector).fetch("us", SESSION).num_rows == 3
    assert len(collector.requests) == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>maintenance</html>", "Invalid JSON"),
        ({"exchange": "us", "session": "2026-11-20"}, "bars: Field required"),
        (
            {"exchange": "us", "session": "2026-11-20", "bars": [{"symbol": "A", "open": "x", "high": 1, "low": 1}]},
            "bars.0.open",
        ),
        ({"exchange": "us", "session": "2026-11-19", "bars": []}, "not of us 2026-11-20"),
        (
            {
                "exchange": "us",
                "session": "2026-11-20",
                "bars": [bars_body("us", "2026-11-20")["bars"][0]] * 2,
            },
            "appear more than once",
        ),
    ],
)
def test_a_malformed_body_fails_at_once_naming_the_problem(collector, body, problem) -> None:
    collector.script.append(Answer(200, body))
    with pytest.raises(CollectorResponseError, match=problem):
        client(collector).fetch("us", SESSION)
    assert len(collector.requests) == 1


def test_a_connection_refused_is_retried_then_reported() -> None:
    with running_collector() as server:
        url = server.url
    # The server is gone: nothing listens on the port any more.
    with pytest.raises(CollectorUnavailableError, match="ConnectError"):
        CollectorSource(url, attempts=2, backoff_seconds=0.01, timeout_seconds=1).fetch("us", SESSION)


def test_a_range_is_one_request_per_session_in_order(collector) -> None:
    sessions = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    got = [(s, t["session"][0].as_py()) for s, t in client(collector).fetch_range("krx", sessions)]
    assert got == [(s, s) for s in sessions]
    assert [r["session"] for r in collector.requests] == [s.isoformat() for s in sessions]
