"""A worker process that stages and delivers one vendor day per request, measuring time and memory.

Run as ``python -m batch_assets_tests.reliability.hostile_worker``: one JSON request per stdin
line, one JSON answer per stdout line. A request names a store folder, a vendor, a day and the
read limits; the answer says how the day ended and the peak memory the request added. The test
runs hostile files through it so that a hang, a crash or a memory blow-up costs this process,
never the test run: the test kills it on a timeout and starts another.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from batch_assets.lib.demo_data import file_name_for, write_vendor_file
from batch_assets.lib.engine import layout, resolve_keys
from batch_assets.lib.engine.vendor_day import EngineOptions, deliver_vendor_day, stage_vendor_day
from batch_assets.lib.formats import ReadLimits
from batch_assets.lib.specs import load_vendor_specs
from batch_assets.lib.storage import LocalFolderStore

WARM_UP_DAY = "2026-01-05"


def _status(field: str) -> int:
    """A /proc/self/status figure in MiB (VmRSS, VmHWM)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) // 1024


def _reset_peak() -> None:
    # Linux: writing 5 resets VmHWM to the current RSS, so the next peak is this request's own.
    Path("/proc/self/clear_refs").write_text("5")


def handle(request: dict, specs: dict) -> dict:
    spec = specs[request["vendor"]]
    store = LocalFolderStore(Path(request["store"]))
    options = EngineOptions(
        chunk_size=request.get("chunk_size", 1000), threads=1, limits=ReadLimits(**request["limits"])
    )
    _reset_peak()
    before = _status("VmRSS")
    started = time.monotonic()
    stage = stage_vendor_day(store, spec, request["day"], keys=resolve_keys(spec), options=options)
    delivery = deliver_vendor_day(store, spec, request["day"])
    return {
        "seconds": round(time.monotonic() - started, 3),
        "peak_growth_mb": _status("VmHWM") - before,
        "files": [
            {
                "name": f.file_name,
                "rows_in": f.rows_in,
                "rows_out": f.rows_out,
                "rows_rejected": f.rows_rejected,
                "rules": dict(f.rejects_by_rule),
            }
            for f in stage.files
        ],
        "failed": stage.failed,
        "quarantined": stage.quarantined,
        "skipped": stage.skipped,
        "outbound_rows": delivery.rows,
    }


def warm_up(specs: dict) -> None:
    """Stage one valid day per vendor first: DuckDB's and the allocators' one-time set-up (about 40 MB)
    would otherwise count against whichever case happens to come first."""
    with tempfile.TemporaryDirectory() as folder:
        for spec in specs.values():
            path = Path(folder) / layout.day_prefix(layout.INBOUND, spec.vendor_id, WARM_UP_DAY)
            path.mkdir(parents=True)
            write_vendor_file(spec, path / file_name_for(spec, WARM_UP_DAY, 1), 20, seed=1)
            limits = {"max_file_bytes": 1 << 20, "max_record_bytes": 64 << 10, "max_depth": 32}
            handle({"store": folder, "vendor": spec.vendor_id, "day": WARM_UP_DAY, "limits": limits}, specs)


def main() -> None:
    specs = {s.vendor_id: s for s in load_vendor_specs(Path(sys.argv[1]))}
    warm_up(specs)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handle(request, specs)
        except Exception:  # reported to the test, which fails the case: anything but a file error is a bug
            answer = {"crash": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
