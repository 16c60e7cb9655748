"""The nightly refresh: today's scrape date of ``reviews`` and everything downstream of it."""

import datetime as dt

import dagster as dg

from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.ingest.onboarding import (
    letterboxd_user_import,
    letterboxd_user_recommendations,
)
from lbx_orchestration.models.assets import MODEL_ASSETS
from lbx_orchestration.partitions import scrape_date_partitions

NIGHTLY_CRON = "0 3 * * *"

#: tuning is most of a model's cost: nightly refits reuse the last tuned hyperparameters
#: (materialize a model from the UI with tune=true to search again)
NIGHTLY_RUN_CONFIG = {
    "ops": {f"{alias}_model": {"config": {"tune": False}} for alias in MODEL_ASSETS}
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
