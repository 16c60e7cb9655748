"""The RSS branch of ``reviews``: crawl each configured user's feed through Dagster Pipes.

Opt-in (``LetterboxdResource.rss_users`` and ``crawl_enabled``). The crawl runs in the same
child process the CLI uses (``core/crawl/child.py``), launched here by PipesSubprocessClient;
its stats land in the ``reviews`` materialization's metadata (``rss_*`` keys) and feed the
checks in ``ingest/checks.py``. A block or a failure fails the run before anything is written
for the date and points to the export, the way that always works.

Crawl settings can be loosened for tests with ``LBX_CRAWL_SETTINGS`` (a JSON object of the
lowercase keys in ``core.crawl.settings.OVERRIDE_KEYS``, e.g. ``{"download_delay": 0}``).
"""

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from lbx_orchestration.core.crawl.runner import (
    CrawlBlocked,
    CrawlError,
    CrawlJob,
    child_pythonpath,
    plan_crawl,
    read_items,
    result_from_report,
)
from lbx_orchestration.core.crawl.settings import settings_from_env
from lbx_orchestration.core.crawl.spiders import parse_users
from lbx_orchestration.core.observations import empty_reviews
from lbx_orchestration.core.observations import rss_observations as feed_observations
from lbx_orchestration.resources import LetterboxdResource

STAT_KEYS = (
    "requests",
    "responses",
    "items",
    "pages",
    "empty_pages",
    "status_403",
    "status_429",
    "retries",
    "failed_requests",
    "cache_hits",
)
EXPORT_HINT = "Nothing was written for {date}; the export also works dropped into the inbox folder ({inbox})."


def run_rss_crawl(context: dg.AssetExecutionContext, job: CrawlJob, out: Path) -> dict[str, Any]:
    """The crawl child through Pipes; returns its report (outcome, message, stats)."""
    try:
        invocation = dg.PipesSubprocessClient().run(
            context=context,
            command=job.command(out),
            env={"PYTHONPATH": child_pythonpath()},
            cwd=str(out.parent),
        )
    except dg.DagsterPipesExecutionError as exc:
        raise dg.Failure(description=f"the RSS crawl child failed: {exc} (its error is in the run's log)") from None
    reports = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and "outcome" in m]
    if not reports:
        raise dg.Failure(description="the RSS crawl child reported nothing (see its log)")
    return reports[-1]


def rss_observations(
    context: dg.AssetExecutionContext, letterboxd: LetterboxdResource, scrape_date: dt.date
) -> pl.DataFrame:
    if not parse_users(list(letterboxd.rss_users)):
        return empty_reviews()
    job = plan_crawl("rss", list(letterboxd.rss_users), letterboxd.base_url, settings_from_env())
    with tempfile.TemporaryDirectory(prefix="lbx-rss-") as tmp:
        out = Path(tmp) / "items.jsonl"
        report = run_rss_crawl(context, job, out)
        items = read_items(out)
    stats = report.get("stats") or {}
    hint = EXPORT_HINT.format(date=scrape_date.isoformat(), inbox=letterboxd.inbox_dir)
    meta = {k: dg.MetadataValue.int(int(stats.get(k) or 0)) for k in STAT_KEYS}
    try:
        result = result_from_report("rss", report, items)
    except CrawlBlocked as exc:
        raise dg.Failure(description=f"RSS crawl blocked: {exc}. {hint}", metadata=meta) from None
    except CrawlError as exc:
        raise dg.Failure(
            description=f"RSS {exc}; use the data export (Settings > Data > Export) and `lbx import`. {hint}",
            metadata=meta,
        ) from None
    for note in result.notes:
        context.log.warning(f"RSS: {note}")
    frame = feed_observations(result.items, scrape_date)
    with_ids = frame.filter(pl.col("tmdb_id").is_not_null())["film_key"].n_unique()
    films = frame["film_key"].n_unique()
    per_user = dict(frame.group_by("username").len().sort("username").iter_rows())
    # the asset has check outputs too: name its own output
    output = context.assets_def.get_output_name_for_asset_key(context.asset_key)
    context.add_output_metadata(
        {
            **{f"rss_{k}": v for k, v in meta.items()},
            "rss_users": dg.MetadataValue.json({u: per_user.get(u, 0) for u in job.users}),
            "rss_not_found": dg.MetadataValue.json(stats.get("not_found") or []),
            "rss_films": films,
            "rss_films_with_tmdb_id": with_ids,
        },
        output_name=output,
    )
    context.log.info(
        f"RSS: {frame.height} diary entries of {len(job.users)} user(s) from {stats.get('pages', 0)} feeds"
    )
    return frame
