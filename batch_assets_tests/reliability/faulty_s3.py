"""A fault-injecting HTTP proxy in front of the moto S3 server: real errors over a real socket.

Each request is matched against a list of rules; a matching rule with faults left answers with
its fault instead of forwarding: an S3 error document with a status and code (500 InternalError,
503 SlowDown, 403 AccessDenied...), a connection closed without an answer, or a forwarded answer
whose body is cut short. Every request is recorded with its time and what it got, so a test can
count attempts and measure the waits between them.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    kind: str  # "error" | "reset" | "truncate"
    status: int = 500
    code: str = "InternalError"


@dataclass
class Rule:
    """Answer ``times`` matching requests with ``fault`` (``times=None``: every one)."""

    matches: Callable[[str, str], bool]  # (method, path with query) -> bool
    fault: Fault
    times: int | None = 1

    def take(self, method: str, path: str) -> Fault | None:
        if (self.times is None or self.times > 0) and self.matches(method, path):
            if self.times is not None:
                self.times -= 1
            return self.fault
        return None


@dataclass
class Seen:
    at: float
    method: str
    path: str
    answer: str  # "forwarded" or the fault's kind/code


@dataclass
class FaultyS3:
    url: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, matches: Callable[[str, str], bool], fault: Fault, times: int | None = 1) -> None:
        with self.lock:
            self.rules.append(Rule(matches, fault, times))

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def attempts(self, method: str, path_part: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and path_part in s.path]


def is_list(method: str, path: str) -> bool:
    return method == "GET" and "list-type=2" in path


def object_request(method: str, key_part: str) -> Callable[[str, str], bool]:
    return lambda m, path: m == method and key_part in path and "list-type" not in path


def _error_body(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>injected by the test proxy</Message><RequestId>faulty-s3</RequestId></Error>"
    ).encode()


def _handler(state: FaultyS3, upstream: str) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body()
            with state.lock:
                fault = next((f for rule in state.rules if (f := rule.take(self.command, self.path))), None)
                state.seen.append(
                    Seen(
                        time.monotonic(),
                        self.command,
                        self.path,
                        fault.kind + ":" + fault.code if fault else "forwarded",
                    )
                )
            if fault is not None and fault.kind == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "error":
                payload = b"" if self.command == "HEAD" else _error_body(fault.code)
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if fault is not None and fault.kind == "truncate" and len(payload) > 1:
                # The headers promise the whole object; half of it arrives, then the connection drops.
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def faulty_s3(upstream: str) -> Iterator[FaultyS3]:
    """A proxy to ``upstream`` (the moto server) on a free loopback port, for the block's duration."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FaultyS3(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state, upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="faulty-s3", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
