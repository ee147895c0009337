"""SFTP to and from a vendor's server (paramiko): key auth, pinned host key, atomic uploads."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import paramiko

from batch_assets.lib.specs.model import SftpSpec

KEY_TYPES = {
    "ssh-ed25519": paramiko.Ed25519Key,
    "ssh-rsa": paramiko.RSAKey,
    "ecdsa-sha2-nistp256": paramiko.ECDSAKey,
}


class SftpConfigError(RuntimeError):
    """The SFTP settings of a vendor cannot be used (missing key, unreadable key file)."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    modified: dt.datetime  # UTC, from the server's mtime


class SftpSession:
    def __init__(self, sftp: paramiko.SFTPClient):
        self.sftp = sftp

    def list_files(self, directory: str) -> list[RemoteFile]:
        """Regular files in ``directory``, sorted by name; dot-files and folders are left out."""
        files = []
        for entry in self.sftp.listdir_attr(directory):
            if entry.filename.startswith(".") or not stat.S_ISREG(entry.st_mode or 0):
                continue
            modified = dt.datetime.fromtimestamp(entry.st_mtime or 0, dt.UTC)
            files.append(RemoteFile(entry.filename, entry.st_size or 0, modified))
        return sorted(files, key=lambda f: f.name)

    def download(self, directory: str, name: str, dest: Path) -> None:
        self.sftp.get(str(PurePosixPath(directory) / name), str(dest))

    def upload(self, local: Path, directory: str, name: str) -> None:
        """Upload under a hidden temporary name, then rename: the vendor never sees half a file."""
        final = str(PurePosixPath(directory) / name)
        temp = str(PurePosixPath(directory) / f".{name}.part")
        self.sftp.put(str(local), temp, confirm=True)
        self.sftp.posix_rename(temp, final)


@contextmanager
def connect(spec: SftpSpec, timeout: float = 20.0) -> Iterator[SftpSession]:
    """An SFTP session with the vendor's server; an unknown or changed host key is refused."""
    key_path = os.environ.get(spec.private_key_env, "")
    if not key_path:
        raise SftpConfigError(f"${spec.private_key_env} (path of the SFTP private key) is not set")
    kind, blob = spec.host_key.split(" ", 1)
    client = paramiko.SSHClient()
    hostname = spec.host if spec.port == 22 else f"[{spec.host}]:{spec.port}"
    client.get_host_keys().add(hostname, kind, KEY_TYPES[kind](data=base64.b64decode(blob)))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        pkey = paramiko.PKey.from_path(key_path)
    except (OSError, paramiko.SSHException) as exc:
        raise SftpConfigError(f"cannot read the SFTP private key at ${spec.private_key_env}: {exc}") from exc
    client.connect(
        spec.host,
        port=spec.port,
        username=spec.username,
        pkey=pkey,
        timeout=timeout,
        allow_agent=False,
        look_for_keys=False,
    )
    try:
        with client.open_sftp() as sftp:
            yield SftpSession(sftp)
    finally:
        client.close()
