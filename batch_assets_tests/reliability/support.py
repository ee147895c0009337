"""What the reliability tests share: the long-mode switch, figures, timeouts and reading outputs back."""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batch_assets.lib.engine import layout
from batch_assets.lib.formats import PARSE_ERROR, read_batches
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore

# BATCH_ASSETS_LONG_TESTS=1: more faults, more examples, bigger files (minutes instead of seconds).
LONG = os.environ.get("BATCH_ASSETS_LONG_TESTS") == "1"
# Where figures are appended as JSON lines, for docs/reliability.md (optional).
FIGURES_FILE = os.environ.get("BATCH_ASSETS_RELIABILITY_FIGURES")
AREAS = (layout.INBOUND, layout.STAGED, layout.REJECTS, layout.OUTBOUND, layout.QUARANTINE)


def scaled(ci: int, long: int) -> int:
    """A budget: ``ci`` in the CI run, ``long`` with BATCH_ASSETS_LONG_TESTS=1."""
    return long if LONG else ci


def record_figures(record_property: Any, test: str, **figures: int | float | str) -> None:
    """Keep a test's figures in its report (junit XML, ``-rA``) and, if asked, in FIGURES_FILE."""
    for name, value in figures.items():
        record_property(name, value)
    if FIGURES_FILE:
        with open(FIGURES_FILE, "a") as out:
            out.write(json.dumps({"test": test, "long": LONG, **figures}) + "\n")


class Hang(AssertionError):
    """A step did not finish within its time budget."""


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Turn a hang in the main thread into a test failure (SIGALRM; pytest runs tests in the main thread)."""

    def expired(_signum: int, _frame: object) -> None:
        raise Hang(f"{what} did not finish within {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(store: FileStore, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes."""
    return {info.key: store.read_bytes(info.key) for info in store.list(prefix)}


def parquet_rows(data: bytes) -> list[dict]:
    """A staged Parquet file's records; raises if the file is not a complete Parquet file."""
    return pq.read_table(pa.BufferReader(data)).to_pylist()


def outbound_rows(spec: VendorSpec, data: bytes) -> list[dict]:
    """An outbound file parsed completely in its own format; raises if it is cut short or unreadable."""
    fields = spec.output_fields
    rows = [
        row for batch in read_batches(spec.output.format, io.BytesIO(data), fields, 10_000) for row in batch.to_pylist()
    ]
    broken = [row for row in rows if row[PARSE_ERROR] is not None]
    if broken:
        raise ValueError(f"outbound file has unreadable records, e.g. {broken[0]}")
    return [{name: row[name] for name in fields} for row in rows]


def rejects_rows(data: bytes) -> list[dict]:
    """A rejects file's records; raises on a line that is not a whole JSON object.

    Lines end at '\\n' only: a JSON string may hold U+0085 or U+2028, which str.splitlines() splits on.
    """
    return [json.loads(line) for line in data.split(b"\n") if line]


def vendor_of(key: str) -> str | None:
    """The vendor folder a key sits in, when it follows ``<area>/<vendor>/...``."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] in AREAS else None


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` (hidden ones included), as relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())
