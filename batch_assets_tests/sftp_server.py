"""An OpenSSH server on loopback for tests: Debian's sshd with its own config, keys and port.

Import the fixture in a test module: ``from batch_assets_tests.sftp_server import sftp_server  # noqa: F401``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SftpServer:
    host: str
    port: int
    username: str
    client_key: Path  # private key the tests log in with
    host_key_line: str  # "ssh-ed25519 AAAA...": what a vendor spec pins
    root: Path  # the user's files live under here (absolute paths on the server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    """sshd on 127.0.0.1 and a free port, key auth only, SFTP only. A missing sshd is a failure."""
    assert Path(SSHD).exists(), f"{SSHD} is missing: scripts/test.sh installs openssh-server"
    base = tmp_path_factory.mktemp("sshd")
    # sshd refuses keys in group/world-writable folders: keep ours private.
    os.chmod(base, 0o700)
    host_key, client_key = base / "host_ed25519", base / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    authorized = base / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    os.chmod(authorized, 0o600)
    root = base / "files"
    root.mkdir()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {base / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "ForceCommand internal-sftp",
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder sshd insists on
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert time.monotonic() < deadline, "sshd did not listen within 15 s"
            time.sleep(0.1)
    kind, blob = Path(f"{host_key}.pub").read_text().split()[:2]
    try:
        yield SftpServer("127.0.0.1", port, user, client_key, f"{kind} {blob}", root)
    finally:
        process.terminate()
        process.wait(timeout=10)
