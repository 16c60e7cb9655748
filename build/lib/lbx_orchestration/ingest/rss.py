"""The RSS branch of ``reviews``: crawl each configured user's feed through Dagster Pipes.

Opt-in (``LetterboxdResource.rss_users`` and ``crawl_enabled``). The crawl runs in a child
process (``ingest/crawl_pipes.py``); its stats land in the ``reviews`` materialization's
metadata (``rss_*`` keys) and feed the checks in ``ingest/checks.py``. A block fails the run
before anything is written for the date and points to the export, the way that always works.

Crawl settings can be loosened for tests with ``LBX_CRAWL_SETTINGS`` (a JSON object of the
lowercase keys in ``core.crawl.settings.OVERRIDE_KEYS``, e.g. ``{"download_delay": 0}``).
"""

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

import lbx_orchestration
from lbx_orchestration.core.crawl.settings import build_settings
from lbx_orchestration.core.crawl.spiders import normalize_base_url, parse_users
from lbx_orchestration.core.letterboxd.pages import blocked_message
from lbx_orchestration.core.observations import conform, empty_reviews, title_film_key
from lbx_orchestration.resources import LetterboxdResource

SOURCE = "letterboxd_rss"
SETTINGS_ENV = "LBX_CRAWL_SETTINGS"
STAT_KEYS = ("requests", "responses", "items", "pages", "empty_pages", "status_403",
             "status_429", "retries", "failed_requests", "cache_hits")
EXPORT_HINT = ("Nothing was written for {date}; the export also works dropped into the inbox "
               "folder ({inbox}).")


def crawl_settings_from_env() -> dict[str, Any]:
    raw = os.environ.get(SETTINGS_ENV, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{SETTINGS_ENV} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{SETTINGS_ENV} must be a JSON object, got {raw!r}")
    build_settings(value)  # names a bad key or value here, not in the child
    return value


def rss_items_to_reviews(items: list[dict[str, Any]], scrape_date: dt.date) -> pl.DataFrame:
    """RSS diary items (core.letterboxd.rss.parse_feed rows) as REVIEW_SCHEMA rows."""
    rows = []
    for item in items:
        tmdb_id = item.get("tmdb_id")
        film_key = (f"tmdb:{tmdb_id}" if tmdb_id is not None
                    else title_film_key(item.get("film_title"), item.get("film_year")))
        watched = item.get("watched_date")
        if isinstance(watched, str):
            watched = dt.date.fromisoformat(watched)
        username = item["username"]
        local_id = item.get("guid") or f"{film_key}:{watched or ''}"
        rows.append({
            "scrape_date": scrape_date,
            "source": SOURCE,
            "platform": "letterboxd",
            "username": username,
            "user_key": f"letterboxd:{username}",
            "observation_id": f"rss:{username}:{local_id}",
            "kind": "diary",
            "film_key": film_key,
            "film_title": item.get("film_title"),
            "film_year": item.get("film_year"),
            "tmdb_id": tmdb_id,
            "rating": item.get("rating"),
            "rewatch": bool(item.get("rewatch")),
            "liked": item.get("liked"),
            "event_date": watched,
            "event_at": dt.datetime.combine(watched, dt.time()) if watched else None,
        })
    if not rows:
        return empty_reviews()
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return conform(frame).unique(subset=["observation_id"], keep="first", maintain_order=True)


def _read_items(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _crawl_report(invocation: dg.PipesClientCompletedInvocation) -> dict[str, Any]:
    reports = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and "stats" in m]
    if not reports:
        raise dg.Failure(description="the RSS crawl child reported no stats (see its log)")
    return reports[-1]


def run_rss_crawl(context: dg.AssetExecutionContext, users: list[str], base_url: str,
                  out: Path) -> dict[str, Any]:
    """The crawl child through Pipes; returns its report (stats, outcome, items)."""
    root = str(Path(lbx_orchestration.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    command = [
        sys.executable, "-m", "lbx_orchestration.ingest.crawl_pipes",
        "--spider", "rss",
        "--users", ",".join(users),
        "--base-url", base_url,
        "--out", str(out),
        "--settings", json.dumps(crawl_settings_from_env()),
    ]  # fmt: skip
    try:
        invocation = dg.PipesSubprocessClient().run(context=context, command=command, env=env,
                                                    cwd=str(out.parent))
    except dg.DagsterPipesExecutionError as exc:
        raise dg.Failure(description=f"the RSS crawl child failed: {exc} (its error is in the "
                         "run's log)") from None
    return _crawl_report(invocation)


def rss_observations(
    context: dg.AssetExecutionContext, letterboxd: LetterboxdResource, scrape_date: dt.date
) -> pl.DataFrame:
    users = parse_users(list(letterboxd.rss_users))
    if not users:
        return empty_reviews()
    base_url = normalize_base_url(letterboxd.base_url)
    with tempfile.TemporaryDirectory(prefix="lbx-rss-") as tmp:
        out = Path(tmp) / "items.jsonl"
        report = run_rss_crawl(context, users, base_url, out)
        items = _read_items(out)
    stats = report["stats"]
    hint = EXPORT_HINT.format(date=scrape_date.isoformat(), inbox=letterboxd.inbox_dir)
    meta = {k: dg.MetadataValue.int(int(stats.get(k) or 0)) for k in STAT_KEYS}
    if report["outcome"] == "blocked":
        cause = blocked_message(stats.get("blocked_cause") or "blocked", stats.get("blocked_url"))
        raise dg.Failure(description=f"RSS crawl blocked: {cause}. {hint}", metadata=meta)
    if report["outcome"] != "ok":
        problems = [f"{k}: {stats[k]}" for k in ("failed_urls", "unparsable_urls", "spider_errors",
                                                  "finish_reason") if stats.get(k)]
        cause = "; ".join(problems) or "unknown cause"
        raise dg.Failure(description=f"RSS crawl failed ({cause}); use the data export "
                         f"(Settings > Data > Export) and `lbx import`. {hint}", metadata=meta)
    frame = rss_items_to_reviews(items, scrape_date)
    with_ids = frame.filter(pl.col("tmdb_id").is_not_null())["film_key"].n_unique()
    films = frame["film_key"].n_unique()
    per_user = dict(frame.group_by("username").len().sort("username").iter_rows())
    # the asset has check outputs too: name its own output
    output = context.assets_def.get_output_name_for_asset_key(context.asset_key)
    context.add_output_metadata({
        **{f"rss_{k}": v for k, v in meta.items()},
        "rss_users": dg.MetadataValue.json({u: per_user.get(u, 0) for u in users}),
        "rss_not_found": dg.MetadataValue.json(stats.get("not_found") or []),
        "rss_films": films,
        "rss_films_with_tmdb_id": with_ids,
    }, output_name=output)
    context.log.info(f"RSS: {frame.height} diary entries of {len(users)} user(s) from "
                     f"{stats.get('pages', 0)} feeds")
    return frame
