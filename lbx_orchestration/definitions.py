"""Everything Dagster loads: assets, checks, sensors, schedules and resources of lbx."""


import dagster as dg

from lbx_orchestration.features import assets as features_assets
from lbx_orchestration.ingest import assets as ingest_assets
from lbx_orchestration.ingest import checks as ingest_checks
from lbx_orchestration.ingest import onboarding as onboarding_assets
from lbx_orchestration.ingest.inbox import letterboxd_inbox_sensor, onboard_letterboxd_user_job
from lbx_orchestration.ingest.schedules import (
    nightly_refresh_job,
    nightly_refresh_schedule,
    tmdb_catalog_job,
    tmdb_catalog_schedule,
)
from lbx_orchestration.metadata import assets as metadata_assets
from lbx_orchestration.metadata import catalog as catalog_assets
from lbx_orchestration.models import assets as model_assets
from lbx_orchestration.models import content as content_model_assets
from lbx_orchestration.resources import build_resources
from lbx_orchestration.serving import assets as serving_assets
from lbx_orchestration.serving import new_for_you as new_for_you_assets

ASSET_MODULES = [ingest_assets, metadata_assets, features_assets, model_assets, serving_assets,
                 onboarding_assets, catalog_assets, content_model_assets, new_for_you_assets]
CHECK_MODULES = [*ASSET_MODULES, ingest_checks]


def build_definitions(resource_overrides: dict | None = None) -> dg.Definitions:
    assets = dg.load_assets_from_modules(ASSET_MODULES)
    checks = dg.load_asset_checks_from_modules(CHECK_MODULES)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[onboard_letterboxd_user_job, nightly_refresh_job, tmdb_catalog_job],
        sensors=[letterboxd_inbox_sensor],
        schedules=[nightly_refresh_schedule, tmdb_catalog_schedule],
        resources=build_resources(resource_overrides),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
