"""Everything Dagster loads: assets, checks, jobs, sensors, schedules and resources of lbx."""

import warnings

import dagster as dg

from lbx_orchestration.core import settings
from lbx_orchestration.features import assets as features_assets
from lbx_orchestration.ingest import assets as ingest_assets
from lbx_orchestration.ingest import checks as ingest_checks
from lbx_orchestration.ingest.inbox import letterboxd_inbox_sensor, onboard_member_job
from lbx_orchestration.metadata import assets as metadata_assets
from lbx_orchestration.metadata import catalog as catalog_assets
from lbx_orchestration.models import assets as model_assets
from lbx_orchestration.models import content as content_model_assets
from lbx_orchestration.models import evaluation as model_evaluation
from lbx_orchestration.resources import build_resources
from lbx_orchestration.runs import freeing_executor, stale_run_sensor
from lbx_orchestration.schedules import (
    full_refresh_job,
    nightly_refresh_job,
    nightly_refresh_schedule,
    tmdb_catalog_job,
    tmdb_catalog_schedule,
    weekly_retrain_schedule,
)
from lbx_orchestration.serving import assets as serving_assets
from lbx_orchestration.serving import new_for_you as new_for_you_assets

# Dagster 1.13 passes the beta `owners` parameter itself when it binds resources to a sensor's job
# (SensorDefinition.with_updated_jobs); no sensor of ours sets it, and `make ui` would show it.
warnings.filterwarnings(
    "ignore", message="Parameter `owners` of initializer `SensorDefinition.__init__`", category=dg.BetaWarning
)

ASSET_MODULES = [
    ingest_assets,
    metadata_assets,
    features_assets,
    model_assets,
    model_evaluation,
    serving_assets,
    catalog_assets,
    content_model_assets,
    new_for_you_assets,
]
CHECK_MODULES = [*ASSET_MODULES, ingest_checks]


def run_executor() -> dg.ExecutorDefinition:
    """In process (the embedded default), or Celery workers fed through Redis (LBX_EXECUTOR=celery)."""
    if settings.executor() != "celery":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    # read when a run starts: the broker's address never sits in the code or the run config
    broker = {"env": "LBX_REDIS_URL"}
    return celery_executor.configured({"broker": broker, "backend": broker}, name="celery")


def build_definitions(resource_overrides: dict | None = None) -> dg.Definitions:
    assets = dg.load_assets_from_modules(ASSET_MODULES)
    checks = dg.load_asset_checks_from_modules(CHECK_MODULES)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[onboard_member_job, nightly_refresh_job, full_refresh_job, tmdb_catalog_job],
        sensors=[letterboxd_inbox_sensor, stale_run_sensor],
        schedules=[nightly_refresh_schedule, weekly_retrain_schedule, tmdb_catalog_schedule],
        resources=build_resources(resource_overrides),
        executor=freeing_executor(run_executor()),
    )


defs = build_definitions()
