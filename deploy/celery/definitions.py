"""The code location for a deployment with Celery workers: the project's definitions plus a job
whose steps go to the workers.

The default code location (batch_assets.definitions) keeps the in-process executor. Where Celery
workers run, serve this file instead (docs/deploy.md):

    dagster code-server start -f deploy/celery/definitions.py -a defs -p 4000

Steps are sent to the broker named in the run config (deploy/celery/celery.yaml); workers started
with the same file listen on it.
"""

import dagster as dg
from dagster_celery import celery_executor

from batch_assets.definitions import defs as project_defs
from batch_assets.defs.vendor_files.jobs import build_vendor_jobs

# The same selection as the sensor's job: each vendor's steps are a chain, different vendors'
# chains run on different workers at once.
process_vendor_files_celery_job = dg.define_asset_job(
    "process_vendor_files_celery_job",
    selection=build_vendor_jobs()["process_vendor_files_job"].selection,
    executor_def=celery_executor,
    description="Stage and deliver every vendor's files for a day, the steps spread over Celery workers.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(project_defs(), dg.Definitions(jobs=[process_vendor_files_celery_job]))
