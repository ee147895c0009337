"""The API trigger against a real dagster-webserver and dagster-daemon: launch a vendor partition
run and follow it to SUCCESS (and its notification), launch a 2-day backfill, cancel a queued run
and a backfill, and get one-line errors with distinct exit codes for what does not exist.

The deployment path is one test walking the steps in order: they share one deployment (~10 s to
start) and overlap the slow parts (runs dequeue every 2 s, the backfill daemon passes every 30 s).
"""

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from batch_assets.cli import main
from batch_assets.cli.runs import AssetNode, Target, _with_op_siblings, parse_tags, partition_range
from batch_assets.lib.storage import LocalFolderStore
from batch_assets_tests.dagster_server import DagsterDeployment, dagster_deployment, free_port  # noqa: F401
from batch_assets_tests.defs.vendor_files.helpers import drop_file

# Days older than the arrival sensor's lookback (2 days): only the CLI starts runs for them.
TODAY = dt.datetime.now(dt.UTC).date()
RUN_DAY, BACKFILL_FIRST, BACKFILL_LAST = ((TODAY - dt.timedelta(days=n)).isoformat() for n in (12, 15, 14))
# Runs cost a few CPU-seconds each on a shared 2-core machine: generous, but a stuck run fails.
RUN_TIMEOUT_S = 150
# The backfill's two runs go one after the other (one run per vendor) after the backfill daemon's
# 30 s pass; waiting costs no CPU, and a loaded machine stretches each run start.
BACKFILL_TIMEOUT_S = 300


class Cli:
    """``batch-assets`` in-process against one webserver: exit code, parsed --json output, stderr."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture):
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, dict, str]:
        self.capsys.readouterr()
        code = main([*args, "--url", self.url, "--json"])
        out, err = self.capsys.readouterr()
        return code, json.loads(out) if out.strip() else {}, err

    def ok(self, *args: str) -> dict:
        code, data, err = self(*args)
        assert code == 0, f"batch-assets {' '.join(args)} exited {code}: {err}"
        return data


def wait_for_first_tick(url: str, sensor: str, timeout: float = 60) -> None:
    """A run status sensor starts from the newest event on its first tick: wait for it before runs finish."""
    query = (
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState { "
        "ticks(limit: 1) { status } } } } }"
    )
    selector = {"repositoryName": "__repository__", "repositoryLocationName": "batch_assets", "sensorName": sensor}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = httpx.post(f"{url}/graphql", json={"query": query, "variables": {"s": selector}}, timeout=30).json()
        state = (data.get("data") or {}).get("sensorOrError", {}).get("sensorState")  # None: not loaded (yet)
        if state and state["ticks"]:
            return
        time.sleep(1)
    raise AssertionError(f"{sensor} did not tick within {timeout}s: {data}")


def notifications(data_dir: Path) -> list[dict]:
    log = data_dir / "operations" / "notifications.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_runs_and_backfills_are_launched_followed_and_canceled_through_the_api(
    dagster_deployment: DagsterDeployment,  # noqa: F811
    demo_specs,
    capsys,
) -> None:
    d = dagster_deployment
    cli = Cli(d.url, capsys)
    store = LocalFolderStore(d.data_dir)
    _, acme_file = drop_file(store, demo_specs["acme_retail"], day=RUN_DAY, records=150)
    for day in (BACKFILL_FIRST, BACKFILL_LAST):
        drop_file(store, demo_specs["hooli_ads"], day=day, records=50)

    # What does not exist is refused before anything is launched, with its own exit code.
    for args, code, words in [
        (["run", "no_such_job"], 2, "unknown job 'no_such_job'"),
        (["run", "--asset", "vendor/acme_retail/stagd", "--partition", RUN_DAY], 2, "unknown asset"),
        (["run", "--asset", "vendor/acme_retail/staged", "--partition", "1999-01-01"], 2, "unknown partition"),
        (["backfill", "--asset", "vendor/hooli_ads/staged", "--from", "1999-01-01", "--to", RUN_DAY], 2, "unknown"),
        (["status", "00000000-0000-0000-0000-000000000000"], 2, "no run or backfill"),
        (["run", "process_vendor_files_job"], 1, "is partitioned: pass --partition"),
        (["run", "--asset", "vendor/acme_retail/inbound", "--partition", RUN_DAY], 1, "cannot be materialized"),
    ]:
        got, data, err = cli(*args)
        assert got == code, (args, err)
        assert words in data["error"] and err.count("\n") == 1 and err.startswith("error: "), err

    # The backfill first: the backfill daemon only looks every 30 s, so its runs overlap the rest.
    backfill = cli.ok("backfill", "--asset", "vendor/hooli_ads/staged", "--from", BACKFILL_FIRST, "--to", BACKFILL_LAST)
    launched = time.monotonic()
    assert backfill["partitions"] == [BACKFILL_FIRST, BACKFILL_LAST]
    assert backfill["assets"] == ["vendor/hooli_ads/staged", "vendor/hooli_ads/rejects"]  # one op: both
    assert backfill["tags"]["vendor"] == "hooli_ads"
    shown = cli.ok("status", backfill["backfill_id"])
    assert (shown["kind"], shown["partitions"]) == ("backfill", [BACKFILL_FIRST, BACKFILL_LAST])
    assert shown["url"].endswith(f"/runs/b/{backfill['backfill_id']}")

    wait_for_first_tick(d.url, "run_success_notification_sensor")
    run = cli.ok("run", "--asset", "vendor/acme_retail/staged", "--partition", RUN_DAY)
    assert run["job"] == "process_vendor_files_job"
    assert run["assets"] == ["vendor/acme_retail/staged", "vendor/acme_retail/rejects"]
    assert run["tags"] == {"trigger": "api", "vendor": "acme_retail", "dagster/partition": RUN_DAY}

    # A second run of the same vendor waits behind the first (one run per vendor): cancel it there.
    queued = cli.ok("run", "--asset", "vendor/acme_retail/outbound", "--partition", RUN_DAY)
    canceled = cli.ok("cancel", queued["run_id"])
    assert canceled["canceled"] and canceled["was"] == "QUEUED"
    code, final, _ = cli("status", queued["run_id"], "--wait", "--interval", "1", "--timeout", "60")
    assert (code, final["status"]) == (1, "CANCELED")  # --wait exits 0 only on success
    again = cli.ok("cancel", queued["run_id"])
    assert not again["canceled"] and "already finished (CANCELED)" in again["message"]

    done = cli.ok("status", run["run_id"], "--wait", "--interval", "1", "--timeout", str(RUN_TIMEOUT_S))
    assert (done["status"], done["job"], done["partition"]) == ("SUCCESS", "process_vendor_files_job", RUN_DAY)
    rows = done["rows"]
    assert rows["rows_in"] == acme_file.records
    assert rows["rows_out"] + rows["rows_rejected"] == acme_file.records

    # The daemon's run status sensor delivered exactly one message for the run (default: a local log).
    deadline = time.monotonic() + 60
    while not any(n["key"] == f"{run['run_id']}:SUCCESS" for n in notifications(d.data_dir)):
        assert time.monotonic() < deadline, "no notification for the successful run\n" + d.log_tail()
        time.sleep(1)
    sent = [n for n in notifications(d.data_dir) if n["run"]["run_id"] in (run["run_id"], queued["run_id"])]
    assert [n["key"] for n in sent] == [f"{run['run_id']}:SUCCESS"]
    assert sent[0]["run"]["rows"] == rows and sent[0]["run"]["partition"] == RUN_DAY

    # The backfill's two runs, one per day, both through.
    deadline = launched + BACKFILL_TIMEOUT_S
    while True:
        shown = cli.ok("status", backfill["backfill_id"])
        finished = {r["partition"]: r["status"] for r in shown["runs"] if r["status"] in ("SUCCESS", "FAILURE")}
        if len(finished) == 2 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert finished == {BACKFILL_FIRST: "SUCCESS", BACKFILL_LAST: "SUCCESS"}, shown

    # A backfill can be canceled as well.
    other = cli.ok("backfill", "--asset", "vendor/globex_logistics/outbound", "--partition", BACKFILL_FIRST)
    stopped = cli.ok("cancel", other["backfill_id"])
    assert stopped["kind"] == "backfill" and stopped["status"] in ("CANCELING", "CANCELED")


def test_an_unreachable_webserver_is_exit_code_3_with_one_line() -> None:
    """Scripts tell "the platform is down" from "you asked for something wrong" by the exit code."""
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "batch-assets"), "status", "abc", "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and f"cannot reach the Dagster webserver at {url}" in done.stderr


def test_the_webserver_url_comes_from_the_environment(monkeypatch, capsys) -> None:
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["cancel", "abc"]) == 3
    assert "DAGSTER_WEBSERVER_URL" in capsys.readouterr().err


def test_a_multi_asset_runs_with_every_asset_of_its_op() -> None:
    """Staged and rejects come out of one step: asking for one launches both, never a bad subset."""
    staged = AssetNode("vendor/a/staged", ["j"], ["stage_a"], True, True)
    others = [
        AssetNode("vendor/a/rejects", ["j"], ["stage_a"], True, True),
        AssetNode("vendor/a/outbound", ["j"], ["vendor__a__outbound"], True, True),
        staged,
    ]
    assert _with_op_siblings([staged], others) == ["vendor/a/staged", "vendor/a/rejects"]


def test_a_range_is_the_partitions_between_its_ends_inclusive() -> None:
    target = Target(job=None, assets=None, partition_keys=["d1", "d2", "d3", "d4"], partitioned=True)
    assert partition_range(target, "d2", "d3") == ["d2", "d3"]
    with pytest.raises(Exception, match="comes after"):
        partition_range(target, "d3", "d2")
    with pytest.raises(Exception, match="unknown partition 'd9'"):
        partition_range(target, "d1", "d9")


def test_tags_are_key_value_pairs() -> None:
    assert parse_tags(["team=ops", "note=a=b"]) == {"team": "ops", "note": "a=b"}
    with pytest.raises(Exception, match="KEY=VALUE"):
        parse_tags(["oops"])
