"""A file store on a local (or mounted) folder."""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from batch_assets.lib.storage.base import FileStore, ObjectInfo
from batch_assets.lib.storage.keys import UnsafeKeyError, safe_key, safe_prefix

# publish()'s temp names; one older than ORPHAN_AGE_SECONDS was left by a killed writer.
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp(\.[^/]*)?$")
ORPHAN_AGE_SECONDS = 3600


class LocalFolderStore(FileStore):
    """Files under ``root``.

    Names starting with '.' are never listed: publish writes its temp files under such names, next
    to the target, and renames them into place. Keys with such names are refused for that reason,
    and so are keys that a symlink would lead outside ``root``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectInfo]:
        safe_prefix(start_after)
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(self._folder_of(prefix)):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            for name in filenames:
                info = self._visible(Path(dirpath, name), prefix)
                if info is not None and info.key > start_after:
                    found.append(info)
        # Sorted as a whole, not folder by folder: 'a-b.csv' sorts before 'a/b.csv', as on S3.
        yield from sorted(found, key=lambda info: info.key)

    def list_children(self, prefix: str = "") -> tuple[list[str], list[ObjectInfo]]:
        folder = self._folder_of(prefix)
        folders: list[str] = []
        files: list[ObjectInfo] = []
        if not folder.is_dir():
            return folders, files
        with os.scandir(folder) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_dir():
                    key = path.relative_to(self.root).as_posix()
                    inside = path.resolve().is_relative_to(self.root)
                    if inside and key.startswith(prefix) and not entry.name.startswith("."):
                        folders.append(key + "/")
                elif (info := self._visible(path, prefix)) is not None:
                    files.append(info)
        return sorted(folders), sorted(files, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo | None:
        return _info(key, self._path(key))

    def download(self, key: str, dest: Path) -> ObjectInfo:
        path = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Stat the open file, not the path: a publish may rename a new version in meanwhile.
        with path.open("rb") as source, dest.open("wb") as target:
            info = _from_stat(key, os.fstat(source.fileno()))
            shutil.copyfileobj(source, target, 1 << 20)
        return info

    @contextmanager
    def publish(self, key: str) -> Iterator[Path]:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temp name keeps the extension, because some writers pick their format from it.
        temp = target.with_name(f".{target.name}.{uuid4().hex}.tmp{target.suffix}")
        try:
            yield temp
            if not temp.is_file():
                raise FileNotFoundError(f"publish({key!r}): nothing was written to {temp}")
            _ensure_later_mtime(temp, target)
            _fsync(temp)
            os.replace(temp, target)
            _fsync(target.parent)
        finally:
            temp.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise UnsafeKeyError("refusing to delete the whole store: give a prefix")
        infos = list(self.list(prefix))
        for info in infos:
            (self.root / info.key).unlink(missing_ok=True)
        self._remove_orphan_temps(prefix)
        return len(infos)

    def _remove_orphan_temps(self, prefix: str) -> None:
        """Temp files that a killed publish left under ``prefix``: never listed, but they hold disk."""
        cutoff = time.time() - ORPHAN_AGE_SECONDS
        for dirpath, dirnames, filenames in os.walk(self._folder_of(prefix)):
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            for name in filenames:
                path = Path(dirpath, name)
                if TEMP_NAME.match(name) and path.relative_to(self.root).as_posix().startswith(prefix):
                    with suppress(FileNotFoundError):  # a writer may rename its temp file meanwhile
                        if path.lstat().st_mtime < cutoff:
                            path.unlink()

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def uri(self, key: str) -> str:
        return (self.root / safe_prefix(key)).as_uri()

    def _folder_of(self, prefix: str) -> Path:
        """The folder holding everything under ``prefix``; a partial last segment ('inbound/ac')
        is matched by the caller as a string, like on S3."""
        _refuse_hidden(safe_prefix(prefix))
        return self._inside(self.root / prefix.rpartition("/")[0], prefix)

    def _visible(self, path: Path, prefix: str) -> ObjectInfo | None:
        """The info of a listed file, or None for hidden files, folders, keys outside ``prefix``
        and symlinks leading out of the root."""
        key = path.relative_to(self.root).as_posix()
        if path.name.startswith(".") or not key.startswith(prefix):
            return None
        if not path.resolve().is_relative_to(self.root):
            return None
        return _info(key, path)

    def _path(self, key: str) -> Path:
        _refuse_hidden(safe_key(key))
        return self._inside(self.root / key, key)

    def _inside(self, path: Path, key: str) -> Path:
        if not path.resolve().is_relative_to(self.root):
            raise UnsafeKeyError(f"key {key!r} leads outside {self.root} through a symlink")
        return path


def _refuse_hidden(key: str) -> None:
    if any(segment.startswith(".") for segment in key.split("/")):
        raise UnsafeKeyError(f"key {key!r} has a hidden name; a local store keeps those for temp files")


def _info(key: str, path: Path) -> ObjectInfo | None:
    try:
        result = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _from_stat(key, result) if stat.S_ISREG(result.st_mode) else None


def _from_stat(key: str, result: os.stat_result) -> ObjectInfo:
    # Modified here, not by the sender: `sftp put -p`, `rsync -t` and `cp -p` carry over an mtime
    # hours old, which the arrival sensor would take for a file it has long seen. The inode's
    # change time is set by this machine when the file is written or renamed into place.
    changed = max(result.st_mtime_ns, result.st_ctime_ns)
    return ObjectInfo(
        key=key,
        size=result.st_size,
        version=f"{result.st_size}-{result.st_mtime_ns}",
        modified=datetime.fromtimestamp(changed / 1e9, tz=UTC),
    )


def _ensure_later_mtime(temp: Path, target: Path) -> None:
    """Date the new file after the one it replaces.

    The version is size and mtime, and a filesystem clock may tick only every few milliseconds:
    without this, a quick rewrite of the same size would keep the old version.
    """
    try:
        previous = target.stat().st_mtime_ns
    except FileNotFoundError:
        return
    if temp.stat().st_mtime_ns <= previous:
        os.utime(temp, ns=(previous + 1_000_000, previous + 1_000_000))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
