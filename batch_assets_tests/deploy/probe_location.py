"""A tiny code location for instance-profile tests: runs that nap, wait for a release file, or
fail on their first attempt, requested by a sensor from a JSON file the test writes.

The sensor keeps no cursor: every tick re-requests every line of the file, as a sensor whose cursor
was lost would. That each run key still starts one run is the instance's run-key deduplication.
"""

import json
import os
import time
from pathlib import Path

import dagster as dg

REQUESTS_ENV = "PROBE_REQUESTS_FILE"  # one JSON request per line: run_key, job, tags, config
TICKS_ENV = "PROBE_TICKS_FILE"  # the sensor appends one line per evaluation


@dg.op(config_schema={"release_file": dg.Field(str, default_value=""), "seconds": dg.Field(float, default_value=0)})
def hold(context: dg.OpExecutionContext) -> None:
    """Sleep, or wait until the release file exists (at most 120 s)."""
    release = context.op_config["release_file"]
    deadline = time.monotonic() + 120
    while release and not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(context.op_config["seconds"])


@dg.op
def fail_first_attempt(context: dg.OpExecutionContext) -> None:
    if "dagster/retry_number" not in context.run.tags:
        raise dg.Failure("the first attempt fails on purpose", allow_retries=False)


@dg.job(executor_def=dg.in_process_executor)
def hold_job() -> None:
    hold()


@dg.job(executor_def=dg.in_process_executor)
def flaky_job() -> None:
    fail_first_attempt()


@dg.sensor(jobs=[hold_job, flaky_job], minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def probe_requests_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    with open(os.environ[TICKS_ENV], "a") as ticks:
        ticks.write(f"{time.time()}\n")
    path = Path(os.environ[REQUESTS_ENV])
    lines = path.read_text().splitlines() if path.exists() else []
    requests = [json.loads(line) for line in lines if line.strip()]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=r["run_key"], job_name=r["job"], tags=r.get("tags", {}), run_config=r.get("config", {})
            )
            for r in requests
        ]
    )


defs = dg.Definitions(jobs=[hold_job, flaky_job], sensors=[probe_requests_sensor])
