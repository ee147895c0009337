"""A vendor day's staging and delivery in a process of its own, for the crash tests to kill.

``python -m batch_assets_tests.reliability.crash_child '<json>'`` with ``store`` (``{"kind":
"local", "root": ...}`` or ``{"kind": "s3", "endpoint": ..., "bucket": ..., "prefix": ...}``),
``vendors``, ``day``, ``chunk_size`` and ``vendors_dir``. It prints ``ready`` once imported, one
``event <phase> <message>`` line per engine log line (one per chunk: progress is reported on every
chunk) and ``done`` at the end, flushing each, so the test can kill it at a chosen point.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from batch_assets.lib.engine import resolve_keys
from batch_assets.lib.engine.vendor_day import EngineOptions, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.specs import load_vendor_specs
from batch_assets.lib.storage import RETRY_CONFIG, FileStore, LocalFolderStore, S3Store


def open_store(config: dict) -> FileStore:
    if config["kind"] == "local":
        return LocalFolderStore(Path(config["root"]))
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=config["endpoint"],
        config=RETRY_CONFIG.merge(Config(s3={"addressing_style": "path"})),
    )
    return S3Store(client, config["bucket"], config["prefix"])


def main(config: dict) -> None:
    specs = {s.vendor_id: s for s in load_vendor_specs(Path(config["vendors_dir"]))}
    store = open_store(config["store"])
    options = EngineOptions(chunk_size=config["chunk_size"], threads=1, progress_every=0.0)

    def emitter(phase: str):
        return lambda message: print(f"event {phase} {message}", flush=True)

    print("ready", flush=True)
    for vendor_id in config["vendors"]:
        spec = specs[vendor_id]
        keys = resolve_keys(spec)
        stage_vendor_day(store, spec, config["day"], keys=keys, options=options, log=emitter("stage"))
        deliver_vendor_day(store, spec, config["day"], batch_size=config["chunk_size"], log=emitter("deliver"))
    print("done", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
