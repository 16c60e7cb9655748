"""The nightly refresh: today's scrape date of ``reviews`` and everything downstream of it."""

import datetime as dt

import dagster as dg

from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.ingest.onboarding import (
    letterboxd_user_import,
    letterboxd_user_recommendations,
)
from lbx_orchestration.metadata.catalog import release_month_partitions, tmdb_catalog
from lbx_orchestration.models.assets import MODEL_ASSETS
from lbx_orchestration.partitions import scrape_date_partitions

NIGHTLY_CRON = "0 3 * * *"

#: tuning is most of a model's cost: nightly refits reuse the last tuned hyperparameters
#: (materialize a model from the UI with tune=true to search again)
NIGHTLY_RUN_CONFIG = {
    "ops": {f"{name}_model": {"config": {"tune": False}} for name in (*MODEL_ASSETS, "content")}
}

#: the per-user onboarding assets have their own (dynamic) partitions and their own job
nightly_refresh_selection = dg.AssetSelection.assets(reviews).downstream() - (
    dg.AssetSelection.assets(letterboxd_user_import, letterboxd_user_recommendations)
)

nightly_refresh_job = dg.define_asset_job(
    "nightly_refresh_job",
    selection=nightly_refresh_selection,
    partitions_def=scrape_date_partitions,
    description="Collect today's observations (exports imported today, RSS when enabled), then "
    "rebuild features, retrain and evaluate the models and refresh recommendations.",
)


@dg.schedule(
    job=nightly_refresh_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night at 03:00 UTC: the nightly refresh for that day's scrape date.",
)
def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = when.astimezone(dt.UTC).date().isoformat()
    return dg.RunRequest(run_key=f"nightly:{day}", partition_key=day, run_config=NIGHTLY_RUN_CONFIG,
                         tags={"lbx/origin": "nightly"})


tmdb_catalog_job = dg.define_asset_job(
    "tmdb_catalog_job", selection=dg.AssetSelection.assets(tmdb_catalog), partitions_def=release_month_partitions,
    description="Refresh months of the TMDb catalogue.",
)


@dg.schedule(
    job=tmdb_catalog_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night before the nightly refresh: the current and the previous release month.",
)
def tmdb_catalog_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    when = (context.scheduled_execution_time or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    current = when.replace(day=1)
    previous = (current - dt.timedelta(days=1)).replace(day=1)
    return [dg.RunRequest(run_key=f"catalog:{month}:{when}", partition_key=month.isoformat(),
                          tags={"lbx/origin": "nightly"}) for month in (previous, current)]
