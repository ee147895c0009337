"""A real HTTP data-collector on loopback for tests: scripted answers, every request recorded."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict = b""
    delay: float = 0.0  # seconds to wait before answering (a slow collector)


def bars_body(exchange: str, session: str, symbols: tuple[str, ...] = ("AAA", "BBB")) -> dict:
    """A contract-conforming 200 body: one bar per symbol, one halted."""
    bars = [
        {"symbol": s, "open": 10.0 + i, "high": 11.0 + i, "low": 9.5 + i, "close": 10.5 + i, "volume": 1000 * (i + 1)}
        for i, s in enumerate(symbols)
    ]
    bars.append({"symbol": "HALT", "open": 0, "high": 0, "low": 0, "close": 7.0, "volume": 0, "halted": True})
    return {"exchange": exchange, "session": session, "bars": bars}


class FakeCollector:
    """Answers GET /daily-bars: first from ``script`` (in order), then with ``default(exchange, session)``."""

    def __init__(self, default: Callable[[str, str], Answer] | None = None) -> None:
        self.script: deque[Answer] = deque()
        self.requests: list[dict[str, str]] = []
        self.default = default or (lambda exchange, session: Answer(200, bars_body(exchange, session)))
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                collector.requests.append({"path": parts.path, **query})
                if parts.path != "/daily-bars":
                    answer = Answer(404, "no such endpoint")
                elif collector.script:
                    answer = collector.script.popleft()
                else:
                    answer = collector.default(query.get("exchange", ""), query.get("session", ""))
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body
                if isinstance(body, dict):
                    body = json.dumps(body)
                if isinstance(body, str):
                    body = body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


@contextmanager
def running_collector(collector: FakeCollector | None = None) -> Iterator[FakeCollector]:
    collector = collector or FakeCollector()
    server = ThreadingHTTPServer(("127.0.0.1", 0), collector.handler())
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    collector.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
