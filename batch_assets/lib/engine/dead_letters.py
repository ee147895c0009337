"""The quarantine (dead-letter) area: files that cannot be processed, with their error.

    quarantine/{vendor_id}/{YYYY-MM-DD}/{file}             the file, moved out of inbound
    quarantine/{vendor_id}/{YYYY-MM-DD}/{file}.error.json  why, when, and which version

A re-drive moves the file back to inbound; the arrival sensor sees a new upload and runs it.
Moves copy first and delete second, so a crash in between leaves the file in both places,
never in neither.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from batch_assets.lib.engine import layout
from batch_assets.lib.storage import FileStore

ERROR_SUFFIX = ".error.json"


@dataclass(frozen=True)
class DeadLetter:
    key: str  # the quarantined file
    inbound_key: str  # where it came from, and where a re-drive puts it back
    error: str
    quarantined_at: str
    source_version: str


def quarantine_key(inbound_key: str) -> str:
    parsed = layout.parse_inbound_key(inbound_key)
    return f"{layout.day_prefix(layout.QUARANTINE, parsed.vendor_id, parsed.day)}{parsed.file_name}"


def _move(store: FileStore, source: str, target: str) -> None:
    with tempfile.TemporaryDirectory(prefix="move-") as tmp:
        local = Path(tmp) / "file"
        store.download(source, local)
        with store.publish(target) as path:
            local.replace(path)
    store.delete(source)


def quarantine(store: FileStore, inbound_key: str, error: str, source_version: str) -> str:
    """Move an inbound file to quarantine beside its error; returns the quarantine key."""
    target = quarantine_key(inbound_key)
    record = {
        "inbound_key": inbound_key,
        "error": error,
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source_version": source_version,
    }
    with store.publish(target + ERROR_SUFFIX) as path:
        path.write_text(json.dumps(record, indent=2))
    _move(store, inbound_key, target)
    return target


def list_dead_letters(store: FileStore, vendor_id: str | None = None) -> list[DeadLetter]:
    prefix = f"{layout.QUARANTINE}/{vendor_id}/" if vendor_id else f"{layout.QUARANTINE}/"
    letters = []
    for obj in store.list(prefix):
        if not obj.key.endswith(ERROR_SUFFIX):
            continue
        record = json.loads(store.read_bytes(obj.key))
        letters.append(
            DeadLetter(
                key=obj.key.removesuffix(ERROR_SUFFIX),
                inbound_key=record["inbound_key"],
                error=record["error"],
                quarantined_at=record["quarantined_at"],
                source_version=record["source_version"],
            )
        )
    return letters


def redrive(store: FileStore, letter: DeadLetter) -> str:
    """Send a quarantined file back through the pipeline; returns its inbound key."""
    _move(store, letter.key, letter.inbound_key)
    store.delete(letter.key + ERROR_SUFFIX)
    return letter.inbound_key
