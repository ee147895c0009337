"""Run notifications: the message, its delivery and an outbox that neither loses nor repeats one.

A notification is identified by its idempotency key, run id + status. Delivery goes to a
Slack-compatible incoming webhook (JSON with ``text`` and ``blocks``) or, when none is set, to a
JSON-lines log. Transient failures (connection errors, 429, 5xx) are retried with exponential
backoff within the call; a notification that still fails waits in an outbox file and is retried
by ``Notifier.flush`` (every tick of the outbox sensor) with a growing delay. A ledger of the keys
already delivered makes a repeated ``notify`` of the same run and status a no-op, so a sensor that
sees an event twice does not send it twice. The key also travels in the payload and in the
``Idempotency-Key`` header, for receivers that deduplicate themselves.

Plain Python: no Dagster here; the sensors in ``defs/operations`` build the notifications.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import tenacity

ROW_METRICS = ("rows_in", "rows_out", "rows_rejected")
STATUS_EMOJI = {"SUCCESS": ":white_check_mark:", "FAILURE": ":x:", "CANCELED": ":no_entry_sign:"}

LOG_FILE = "notifications.jsonl"
STATE_FILE = "notify_state.json"
DEAD_LETTER_FILE = "notify_dead_letters.jsonl"


# --- the message -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetRows:
    """Row counts one materialization reported (None: the asset does not report that count)."""

    asset: str
    partition: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None


@dataclass(frozen=True)
class RowCounts:
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0


def total_rows(assets: Iterable[AssetRows]) -> RowCounts | None:
    """The run's totals, each record counted once.

    A record shows up in several materializations (staged and outbound both report it as out,
    staged and rejects both as rejected), so the totals come from the materializations that read
    the input, the ones that report ``rows_in``. A run without such an asset (outbound only) sums
    what its assets report. None when no asset reports a row count.
    """
    assets = list(assets)
    readers = [a for a in assets if a.rows_in is not None]
    counted = readers or assets
    if not any(getattr(a, m) is not None for a in counted for m in ROW_METRICS):
        return None
    return RowCounts(*(sum(getattr(a, m) or 0 for a in counted) for m in ROW_METRICS))


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunNotification:
    run_id: str
    job_name: str
    status: str  # SUCCESS | FAILURE | ...
    run_url: str
    partition: str | None = None
    assets: tuple[AssetRows, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None
    reason: str | None = None  # why a run failed, one paragraph
    tags: Mapping[str, str] = field(default_factory=dict)  # a few telling run tags (vendor, trigger)

    @property
    def key(self) -> str:
        """The idempotency key: one notification per run and status."""
        return f"{self.run_id}:{self.status}"

    @property
    def rows(self) -> RowCounts | None:
        return total_rows(self.assets)

    def text(self) -> str:
        """One line for chat clients and notification previews."""
        parts = [f"{self.job_name} {self.status}"]
        if self.partition:
            parts.append(f"partition {self.partition}")
        rows = self.rows
        if rows is not None:
            parts.append(f"rows in {rows.rows_in:,}, out {rows.rows_out:,}, rejected {rows.rows_rejected:,}")
        if self.reason:
            parts.append(self.reason.strip().splitlines()[-1][:200])  # the most specific line: the step's error
        return (
            f"{STATUS_EMOJI.get(self.status, '')} {' · '.join(parts)} (run {self.run_id[:8]}: {self.run_url})".strip()
        )

    def payload(self) -> dict[str, Any]:
        """The webhook body: Slack's ``text`` and ``blocks``, the key, and the facts as plain JSON."""
        rows = self.rows
        fields = [
            f"*Job*\n{self.job_name}",
            f"*Status*\n{self.status}",
            f"*Partition*\n{self.partition or '-'}",
            f"*Run*\n<{self.run_url}|{self.run_id[:8]}>",
        ]
        if rows is not None:
            fields.append(f"*Rows in / out / rejected*\n{rows.rows_in:,} / {rows.rows_out:,} / {rows.rows_rejected:,}")
        fields.extend(f"*{k.capitalize()}*\n{v}" for k, v in sorted(self.tags.items()))
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"{self.job_name}: {self.status}"[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},
        ]
        if self.reason:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{self.reason[:2900]}```"}})
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"run `{self.run_id}` · key `{self.key}`"}]}
        )
        return {
            "text": self.text(),
            "blocks": blocks,
            "idempotency_key": self.key,
            "run": {
                "run_id": self.run_id,
                "job_name": self.job_name,
                "status": self.status,
                "partition": self.partition,
                "run_url": self.run_url,
                "rows": asdict(rows) if rows is not None else None,
                "assets": [asdict(a) for a in self.assets],
                "started_at": _when(self.started_at),
                "ended_at": _when(self.ended_at),
                "reason": self.reason,
                "tags": dict(self.tags),
            },
        }


# --- transports --------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A notification was not delivered; ``transient`` failures are worth retrying soon."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class Transport(Protocol):
    def send(self, key: str, payload: Mapping[str, Any]) -> None: ...

    def describe(self) -> str: ...


class WebhookTransport:
    """POST the payload as JSON to a Slack-compatible incoming webhook."""

    def __init__(self, url: str, *, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout

    def describe(self) -> str:
        # The URL of a Slack webhook is its secret: show the host only.
        return f"webhook {httpx.URL(self.url).host}"

    def send(self, key: str, payload: Mapping[str, Any]) -> None:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(self.url, json=payload, headers={"Idempotency-Key": key})
        except httpx.TransportError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=True) from exc
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # e.g. a malformed webhook URL
            raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=False) from exc
        if response.is_success:
            return
        transient = response.status_code == 429 or response.status_code >= 500
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}", transient=transient)


class JsonLinesTransport:
    """Append each notification as one JSON line to a local file (the default without a webhook)."""

    def __init__(self, path: Path):
        self.path = path

    def describe(self) -> str:
        return f"log {self.path}"

    def send(self, key: str, payload: Mapping[str, Any]) -> None:
        line = json.dumps({"key": key, "delivered_at": _when(time.time()), **payload}, default=str)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=False) from exc


# --- the outbox --------------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # delivered before: not sent again
    QUEUED = "queued"  # delivery failed: in the outbox for the next flush
    ALREADY_QUEUED = "already_queued"


@dataclass
class Pending:
    key: str
    payload: dict[str, Any]
    first_failed_at: float
    attempts: int
    next_attempt_at: float
    last_error: str


@dataclass
class FlushReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    pending: int = 0
    next_attempt_at: float | None = None

    def describe(self) -> str:
        if not (self.sent or self.failed or self.dead or self.pending):
            return "Outbox empty."
        parts = []
        if self.sent:
            parts.append(f"delivered {len(self.sent)} queued notification(s)")
        if self.failed:
            key, error = next(iter(self.failed.items()))
            parts.append(f"{len(self.failed)} failed again ({key}: {error})")
        if self.dead:
            parts.append(f"{len(self.dead)} too old, moved to the dead-letter log")
        if self.pending:
            parts.append(f"{self.pending} pending, next attempt at {_when(self.next_attempt_at)}")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."


@dataclass
class _State:
    pending: dict[str, Pending] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)  # key -> when it was delivered

    @classmethod
    def load(cls, path: Path) -> _State:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            # Kept for a person to look at; a broken file must not stop every later notification.
            path.replace(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
            return cls()
        pending = {p["key"]: Pending(**p) for p in raw.get("pending", [])}
        return cls(pending=pending, sent=dict(raw.get("sent", {})))

    def save(self, path: Path) -> None:
        raw = {"pending": [asdict(p) for p in self.pending.values()], "sent": self.sent}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw, default=str), encoding="utf-8")
        os.replace(tmp, path)


class Notifier:
    """Deliver notifications at most once per key, keeping the failed ones until they go through."""

    def __init__(
        self,
        transport: Transport,
        state_dir: Path,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 4.0,
        outbox_backoff_seconds: float = 5.0,
        outbox_max_backoff_seconds: float = 600.0,
        max_age_seconds: float = 72 * 3600,
        sent_retention_seconds: float = 14 * 24 * 3600,
        max_sent_keys: int = 10_000,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.transport = transport
        self.state_dir = state_dir
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.outbox_backoff_seconds = outbox_backoff_seconds
        self.outbox_max_backoff_seconds = outbox_max_backoff_seconds
        self.max_age_seconds = max_age_seconds
        self.sent_retention_seconds = sent_retention_seconds
        self.max_sent_keys = max_sent_keys
        self.clock = clock
        self.sleep = sleep
        # After a transient failure, notifications go straight to the outbox for a while: a tick
        # with many finished runs must not spend attempts x timeout on each while the receiver is down.
        self._receiver_down_until = 0.0

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def dead_letter_path(self) -> Path:
        return self.state_dir / DEAD_LETTER_FILE

    @contextlib.contextmanager
    def _locked_state(self) -> Iterator[_State]:
        """The outbox and ledger under an exclusive lock: two sensors never deliver the same key."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f"{STATE_FILE}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = _State.load(self.state_path)
                yield state
                self._prune(state)
                state.save(self.state_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _send_with_retries(self, key: str, payload: Mapping[str, Any], attempts: int) -> None:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, DeliveryError) and e.transient),
            sleep=self.sleep,
            reraise=True,
        )
        retrying(self.transport.send, key, payload)

    def notify(self, key: str, payload: Mapping[str, Any]) -> Outcome:
        """Deliver now (retrying transient failures), or queue it; never twice for one key."""
        with self._locked_state() as state:
            if key in state.sent:
                return Outcome.DUPLICATE
            if key in state.pending:
                return Outcome.ALREADY_QUEUED
            now = self.clock()
            try:
                if now < self._receiver_down_until:
                    raise DeliveryError("not tried: the receiver failed moments ago", transient=True)
                self._send_with_retries(key, payload, self.attempts)
            except DeliveryError as exc:
                now = self.clock()
                if exc.transient:
                    self._receiver_down_until = now + self.outbox_backoff_seconds
                state.pending[key] = Pending(
                    key=key,
                    payload=dict(payload),
                    first_failed_at=now,
                    attempts=self.attempts,
                    next_attempt_at=now + self.outbox_backoff_seconds,
                    last_error=str(exc),
                )
                return Outcome.QUEUED
            state.sent[key] = self.clock()
            return Outcome.SENT

    def flush(self) -> FlushReport:
        """Retry the queued notifications that are due; stop at the first transient failure."""
        report = FlushReport()
        receiver_down = False  # after a transient failure, leave the rest for the next tick
        with self._locked_state() as state:
            now = self.clock()
            for key, item in list(state.pending.items()):
                if key in state.sent:
                    del state.pending[key]
                    continue
                if now - item.first_failed_at > self.max_age_seconds:
                    self._bury(item, now)
                    del state.pending[key]
                    report.dead.append(key)
                    continue
                if item.next_attempt_at > now or receiver_down:
                    continue
                try:
                    self._send_with_retries(key, item.payload, 1)
                except DeliveryError as exc:
                    item.attempts += 1
                    item.last_error = str(exc)
                    delay = self.outbox_backoff_seconds * 2 ** min(item.attempts - self.attempts, 16)
                    item.next_attempt_at = now + min(delay, self.outbox_max_backoff_seconds)
                    report.failed[key] = str(exc)
                    receiver_down = exc.transient
                    continue
                del state.pending[key]
                state.sent[key] = now
                report.sent.append(key)
                self._receiver_down_until = 0.0
            report.pending = len(state.pending)
            if state.pending:
                report.next_attempt_at = min(p.next_attempt_at for p in state.pending.values())
        return report

    def _bury(self, item: Pending, now: float) -> None:
        line = json.dumps({"buried_at": _when(now), **asdict(item)}, default=str)
        with open(self.dead_letter_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def _prune(self, state: _State) -> None:
        """Keep the ledger bounded: a run status sensor never goes back more than a few days."""
        horizon = self.clock() - self.sent_retention_seconds
        kept = sorted(((t, k) for k, t in state.sent.items() if t >= horizon), reverse=True)[: self.max_sent_keys]
        state.sent = {k: t for t, k in sorted(kept)}

    def pending(self) -> list[Pending]:
        with self._locked_state() as state:
            return list(state.pending.values())


def build_notifier(webhook_url: str | None, state_dir: Path, **options: Any) -> Notifier:
    """A webhook notifier when a URL is set, otherwise one that appends to ``state_dir/notifications.jsonl``."""
    transport: Transport = WebhookTransport(webhook_url) if webhook_url else JsonLinesTransport(state_dir / LOG_FILE)
    return Notifier(transport, state_dir, **options)
