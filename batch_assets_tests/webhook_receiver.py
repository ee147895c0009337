"""A real HTTP receiver on loopback for notification tests: records what it accepts, fails on demand."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class WebhookReceiver:
    url: str
    fail_next: int = 0  # answer this many requests with ``fail_status`` before accepting again
    fail_status: int = 500
    requests: int = 0
    accepted: list[dict] = field(default_factory=list)  # bodies answered with 200
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        return [body["idempotency_key"] for body in self.accepted]


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.requests += 1
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
                else:
                    receiver.accepted.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
            status = receiver.fail_status if failing else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"unavailable")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(name="webhook")
def webhook_fixture() -> Iterator[WebhookReceiver]:
    """An incoming-webhook stand-in on 127.0.0.1 (port 0: the OS picks a free one)."""
    receiver = WebhookReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/batch"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
