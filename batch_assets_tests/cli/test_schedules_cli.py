"""``batch-assets schedules`` on a real SQLite table: add, list, disable, enable, remove, refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_assets.cli import main
from batch_assets.lib.user_schedules import SqlUserScheduleStore
from batch_assets_tests.conftest import REPO_ROOT


@pytest.fixture
def url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'user_schedules.sqlite'}"
    monkeypatch.setenv("BATCH_ASSETS_USER_SCHEDULES_URL", url)
    return url


def listed(capsys) -> dict[str, dict]:
    assert main(["schedules", "list", "--json"]) == 0
    return {row["id"]: row for row in json.loads(capsys.readouterr().out)}


def test_a_schedule_goes_through_add_list_disable_enable_and_remove(url, capsys) -> None:
    added = [
        "schedules", "add", "acme-morning",
        "--target", "job:process_vendor_inbound_job",
        "--cron", "0 7 * * 1-5",
        "--timezone", "Europe/Paris",
        "--partition", "last",
        "--tag", "priority=HIGH",
        "--tag", "team=exchange",
        "--run-config", '{"ops": {}}',
        "--description", "ACME before opening",
    ]  # fmt: skip
    assert main(added) == 0
    out = capsys.readouterr().out
    assert "added acme-morning: 0 7 * * 1-5 (Europe/Paris) -> job:process_vendor_inbound_job; next tick" in out

    row = listed(capsys)["acme-morning"]
    assert (row["cron"], row["timezone"], row["partition_rule"], row["enabled"]) == (
        "0 7 * * 1-5",
        "Europe/Paris",
        "last",
        True,
    )
    assert json.loads(row["tags"]) == {"priority": "HIGH", "team": "exchange"}
    assert row["problem"] is None

    assert main(["schedules", "disable", "acme-morning"]) == 0
    assert capsys.readouterr().out == "disabled acme-morning\n"
    assert listed(capsys)["acme-morning"]["enabled"] is False
    assert main(["schedules", "enable", "acme-morning"]) == 0
    assert capsys.readouterr().out == "enabled acme-morning\n"
    assert listed(capsys)["acme-morning"]["enabled"] is True

    assert main(["schedules", "list"]) == 0
    table = capsys.readouterr().out
    assert "acme-morning\t0 7 * * 1-5\tEurope/Paris\tjob:process_vendor_inbound_job\tlast\tnext " in table
    assert "1 schedule(s)" in table

    assert main(["schedules", "remove", "acme-morning"]) == 0
    assert capsys.readouterr().out == "removed acme-morning\n"
    assert listed(capsys) == {}
    with SqlUserScheduleStore(url) as store:
        assert store.rows() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 25 * * *"], "cron: '0 25 * * *' is not a valid cron"),
        (["--cron", "0 7 * *"], "has 4 fields; expected 5"),
        (["--timezone", "Europe/Atlantis"], "not an IANA timezone"),
        (["--target", "process_vendor_inbound_job"], "use job:<asset job name> or assets:<asset selection>"),
        (["--tag", "no-equals-sign"], "expected KEY=VALUE"),
        (["--run-config", "{not json"], "--run-config is not JSON"),
    ],
)
def test_add_refuses_bad_input_with_a_clear_error_and_stores_nothing(url, capsys, args, message) -> None:
    base = {"--target": "job:process_vendor_inbound_job", "--cron": "0 7 * * *", "--timezone": "UTC"}
    argv = ["schedules", "add", "bad"]
    for flag, value in base.items():
        if flag not in args:
            argv += [flag, value]
    assert main(argv + args) == 2
    assert message in capsys.readouterr().err
    assert listed(capsys) == {}


def test_an_id_is_added_once_and_unknown_ids_are_errors(url, capsys) -> None:
    argv = ["schedules", "add", "x", "--target", "job:j", "--cron", "@daily", "--timezone", "UTC"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    for action in ("enable", "disable", "remove"):
        assert main(["schedules", action, "nope"]) == 2
        assert "no schedule 'nope'" in capsys.readouterr().err


def test_the_installed_command_runs_as_operators_call_it(url, capsys) -> None:
    """The console script, in its own process, reads the table the other commands wrote."""
    argv = ["schedules", "add", "nightly", "--target", "assets:group:vendor_acme_retail", "--cron", "0 22 * * *"]
    assert main([*argv, "--timezone", "Asia/Tokyo", "--partition", "tick_day", "--disabled"]) == 0
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "batch-assets"), "schedules", "list"],
        cwd=REPO_ROOT,
        env={**os.environ, "BATCH_ASSETS_USER_SCHEDULES_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert "nightly\t0 22 * * *\tAsia/Tokyo\tassets:group:vendor_acme_retail\ttick_day\tdisabled" in listing.stdout
