"""Building blocks for vendor slice tests: the slice's definitions on given settings, inbound files."""

from __future__ import annotations

import dagster as dg

from batch_assets.defs.resources import build_resources
from batch_assets.defs.vendor_files.definitions import build_vendor_exchange
from batch_assets.lib.demo_data import GeneratedFile, file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec
from batch_assets.lib.storage import FileStore

DAY = "2026-11-20"


def slice_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(build_vendor_exchange(settings), dg.Definitions(resources=build_resources(settings)))


def drop_file(
    store: FileStore, spec: VendorSpec, day: str = DAY, n: int = 1, records: int = 200, invalid_share: float = 0.05
) -> tuple[str, GeneratedFile]:
    """Put a generated file into the vendor's inbound folder, as the vendor would."""
    key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, day)}{file_name_for(spec, day, n)}"
    with store.publish(key) as path:
        made = write_vendor_file(spec, path, records, invalid_share=invalid_share, seed=n)
    return key, made
