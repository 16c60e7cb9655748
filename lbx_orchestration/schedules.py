"""Two cadences: a nightly refresh that follows what changed, and a weekly full retrain.

- nightly (03:00 UTC): that day's ``reviews`` partition, the films it brings, the incremental dbt
  models (only users with new observations), and every member's list from the served model, with
  members whose films changed since it was trained folded in: their new ratings count that night.
  No model is refitted.
- weekly (Sunday 04:00 UTC): every asset for the day, sources included, dbt from scratch
  (``--full-refresh``), every model refitted on every rating up to then, evaluated and gated.

Both schedules are off by default (turn them on in the UI under Automation).
"""

import datetime as dt

import dagster as dg

from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.metadata.catalog import tmdb_catalog
from lbx_orchestration.models.assets import WEEKLY_TAGS
from lbx_orchestration.partitions import add_scrape_date

NIGHTLY_CRON = "0 3 * * 1-6"  # Sunday is the weekly retrain's

WEEKLY_CRON = "0 4 * * 0"

#: the models, the content model and their evaluation: refitted and gated by the weekly retrain only
TRAINING = dg.AssetSelection.groups("models")

#: the nightly adds the new films' TMDb rows; the weekly retrain rebuilds every row
NIGHTLY_RUN_CONFIG = {"ops": {"tmdb_movies": {"config": {"only_new": True}}}}

#: the films' feature tables only the models read: rebuilt by the weekly retrain, not at night
FILM_FEATURES = dg.AssetSelection.assets("stg_movies", "movie_features", "movie_feature_values", "keyword_tfidf")

#: the per-user summary for operators (ingest.users), read by nothing downstream: recounting 32M
#: rows took 8 s of a night at ML-32M size; the weekly retrain recounts it
SUMMARIES = dg.AssetSelection.assets("users")

nightly_refresh_job = dg.define_asset_job(
    "nightly_refresh_job",
    selection=dg.AssetSelection.assets(reviews).downstream() - TRAINING - FILM_FEATURES - SUMMARIES,
    description="Collect the day's observations (exports imported that day, RSS when enabled), resolve "
    "the films they bring, update the features of the users they belong to (incremental dbt) and "
    "rewrite every member's list from the served model, folding in the members whose films changed "
    "since it was trained. No model is refitted: the weekly full_refresh_job does that.",
    config=NIGHTLY_RUN_CONFIG,
)


@dg.schedule(
    job=nightly_refresh_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night at 03:00 UTC: the nightly refresh for that day's scrape date. Off by "
    "default: turn it on here once lbx runs under `make ui` (dagster dev) or a daemon.",
)
def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = when.astimezone(dt.UTC).date().isoformat()
    add_scrape_date(context.instance, day)  # the day's partition exists once the day has a run
    return dg.RunRequest(run_key=f"nightly:{day}", partition_key=day, tags={"lbx/origin": "nightly"})


full_refresh_job = dg.define_asset_job(
    "full_refresh_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(tmdb_catalog),
    description="The weekly full retrain: everything for one scrape date, sources included, dbt from "
    "scratch, every model refitted on every rating up to then, evaluated and gated. Also the first "
    "night of an empty warehouse (the release-month catalogue has its own job).",
    config={"ops": {"dbt_features": {"config": {"full_refresh": True}}}},
    tags=WEEKLY_TAGS,
)


@dg.schedule(
    job=full_refresh_job,
    cron_schedule=WEEKLY_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every Sunday at 04:00 UTC: the full retrain for that day's scrape date. Off by default.",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = when.astimezone(dt.UTC).date().isoformat()
    add_scrape_date(context.instance, day)
    return dg.RunRequest(run_key=f"weekly:{day}", partition_key=day, tags={"lbx/origin": "weekly"})


tmdb_catalog_job = dg.define_asset_job(
    "tmdb_catalog_job",
    selection=dg.AssetSelection.assets(tmdb_catalog),
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
    return [
        dg.RunRequest(
            run_key=f"catalog:{month}:{when}", partition_key=month.isoformat(), tags={"lbx/origin": "nightly"}
        )
        for month in (previous, current)
    ]
