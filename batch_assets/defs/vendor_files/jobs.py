"""Asset jobs over every vendor, selected by the stage tag the asset builder sets."""

from typing import Any

import dagster as dg

from batch_assets.defs.vendor_files.assets import DELIVERY, REPORT, STAGE_TAG


def _stage(name: str) -> dg.AssetSelection:
    return dg.AssetSelection.tag(STAGE_TAG, name)


def build_vendor_jobs() -> dict[str, Any]:
    return {
        # Sensor-triggered runs: one vendor's day, from inbound to outbound (narrowed per run).
        "process_vendor_files_job": dg.define_asset_job(
            "process_vendor_files_job",
            selection=_stage("staged") | _stage("rejects") | _stage("outbound") | _stage(REPORT) | _stage(DELIVERY),
            description="Stage and deliver vendors' files for a day.",
        ),
        # Morning sweep: every vendor's inbound of the day, whatever the sensor may have missed.
        "process_vendor_inbound_job": dg.define_asset_job(
            "process_vendor_inbound_job",
            selection=_stage("staged") | _stage("rejects"),
            description="Stage every vendor's inbound files of the day.",
        ),
        # Nightly window: every vendor's outbound of the day, its report and its SFTP delivery.
        "deliver_vendor_outbound_job": dg.define_asset_job(
            "deliver_vendor_outbound_job",
            selection=_stage("outbound") | _stage(REPORT) | _stage(DELIVERY),
            description="Write every vendor's outbound files of the day.",
        ),
    }
