"""``batch-assets seed-demo``: drop demo vendor files into the inbound area."""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout
from batch_assets.lib.settings import load_settings
from batch_assets.lib.specs import load_vendor_specs


def seed_demo(args: argparse.Namespace) -> int:
    """Drop demo files for every vendor into the inbound area, as vendors would."""
    from batch_assets.defs.resources import build_resources

    settings = load_settings()
    day = args.day or dt.datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
    store = build_resources(settings)["file_store"].store()
    with tempfile.TemporaryDirectory() as tmp:
        for spec in load_vendor_specs(settings.vendors_dir):
            for n in range(1, args.files + 1):
                name = file_name_for(spec, day, n)
                local = Path(tmp) / name
                seed = sum(spec.vendor_id.encode()) * 1_000 + n  # stable across runs, unlike hash()
                made = write_vendor_file(spec, local, args.records, invalid_share=args.invalid_share, seed=seed)
                key = f"{layout.day_prefix(layout.INBOUND, spec.vendor_id, day)}{name}"
                with store.publish(key) as target:
                    local.replace(target)
                print(f"{store.uri(key)}  {made.records} records, {made.invalid} invalid")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    seed = commands.add_parser("seed-demo", help=seed_demo.__doc__)
    seed.add_argument("--day", help="YYYY-MM-DD (default: today in BATCH_ASSETS_TIMEZONE)")
    seed.add_argument("--files", type=int, default=2, help="files per vendor")
    seed.add_argument("--records", type=int, default=500, help="records per file")
    seed.add_argument("--invalid-share", type=float, default=0.02)
    seed.set_defaults(handler=seed_demo)
