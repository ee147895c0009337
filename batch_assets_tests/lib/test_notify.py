"""Notification delivery against a real HTTP receiver on loopback: retries, outbox, exactly once."""

import json
import socket
from pathlib import Path

import pytest

from batch_assets.lib.notify import (
    AssetRows,
    JsonLinesTransport,
    Notifier,
    Outcome,
    RowCounts,
    RunNotification,
    WebhookTransport,
    build_notifier,
    total_rows,
)
from batch_assets_tests.webhook_receiver import WebhookReceiver, webhook_fixture  # noqa: F401  (fixture "webhook")

RUN = RunNotification(
    run_id="5f0c2b7e-0000-4000-8000-000000000001",
    job_name="process_vendor_files_job",
    status="SUCCESS",
    run_url="http://ui.example/runs/5f0c2b7e-0000-4000-8000-000000000001",
    partition="2026-11-20",
    assets=(
        AssetRows("vendor/acme_retail/staged", "2026-11-20", rows_in=200, rows_out=187, rows_rejected=13),
        AssetRows("vendor/acme_retail/rejects", "2026-11-20", rows_rejected=13),
        AssetRows("vendor/acme_retail/outbound", "2026-11-20", rows_out=187),
    ),
    tags={"vendor": "acme_retail"},
)


class Clock:
    """A clock the test moves by hand, so backoff delays pass without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def notifier(url: str, state_dir: Path, clock: Clock, **options) -> Notifier:
    return Notifier(
        WebhookTransport(url, timeout=5), state_dir, clock=clock, sleep=lambda _s: None, backoff_seconds=0.01, **options
    )


def test_a_run_counts_each_record_once_though_several_assets_report_it() -> None:
    """Staged and outbound both report the records out: summing every materialization would double them."""
    assert RUN.rows == RowCounts(rows_in=200, rows_out=187, rows_rejected=13)
    outbound_only = [AssetRows("vendor/a/outbound", rows_out=5), AssetRows("vendor/b/outbound", rows_out=7)]
    assert total_rows(outbound_only) == RowCounts(rows_out=12)
    assert total_rows([AssetRows("x")]) is None


def test_the_payload_is_slack_compatible_and_carries_the_key_and_the_facts() -> None:
    payload = RUN.payload()
    assert "process_vendor_files_job SUCCESS" in payload["text"]
    assert "rows in 200, out 187, rejected 13" in payload["text"]
    assert RUN.run_url in payload["text"]
    assert payload["blocks"][0]["type"] == "header"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert "*Partition*\n2026-11-20" in fields
    assert payload["idempotency_key"] == f"{RUN.run_id}:SUCCESS"
    assert payload["run"]["rows"] == {"rows_in": 200, "rows_out": 187, "rows_rejected": 13}
    json.dumps(payload)


def test_a_webhook_delivery_posts_once_with_the_idempotency_key(webhook: WebhookReceiver, tmp_path) -> None:
    n = notifier(webhook.url, tmp_path, Clock())
    assert n.notify(RUN.key, RUN.payload()) is Outcome.SENT
    assert webhook.keys() == [RUN.key]
    assert webhook.headers[0]["Idempotency-Key"] == RUN.key
    assert n.notify(RUN.key, RUN.payload()) is Outcome.DUPLICATE
    assert webhook.requests == 1


def test_a_transient_failure_is_retried_within_the_call(webhook: WebhookReceiver, tmp_path) -> None:
    webhook.fail_next = 2
    n = notifier(webhook.url, tmp_path, Clock(), attempts=3)
    assert n.notify(RUN.key, RUN.payload()) is Outcome.SENT
    assert webhook.requests == 3
    assert webhook.keys() == [RUN.key]


def test_a_receiver_down_for_a_while_gets_each_notification_exactly_once(webhook: WebhookReceiver, tmp_path) -> None:
    """The outbox keeps what failed, retries it later, and the ledger stops every second delivery."""
    clock = Clock()
    n = notifier(webhook.url, tmp_path, clock, attempts=2, outbox_backoff_seconds=10)
    other = RunNotification(run_id="other-run", job_name="deliver_vendor_outbound_job", status="FAILURE", run_url="u")
    webhook.fail_next = 100
    assert n.notify(RUN.key, RUN.payload()) is Outcome.QUEUED
    assert n.notify(other.key, other.payload()) is Outcome.QUEUED  # the receiver is down: not even tried
    assert webhook.requests == 2
    assert n.notify(RUN.key, RUN.payload()) is Outcome.ALREADY_QUEUED  # the sensor saw the event again

    assert n.flush().sent == []  # not due yet: nothing sent, nothing asked
    assert webhook.requests == 2
    clock.now += 10
    report = n.flush()
    assert list(report.failed) == [RUN.key]  # the first one failed; the second waits for the next tick
    assert webhook.requests == 3
    assert report.pending == 2 and "2 pending" in report.describe()

    webhook.fail_next = 0
    clock.now += 20
    assert n.flush().sent == [RUN.key, other.key]
    clock.now += 600
    assert n.flush().describe() == "Outbox empty."
    assert n.notify(RUN.key, RUN.payload()) is Outcome.DUPLICATE
    assert webhook.keys() == [RUN.key, other.key]


def test_a_refused_request_is_not_retried_in_the_tick_but_kept(webhook: WebhookReceiver, tmp_path) -> None:
    """A 404 will not heal in a second (a revoked webhook): one attempt, then the outbox, not a loss."""
    webhook.fail_next, webhook.fail_status = 1, 404
    n = notifier(webhook.url, tmp_path, Clock())
    assert n.notify(RUN.key, RUN.payload()) is Outcome.QUEUED
    assert webhook.requests == 1
    assert [p.key for p in n.pending()] == [RUN.key]
    assert "HTTP 404" in n.pending()[0].last_error


def test_a_malformed_webhook_url_is_kept_in_the_outbox_not_raised(tmp_path) -> None:
    n = notifier("http://exa mple.com:99999/hook", tmp_path, Clock())
    assert n.notify(RUN.key, RUN.payload()) is Outcome.QUEUED
    assert [p.key for p in n.pending()] == [RUN.key]


def test_a_corrupt_state_file_is_set_aside_not_fatal(tmp_path) -> None:
    (tmp_path / "notify_state.json").write_text("{not json")
    n = build_notifier(None, tmp_path)
    assert n.notify(RUN.key, RUN.payload()) is Outcome.SENT
    assert list(tmp_path.glob("notify_state.json.corrupt-*"))


def test_an_unreachable_receiver_is_a_transient_failure(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    n = notifier(f"http://127.0.0.1:{port}/hook", tmp_path, Clock(), attempts=2)
    assert n.notify(RUN.key, RUN.payload()) is Outcome.QUEUED
    assert "ConnectError" in n.pending()[0].last_error


def test_a_notification_undelivered_for_too_long_goes_to_the_dead_letter_log(
    webhook: WebhookReceiver, tmp_path
) -> None:
    clock = Clock()
    webhook.fail_next = 100
    n = notifier(webhook.url, tmp_path, clock, attempts=1, max_age_seconds=3600)
    n.notify(RUN.key, RUN.payload())
    clock.now += 3601
    report = n.flush()
    assert report.dead == [RUN.key] and report.pending == 0
    buried = [json.loads(line) for line in n.dead_letter_path.read_text().splitlines()]
    assert [b["key"] for b in buried] == [RUN.key]
    assert buried[0]["payload"]["idempotency_key"] == RUN.key


def test_without_a_webhook_notifications_go_to_a_json_lines_log_once_each(tmp_path) -> None:
    n = build_notifier(None, tmp_path / "operations")
    assert isinstance(n.transport, JsonLinesTransport)
    assert n.notify(RUN.key, RUN.payload()) is Outcome.SENT
    assert n.notify(RUN.key, RUN.payload()) is Outcome.DUPLICATE
    lines = [json.loads(line) for line in (tmp_path / "operations" / "notifications.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == [RUN.key]
    assert lines[0]["run"]["partition"] == "2026-11-20"


def test_the_ledger_of_sent_keys_stays_bounded(tmp_path) -> None:
    clock = Clock()
    n = Notifier(JsonLinesTransport(tmp_path / "log.jsonl"), tmp_path, clock=clock, max_sent_keys=3)
    for i in range(5):
        clock.now += 1
        n.notify(f"run-{i}:SUCCESS", {"text": str(i)})
    sent = json.loads(n.state_path.read_text())["sent"]
    assert list(sent) == ["run-2:SUCCESS", "run-3:SUCCESS", "run-4:SUCCESS"]


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
def test_the_idempotency_key_is_the_run_and_its_status(status: str) -> None:
    assert RunNotification(run_id="r1", job_name="j", status=status, run_url="u").key == f"r1:{status}"
