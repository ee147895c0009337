"""The whole code location loads, and its names are pinned so a rename shows up as a diff."""

import subprocess
import sys

import dagster as dg
import pytest

from batch_assets.lib.engine import MaskingKeyError
from batch_assets_tests.conftest import REPO_ROOT, VENDORS_DIR

VENDORS = ["acme_retail", "globex_logistics", "hooli_ads", "initech_payroll", "umbrella_health"]


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dg.Definitions:
    monkeypatch.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    from batch_assets.definitions import defs as load

    return load()


def test_every_vendor_asset_key_is_pinned(defs: dg.Definitions) -> None:
    """Asset keys are what operators bookmark and what other slices depend on."""
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    keys = {k for k in keys if k.startswith("vendor/")}
    stages = ("inbound", "staged", "rejects", "outbound", "daily_report")
    expected = {f"vendor/{v}/{stage}" for v in VENDORS for stage in stages}
    assert keys == expected


def test_every_vendor_check_is_pinned(defs: dg.Definitions) -> None:
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in defs.resolve_asset_graph().asset_check_keys}
    checks = {c for c in checks if c.startswith("vendor/")}
    expected = {
        f"vendor/{v}/staged:{name}"
        for v in VENDORS
        for name in (
            "records_conserved",
            "reject_rate_within_threshold",
            "inbound_files_readable",
            "inbound_files_arrived",
        )
    }
    assert checks == expected


def test_vendor_jobs_schedules_and_sensors_are_pinned(defs: dg.Definitions) -> None:
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs() if "vendor" in j.name}
    assert jobs == {"process_vendor_files_job", "process_vendor_inbound_job", "deliver_vendor_outbound_job"}
    schedules = {s.name for s in repo.schedule_defs if "vendor" in s.name}
    assert schedules == {"process_vendor_inbound_schedule", "deliver_vendor_outbound_schedule"}
    assert {s.name for s in repo.sensor_defs if "vendor" in s.name} == {"vendor_inbound_arrival_sensor"}


def test_every_asset_says_what_it_is_and_who_owns_it(defs: dg.Definitions) -> None:
    """The description is the UI's one-line answer to "what is this?"; the group and owners tell
    operators where it belongs and whom to call."""
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.description, f"{name} has no description"
        assert spec.group_name and spec.group_name != "default", f"{name} has no group"
        assert spec.owners, f"{name} has no owners"


def test_every_schedule_names_its_timezone(defs: dg.Definitions) -> None:
    for schedule in defs.get_repository_def().schedule_defs:
        assert schedule.execution_timezone, f"{schedule.name} has no execution_timezone"


def test_the_conservation_check_blocks_outbound(defs: dg.Definitions) -> None:
    """Bad counts must stop the outbound file: the conservation check is blocking."""
    graph = defs.resolve_asset_graph()
    for v in VENDORS:
        spec = graph.get_check_spec(dg.AssetCheckKey(dg.AssetKey(["vendor", v, "staged"]), "records_conserved"))
        assert spec.blocking


def test_dagster_validates_the_workspace(tmp_path) -> None:
    """The same load the webserver and daemon do, through Dagster's own command."""
    env = {
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "DAGSTER_HOME": str(tmp_path),
        "BATCH_ASSETS_HASH_KEY": "x",
        "BATCH_ASSETS_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def load_without_masking_key(monkeypatch: pytest.MonkeyPatch, tmp_path, profile: str | None) -> dg.Definitions:
    monkeypatch.setenv("BATCH_ASSETS_VENDORS_DIR", str(VENDORS_DIR))
    monkeypatch.setenv("BATCH_ASSETS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BATCH_ASSETS_HASH_KEY")
    if profile is None:
        monkeypatch.delenv("BATCH_ASSETS_PROFILE", raising=False)
    else:
        monkeypatch.setenv("BATCH_ASSETS_PROFILE", profile)
    from batch_assets.definitions import defs as load

    return load()


@pytest.mark.parametrize("profile", [None, "production"])
def test_the_code_location_does_not_load_without_its_masking_key(monkeypatch, tmp_path, profile) -> None:
    """A deployment without its secret must fail at startup and say what to set, not hash with a silent
    default or fail only at its first run."""
    with pytest.raises(Exception) as raised:
        load_without_masking_key(monkeypatch, tmp_path, profile)
    causes = [raised.value]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)
    error = next(c for c in causes if isinstance(c, MaskingKeyError))
    message = str(error)
    hashed = [("acme_retail", "customer_ref"), ("hooli_ads", "viewer_email"), ("umbrella_health", "birth_date")]
    for vendor, field in hashed:
        assert f"vendor '{vendor}' hashes field '{field}' with the key in $BATCH_ASSETS_HASH_KEY" in message
    assert "BATCH_ASSETS_PROFILE=demo" in message


def test_the_demo_profile_loads_without_a_masking_key(monkeypatch, tmp_path) -> None:
    """The demo runs on a fresh checkout: its profile stands in the public demo key for the missing secret."""
    defs = load_without_masking_key(monkeypatch, tmp_path, "demo")
    assert defs.resolve_job_def("process_vendor_files_job")
