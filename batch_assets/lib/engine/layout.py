"""Where a vendor's files live in the file store, and how an inbound key is read back.

inbound/{vendor_id}/{YYYY-MM-DD}/{file}        what the vendor dropped
staged/{vendor_id}/{YYYY-MM-DD}/{file}.parquet validated, mapped and masked records
rejects/{vendor_id}/{YYYY-MM-DD}/{file}.jsonl  rejected records with rule and reason
outbound/{vendor_id}/{YYYY-MM-DD}/{name}       the file that goes back to the vendor
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass

from batch_assets.lib.specs.model import CsvFormat, FixedWidthFormat, JsonFormat, JsonLinesFormat, VendorSpec
from batch_assets.lib.storage.keys import UnsafeKeyError, safe_key

INBOUND = "inbound"
STAGED = "staged"
REJECTS = "rejects"
OUTBOUND = "outbound"
QUARANTINE = "quarantine"

# Names an uploader uses while a file is still being written.
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".crdownload", ".uploading")

EXTENSIONS = {CsvFormat: "csv", JsonFormat: "json", JsonLinesFormat: "jsonl", FixedWidthFormat: "txt"}


def day_prefix(area: str, vendor_id: str, day: str) -> str:
    return f"{area}/{vendor_id}/{day}/"


REPORT_SUFFIX = "_report.pdf"


def report_key(vendor_id: str, day: str) -> str:
    """The day's PDF summary, beside the outbound files."""
    return f"{day_prefix(OUTBOUND, vendor_id, day)}{vendor_id}_{day}{REPORT_SUFFIX}"


def is_report(key: str) -> bool:
    return key.endswith(REPORT_SUFFIX)


def staged_key(vendor_id: str, day: str, file_name: str) -> str:
    return f"{day_prefix(STAGED, vendor_id, day)}{file_name}.parquet"


def rejects_key(vendor_id: str, day: str, file_name: str) -> str:
    return f"{day_prefix(REJECTS, vendor_id, day)}{file_name}.jsonl"


def outbound_extension(spec: VendorSpec) -> str:
    return EXTENSIONS.get(type(spec.output.format), "xml")


def outbound_key(spec: VendorSpec, day: str, inbound_file: str | None) -> str:
    """One outbound file per inbound file (named after it), or one per day."""
    ext = outbound_extension(spec)
    if inbound_file is None:
        name = f"{spec.vendor_id}_{day}.{ext}"
    else:
        stem = inbound_file.rsplit(".", 1)[0] if "." in inbound_file else inbound_file
        name = f"{stem}.{ext}"
    return f"{day_prefix(OUTBOUND, spec.vendor_id, day)}{name}"


@dataclass(frozen=True)
class InboundKey:
    vendor_id: str
    day: str
    file_name: str


class NotAnInboundFile(ValueError):
    """A key under inbound/ that does not name a vendor's file for a day."""


def parse_inbound_key(key: str) -> InboundKey:
    """Read ``inbound/{vendor_id}/{YYYY-MM-DD}/{file}``; anything else raises NotAnInboundFile.

    A key the stores refuse (``..``, control or invisible characters, not UTF-8) is not one either:
    a listing can show such a name, but no output may be derived from it.
    """
    try:
        safe_key(key)
    except UnsafeKeyError as exc:
        raise NotAnInboundFile(str(exc)) from None
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != INBOUND:
        raise NotAnInboundFile(f"{key}: expected inbound/<vendor_id>/<YYYY-MM-DD>/<file>")
    _, vendor_id, day, file_name = parts
    try:
        if dt.date.fromisoformat(day).isoformat() != day:
            raise ValueError
    except ValueError:
        raise NotAnInboundFile(f"{key}: '{day}' is not a YYYY-MM-DD date folder") from None
    return InboundKey(vendor_id=vendor_id, day=day, file_name=file_name)


def printable(key: str) -> str:
    """``key`` as it can be shown in a log line or a skip message: escaped when it is not a safe key."""
    try:
        return safe_key(key)
    except UnsafeKeyError:
        return ascii(key)


def is_in_progress(file_name: str) -> bool:
    return file_name.startswith(".") or file_name.lower().endswith(IN_PROGRESS_SUFFIXES)


def matches_pattern(spec: VendorSpec, file_name: str) -> bool:
    return fnmatch.fnmatchcase(file_name, spec.file_pattern)
