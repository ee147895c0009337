"""The file store interface: one set of operations over a local folder or an S3 bucket."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class StoreConfigError(RuntimeError):
    """The store cannot be used as configured (no such bucket, refused credentials, no permission).

    Retrying cannot help; the message says what to fix.
    """


@dataclass(frozen=True)
class ObjectInfo:
    """One stored file, as a listing sees it."""

    key: str  # '/'-separated, relative to the store root, e.g. 'inbound/acme/2026-11-22/orders_001.csv'
    size: int
    version: str  # identifies this version of the file: S3 ETag without quotes, local f"{size}-{mtime_ns}"
    modified: datetime  # timezone-aware UTC; when it last changed in this store (local: the later of mtime, ctime)


class FileStore(ABC):
    """Files addressed by '/'-separated keys relative to a root.

    Every key and prefix is checked by ``keys.safe_key`` / ``keys.safe_prefix`` and refused with
    ``UnsafeKeyError``. A prefix matches like an S3 prefix, as a plain string: ``'in'`` matches
    ``'inbound/a.csv'``; end it with '/' to mean a folder.
    """

    @abstractmethod
    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, recursively, sorted by key; only keys after ``start_after``."""

    @abstractmethod
    def list_children(self, prefix: str = "") -> tuple[list[str], list[ObjectInfo]]:
        """One level under ``prefix``, like an S3 listing with Delimiter='/'.

        Returns the sub-folders as keys ending in '/' (e.g. 'inbound/acme/') and the objects
        directly under ``prefix``, both sorted.
        """

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object at ``key``, or None when there is none."""

    @abstractmethod
    def download(self, key: str, dest: Path) -> ObjectInfo:
        """Copy the object to the local file ``dest``; return the info of the version copied.

        Raises FileNotFoundError when there is no object at ``key``.
        """

    @abstractmethod
    def publish(self, key: str) -> AbstractContextManager[Path]:
        """Yield a local temp path to write; on clean exit publish it atomically at ``key``.

        Readers see the old object or the new one, never a partial one. On an exception nothing
        becomes visible and the temp file is removed.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key``; a missing key is not an error."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` and return how many; an empty prefix is refused."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The whole content of a small object (specs, manifests). Raises FileNotFoundError."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where ``key`` (or a prefix) lives, for metadata shown to users: 'file:///…' or 's3://…'."""
