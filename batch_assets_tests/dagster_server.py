"""A real Dagster deployment for tests: dagster-webserver and dagster-daemon on the repo's workspace.

Import the fixture from a test module (``from batch_assets_tests.dagster_server import
dagster_deployment  # noqa: F401``). It is module-scoped: starting both processes costs ~10 s.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from batch_assets_tests.conftest import HASH_KEY, REPO_ROOT, VENDORS_DIR

BIN = Path(sys.executable).parent


@dataclass
class DagsterDeployment:
    url: str  # the webserver, e.g. http://127.0.0.1:41234
    port: int
    home: Path  # DAGSTER_HOME (SQLite instance)
    data_dir: Path  # the local file store root (BATCH_ASSETS_DATA_DIR)
    env: dict[str, str]  # the environment both processes run with
    logs: dict[str, Path] = field(default_factory=dict)

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {name}\n{path.read_text(errors='replace')[-chars:]}" for name, path in self.logs.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, processes: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in processes:
            assert p.poll() is None, f"{p.args[0]} exited with {p.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the webserver at {url} did not answer within {timeout}s")


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def wait_for_code_location(deployment: DagsterDeployment, timeout: float = 180) -> None:
    """The webserver answers before it has loaded the code location; until then it knows no job
    and no asset, so a test asking too early reads "unknown asset" for one that exists."""
    query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    deadline = time.monotonic() + timeout
    while True:
        entries = graphql(deployment.url, query)["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries if "message" in e["locationOrLoadError"]]
            assert not errors, f"the code location failed to load: {errors}\n{deployment.log_tail()}"
            return
        assert time.monotonic() < deadline, f"not loaded within {timeout}s: {entries}\n{deployment.log_tail()}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def dagster_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDeployment]:
    """Webserver + daemon on the embedded defaults (SQLite, local files), sensor ticking every second,
    yielded once the code location has loaded.

    The SQLite instance is created before both processes start: started together on an empty
    DAGSTER_HOME, they and their code servers race to create the schema; a lost race stamps it
    twice ("Version table 'alembic_version' has more than one head present", dagster-io/dagster#27390)
    and the code location never loads.
    """
    root = tmp_path_factory.mktemp("deployment")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    data.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass
    port = free_port()
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "DAGSTER_HOME": str(home),
        "BATCH_ASSETS_DATA_DIR": str(data),
        "BATCH_ASSETS_VENDORS_DIR": str(VENDORS_DIR),
        "BATCH_ASSETS_HASH_KEY": HASH_KEY,
        "BATCH_ASSETS_SENSOR_INTERVAL_SECONDS": "1",
        "BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS": "0",
    }
    deployment = DagsterDeployment(url=f"http://127.0.0.1:{port}", port=port, home=home, data_dir=data, env=env)
    commands = {
        "webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
    }
    processes, files = [], []
    try:
        for name, command in commands.items():
            deployment.logs[name] = root / f"{name}.log"
            log = open(deployment.logs[name], "wb")  # noqa: SIM115  (closed below, after the process)
            files.append(log)
            processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        wait_until_up(deployment.url, processes)
        wait_for_code_location(deployment)
        yield deployment
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in files:
            f.close()
