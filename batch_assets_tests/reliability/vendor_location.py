"""The vendor slice alone as a code location, for the run-worker crash test's ``dagster asset materialize``.

The whole repo's location takes ~15 s to load on the shared 2-core machine, the slice ~8 s; the slice's
assets, resources and the root's in-process executor are the same as deployed.
"""

import dagster as dg

from batch_assets.lib.settings import Settings
from batch_assets_tests.defs.vendor_files.helpers import slice_defs


@dg.definitions
def defs() -> dg.Definitions:
    # Same executor policy as batch_assets/definitions.py: the CLI process is the run worker.
    return dg.Definitions.merge(slice_defs(Settings()), dg.Definitions(executor=dg.in_process_executor))
