"""The container image and the compose file, checked without a Docker engine.

hadolint lints the Dockerfile; the rest reads the Dockerfile's instructions for what matters in
production (not root, no secrets baked in, a health check, pinned bases) and checks that what it
copies is in the build context and that the compose file runs the three processes from it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from batch_assets.lib.settings import Settings
from batch_assets_tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yaml"
HADOLINT = Path(sys.executable).parent / "hadolint"
SECRET_NAME = re.compile(r"PASS(WORD)?|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY|HASH_KEY", re.I)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
            current = ""
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def env_pairs(args: str) -> list[tuple[str, str]]:
    """Names and values of an ENV (``A=1 B=2`` or ``A 1``) or ARG (``A`` or ``A=1``) instruction."""
    words = shlex.split(args)
    if "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [tuple(w.split("=", 1)) if "=" in w else (w, "") for w in words]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rules: the last matching pattern wins; a pattern matching a folder covers its files."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        candidates = [pattern, pattern.replace("**/", "")] if "**/" in pattern else [pattern]
        if any(fnmatch.fnmatchcase(prefix, p) for prefix in prefixes for p in candidates):
            ignored = not negated
    return ignored


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint encodes Docker's best practices; a finding is fixed or the rule is waived in the file."""
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    """A process escaping the app owns nothing; a numeric id lets Kubernetes' runAsNonRoot verify it."""
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage has no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, users[-1]
    assert not group or (group.isdigit() and int(group) != 0), users[-1]


def test_no_env_or_arg_bakes_a_secret_into_the_image() -> None:
    """Image layers are readable by anyone who pulls the image: secrets come from the environment at run time."""
    for keyword, args in instructions():
        if keyword in ("ENV", "ARG"):
            for name, value in env_pairs(args):
                assert not SECRET_NAME.search(name), f"{keyword} {name} looks like a secret"
                assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN", value), f"{keyword} {name} holds a key"
        if keyword == "COPY":
            for source in shlex.split(args)[:-1]:
                assert not re.search(r"(^|/)\.env|\.pem$|id_rsa|credentials", source), f"COPY {source}"


def test_a_health_check_probes_the_code_server_the_image_starts() -> None:
    """An orchestrator restarts a code server that stops answering, if the image says how to ask."""
    stage = final_stage()
    checks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert checks and "NONE" not in checks[-1].upper(), "no HEALTHCHECK in the final stage"
    command = json.loads(next(args for keyword, args in reversed(stage) if keyword == "CMD"))
    port = command[command.index("-p") + 1]
    assert re.search(rf"grpc-health-check.*\"-p\", \"{port}\"", checks[-1]), (checks[-1], command)


def test_base_images_are_pinned_by_version() -> None:
    """A moving tag rebuilds a different image from the same commit."""
    steps = instructions()
    stages = {shlex.split(args)[-1] for keyword, args in steps if keyword == "FROM" and " AS " in args.upper()}
    bases = [shlex.split(args)[0] for keyword, args in steps if keyword == "FROM"]
    assert bases
    for image in bases:
        if image in stages:
            continue
        name, _, tag = image.partition("@")[0].partition(":")
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin a version (or digest)"


def test_every_file_the_image_copies_is_in_the_build_context() -> None:
    """A COPY of a missing or .dockerignored file only fails at build time, which CI here cannot run."""
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for keyword, args in instructions()
        if keyword == "COPY" and "--from=" not in args
        for source in shlex.split(args)[:-1]
        if not source.startswith("--")
    ]
    assert copied
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"
        assert not dockerignored(source.rstrip("/"), patterns), f"COPY {source}: excluded by .dockerignore"
    # COPY deploy takes what .dockerignore lets through: the files the docs and compose file use.
    for used in ("deploy/grpc-workspace.yaml", "deploy/postgres/dagster.yaml", "deploy/aws/dagster.yaml"):
        assert (REPO_ROOT / used).exists() and not dockerignored(used, patterns), used
    assert not dockerignored("deploy/celery/definitions.py", patterns)
    assert dockerignored(".venv", patterns) and dockerignored(".git/config", patterns)


def test_the_compose_file_runs_code_server_webserver_and_daemon_from_one_image_beside_postgres() -> None:
    """The compose example cannot run here (no Docker engine): it must at least say what the docs say."""
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    app = {name: services[name] for name in ("codeserver", "webserver", "daemon")}
    assert len({s["image"] for s in app.values()}) == 1
    assert "command" not in app["codeserver"], "the code server is the image's default command"
    assert app["webserver"]["command"][0] == "dagster-webserver"
    assert app["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert services["postgres"]["image"].split(":")[1][0].isdigit(), "pin the PostgreSQL image"

    # The workspace the webserver and daemon load points at the code server's service and port.
    workspace_file = app["webserver"]["command"][app["webserver"]["command"].index("-w") + 1]
    assert workspace_file == app["daemon"]["command"][app["daemon"]["command"].index("-w") + 1]
    grpc = yaml.safe_load((REPO_ROOT / workspace_file).read_text())["load_from"][0]["grpc_server"]
    env = app["codeserver"]["environment"]
    assert env[grpc["host"]["env"]] == "codeserver" and grpc["port"] == 4000
    assert grpc["location_name"] == "batch_assets"

    # Every instance setting the profile reads is set, and every BATCH_ASSETS_* name is a real setting.
    profile = REPO_ROOT / env["DAGSTER_HOME"].removeprefix("/app/") / "dagster.yaml"
    needed = set(re.findall(r"\{env: (\w+)\}", profile.read_text()))
    assert needed <= set(env), sorted(needed - set(env))
    settings = {f"BATCH_ASSETS_{name.upper()}" for name in Settings.model_fields} | {"BATCH_ASSETS_HASH_KEY"}
    assert {k for k in env if k.startswith("BATCH_ASSETS_")} <= settings
    # Secrets are required from the environment, never written into the file.
    for name in ("DAGSTER_PG_PASSWORD", "BATCH_ASSETS_HASH_KEY"):
        assert env[name] == f"${{{name}:?set {name}}}", env[name]
