"""The vendor exchange slice: every vendor spec in the vendors folder becomes its asset family."""

import dagster as dg

from batch_assets.defs.vendor_files.assets import build_vendor_assets
from batch_assets.defs.vendor_files.jobs import build_vendor_jobs
from batch_assets.defs.vendor_files.partitions import vendor_day_partitions
from batch_assets.defs.vendor_files.schedules import build_vendor_schedules
from batch_assets.defs.vendor_files.sensors import build_arrival_sensor, build_sftp_poll_sensor
from batch_assets.lib.engine import DEMO_HASH_KEY, MaskingKeyError, missing_keys
from batch_assets.lib.settings import Settings, load_settings
from batch_assets.lib.specs import VendorSpec, load_vendor_specs


def check_masking_keys(specs: list[VendorSpec], settings: Settings) -> bytes | None:
    """The key that stands in for a missing masking key: the public demo key in the demo profile.

    Outside it, a missing key stops the code location from loading, so a deployment without its
    secret fails at startup, naming what to set, rather than at its first run.
    """
    if settings.profile == "demo":
        return DEMO_HASH_KEY
    missing = [line for spec in specs for line in missing_keys(spec)]
    if missing:
        raise MaskingKeyError(
            "masking keys are missing: "
            + "; ".join(missing)
            + ". Set each variable to a secret (the same every run, or pseudonyms change), "
            "or set BATCH_ASSETS_PROFILE=demo to hash with the public demo key."
        )
    return None


def build_vendor_exchange(settings: Settings) -> dg.Definitions:
    specs = load_vendor_specs(settings.vendors_dir)
    default_key = check_masking_keys(specs, settings)
    partitions_def = vendor_day_partitions(settings)
    jobs = build_vendor_jobs()
    return dg.Definitions(
        assets=[a for spec in specs for a in build_vendor_assets(spec, partitions_def, default_key=default_key)],
        jobs=list(jobs.values()),
        schedules=build_vendor_schedules(jobs),
        sensors=[
            build_arrival_sensor(specs, partitions_def, jobs["process_vendor_files_job"], settings),
            *filter(None, [build_sftp_poll_sensor(specs, settings)]),
        ],
    )


@dg.definitions
def vendor_exchange() -> dg.Definitions:
    return build_vendor_exchange(load_settings())
