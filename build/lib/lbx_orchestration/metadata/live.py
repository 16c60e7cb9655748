"""Fetching from the live TMDb API through the DuckDB cache: only what is missing or stale."""

import datetime as dt
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.tmdb.cache import TmdbCache


def fetch_live(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    tmdb: Any,
    source: Any,
    ids: list[int],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Details for ``ids``: fresh cache entries are reused, the rest fetched (and cached as they
    arrive, so an interrupted run resumes where it stopped). 404s are remembered."""
    cache = TmdbCache(duckdb.database)
    max_age = dt.timedelta(days=tmdb.max_age_days)
    missing = cache.missing(ids, max_age=max_age, endpoints=source.endpoints)
    context.log.info(f"TMDb: {len(ids) - len(missing)} of {len(ids)} films cached, fetching {len(missing)}")
    details: list[dict[str, Any]] = []
    for _, body in source.fetch_many(ids, cache, max_age=max_age, include_cached=True, on_error="skip"):
        if body is not None:
            details.append(body)
    stats = {"cached": len(ids) - len(missing), "fetched": len(missing), **source.stats.as_dict()}
    return details, stats
