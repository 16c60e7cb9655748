"""Everything Dagster loads: assets, checks, sensors, schedules and resources of lbx."""


import dagster as dg

from lbx_orchestration.features import assets as features_assets
from lbx_orchestration.ingest import assets as ingest_assets
from lbx_orchestration.metadata import assets as metadata_assets
from lbx_orchestration.models import assets as model_assets
from lbx_orchestration.resources import build_resources
from lbx_orchestration.serving import assets as serving_assets

ASSET_MODULES = [ingest_assets, metadata_assets, features_assets, model_assets, serving_assets]


def build_definitions(resource_overrides: dict | None = None) -> dg.Definitions:
    assets = dg.load_assets_from_modules(ASSET_MODULES)
    checks = dg.load_asset_checks_from_modules(ASSET_MODULES)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        resources=build_resources(resource_overrides),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
