"""The nightly refresh: today's scrape date of ``reviews`` and everything downstream of it.

The schedule is off by default (turn it on in the UI under Automation, or run the job by hand).
"""

import datetime as dt

import dagster as dg

from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.metadata.catalog import tmdb_catalog
from lbx_orchestration.partitions import add_scrape_date

NIGHTLY_CRON = "0 3 * * *"

nightly_refresh_job = dg.define_asset_job(
    "nightly_refresh_job",
    selection=dg.AssetSelection.assets(reviews).downstream(),
    description="Collect the day's observations (exports imported that day, RSS when enabled), then "
    "rebuild features, refit and evaluate the models (reusing the last tuned hyperparameters: the "
    "models' config default is tune=false) and refresh every member's list.",
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
    description="Everything for one scrape date, sources included: the first night of an empty "
    "warehouse, and what `make demo` materializes (the release-month catalogue has its own job).",
)


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
