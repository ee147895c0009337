from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # Global policy: steps of a vendor day run one after another, and a process per step
        # would double the run's overhead on a 2-core machine.
        dg.Definitions(executor=dg.in_process_executor),
    )
