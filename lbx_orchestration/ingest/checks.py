"""Checks on the opt-in RSS crawl: did the feeds yield diary entries, and do their films resolve."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.observations import RSS_SOURCE as SOURCE
from lbx_orchestration.core.tables import RESOLUTION, REVIEWS
from lbx_orchestration.core.warehouse import table_exists

MIN_PAGE_YIELD = 0.5
MIN_RSS_RESOLVED = 0.5


def _metadata_value(entry: dg.EventLogEntry | None, key: str) -> object:
    materialization = entry.asset_materialization if entry else None
    value = materialization.metadata.get(key) if materialization else None
    return None if value is None else value.value


@dg.asset_check(
    asset="reviews",
    description=f"At least {MIN_PAGE_YIELD:.0%} of the RSS feeds crawled in the latest "
    "materialization yielded diary entries (passes when no feed was crawled)",
)
def rss_pages_with_items(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    entry = context.instance.get_latest_materialization_event(dg.AssetKey("reviews"))
    pages = _metadata_value(entry, "rss_pages")
    if not pages:
        return dg.AssetCheckResult(passed=True, metadata={"pages": 0, "note": "no RSS crawl"})
    empty = int(_metadata_value(entry, "rss_empty_pages") or 0)
    share = (int(pages) - empty) / int(pages)
    return dg.AssetCheckResult(
        passed=share >= MIN_PAGE_YIELD,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "pages": int(pages),
            "empty_pages": empty,
            "share_with_items": share,
            "partition": entry.asset_materialization.partition or "",
        },
    )


@dg.asset_check(
    asset="film_catalog",
    description=f"At least {MIN_RSS_RESOLVED:.0%} of the films seen through RSS have a TMDb id "
    "(from the feed's tmdb:movieId, or resolved by title + year)",
)
def rss_resolved_share(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        if not table_exists(con, REVIEWS):
            return dg.AssetCheckResult(passed=True, metadata={"rss_films": 0})
        join = f"left join {RESOLUTION} res on r.film_key = res.film_key" if table_exists(con, RESOLUTION) else ""
        resolved = "coalesce(r.tmdb_id, res.tmdb_id)" if join else "r.tmdb_id"
        films, with_id = con.execute(
            f"select count(distinct r.film_key), "
            f"count(distinct r.film_key) filter (where {resolved} is not null) "
            f"from {REVIEWS} r {join} where r.source = ?",
            [SOURCE],
        ).fetchall()[0]
    share = with_id / films if films else 1.0
    return dg.AssetCheckResult(
        passed=share >= MIN_RSS_RESOLVED,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rss_films": int(films), "resolved": int(with_id), "resolved_share": share},
    )
