"""A PostgreSQL cluster of the test's own, to crash and restart without touching the shared server.

``initdb`` + ``pg_ctl`` from the Debian packages, on a free loopback port, with its data and socket
in a temp folder. PostgreSQL refuses to run as root: as root the commands run as the ``postgres``
OS user (``runuser``), which owns the folder; as anyone else they run as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

BIN = Path(os.environ.get("BATCH_ASSETS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    folder: Path
    port: int
    as_user: list[str]  # command prefix that runs as the cluster's owner

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(BIN / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self.pg_ctl("-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def crash(self) -> None:
        """Stop at once, as a killed server: no checkpoint, every connection dropped."""
        self.pg_ctl("-m", "immediate", "-w", "stop")

    def connect(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextmanager
def throwaway_postgres() -> Iterator[Cluster]:
    if not (BIN / "initdb").exists():
        raise FileNotFoundError(f"{BIN / 'initdb'} is missing: install postgresql-15 (or set BATCH_ASSETS_TEST_PG_BIN)")
    # Not under pytest's tmp_path: its parent is private to the test user, and the postgres OS user
    # must reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="batch-assets-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(folder, _free_port(), as_user)
    try:
        subprocess.run(
            [*as_user, str(BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                cluster.connect().close()
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            cluster.crash()
        shutil.rmtree(folder, ignore_errors=True)
