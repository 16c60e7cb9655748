"""``tmdb_catalog``: films by release month, wider than what the community rated.

Live (TMDb credentials set): ``/discover/movie`` per month (the window narrowed whenever a
query would pass TMDb's 500-page cap), then details with credits and keywords through the
TMDb cache and rate limit. Offline: the bundled snapshot's films of that month. Both keep
films with at least ``catalog_min_vote_count`` votes and a TMDb rating of at least
``catalog_min_rating``. A single-run backfill policy makes a backfill of many months one run.
This product uses the TMDB API but is not endorsed or certified by TMDB.
"""

import datetime as dt
import hashlib
import warnings
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.tables import TMDB_CATALOG
from lbx_orchestration.core.tmdb.discover import DiscoverStats, discover_params, discover_window, month_bounds
from lbx_orchestration.core.tmdb.flatten import flatten_many
from lbx_orchestration.core.warehouse import markdown_preview, replace_rows
from lbx_orchestration.resources import LbxSettings, TmdbResource

CATALOG_START = "1950-01-01"

#: one partition per release month; end_offset=1 keeps the current month available
release_month_partitions = dg.MonthlyPartitionsDefinition(start_date=CATALOG_START, end_offset=1)


def keep(record: dict[str, Any], min_votes: int, min_rating: float) -> bool:
    votes, rating = record.get("vote_count"), record.get("vote_average")
    if min_votes > 0 and (votes is None or votes < min_votes):
        return False
    return not (min_rating > 0 and (rating is None or rating < min_rating))


def snapshot_month(
    records: dict[int, dict[str, Any]], month: dt.date, min_votes: int, min_rating: float
) -> list[dict[str, Any]]:
    """The snapshot's films released in ``month`` that pass the floors, by id."""
    prefix = month.strftime("%Y-%m-")
    return [
        dict(r)
        for _, r in sorted(records.items())
        if (r.get("release_date") or "").startswith(prefix) and keep(r, min_votes, min_rating)
    ]


def live_month(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    tmdb: Any,
    client: Any,
    month: dt.date,
    min_votes: int,
    min_rating: float,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from lbx_orchestration.core.tmdb.cache import TmdbCache

    stats = DiscoverStats()
    first, last = month_bounds(month)
    found = discover_window(
        lambda s, e, page: client.discover_movies(discover_params(s, e, page, min_votes, min_rating)),
        first,
        last,
        stats,
    )
    ids = list(dict.fromkeys(int(r["id"]) for r in found if r.get("id") is not None))
    cache = TmdbCache(duckdb.database)
    max_age = dt.timedelta(days=tmdb.max_age_days)
    details = [
        body
        for _, body in client.fetch_many(ids, cache, max_age=max_age, include_cached=True, on_error="skip")
        if body is not None
    ]
    context.log.info(
        f"TMDb discover {month:%Y-%m}: {len(ids)} films in {stats.queries} queries, "
        f"{stats.pages} pages ({stats.narrowed} narrowings)"
    )
    # discover filtered on TMDb's side; details can be newer, so the floors apply again
    return [d for d in details if keep(d, min_votes, min_rating)], stats.as_dict()


@dg.asset(
    group_name="metadata",
    kinds={"python"},
    description="What the TMDb catalogue is drawn from: the TMDb source (live API or the bundled snapshot) "
    "and the vote-count and rating floors. Its data version changes with them, so tmdb_catalog's months "
    "show as stale when the source or a floor changes. Writes nothing to the warehouse.",
)
def tmdb_catalog_source(tmdb: TmdbResource, settings: LbxSettings) -> dg.MaterializeResult:
    """An unpartitioned root above ``tmdb_catalog``: Dagster 1.13 launches the global "Materialize
    all" only when the partitioned roots of the selection share one partitioning, and otherwise
    offers tmdb_catalog's months and fails the launch; with this root it backfills every partition."""
    described = {
        "tmdb_source": tmdb.describe(),
        "min_vote_count": settings.catalog_min_vote_count,
        "min_rating": settings.catalog_min_rating,
    }
    version = hashlib.sha256(repr(sorted(described.items())).encode()).hexdigest()[:16]
    return dg.MaterializeResult(metadata=described, data_version=dg.DataVersion(version))


# deliberate: a backfill of many months is one run, and only the beta backfill_policy does that
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning)


@dg.asset(
    group_name="metadata",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=[tmdb_catalog_source],
    partitions_def=release_month_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="TMDb films by release month (metadata.tmdb_catalog): live /discover/movie per month "
    "(narrowing the date window under TMDb's 500-page cap) plus details with credits and keywords, or "
    "the bundled snapshot offline; minimum vote count and TMDb rating floor from settings. Rewriting a "
    "month replaces its rows. This product uses the TMDB API but is not endorsed or certified by TMDB.",
)
def tmdb_catalog(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, tmdb: TmdbResource, settings: LbxSettings
) -> dg.MaterializeResult:
    months = [dt.date.fromisoformat(key) for key in context.partition_keys]
    min_votes, min_rating = settings.catalog_min_vote_count, settings.catalog_min_rating
    source = tmdb.source()
    details: list[dict[str, Any]] = []
    per_month: dict[str, int] = {}
    http: dict[str, Any] = {}
    for month in months:
        if source.kind == "live":
            films, stats = live_month(context, duckdb, tmdb, source, month, min_votes, min_rating)
            http[f"{month:%Y-%m}"] = stats
        else:
            films = snapshot_month(source.records, month, min_votes, min_rating)  # type: ignore[attr-defined]
        per_month[f"{month:%Y-%m}"] = len(films)
        details += films
    fetched_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = (
        flatten_many(details)
        .with_columns(
            pl.col("release_date").str.slice(0, 7).str.to_date("%Y-%m", strict=False).alias("release_month"),
            pl.lit(source.kind).alias("source_kind"),
            pl.lit(fetched_at).alias("fetched_at"),
        )
        .unique("tmdb_id", keep="first", maintain_order=True)
    )
    with duckdb.get_connection() as con:
        replace_rows(con, TMDB_CATALOG, frame, {"release_month": months})
    metadata: dict[str, Any] = {
        "films": frame.height,
        "months": len(months),
        "tmdb_source": tmdb.describe(),
        "min_vote_count": min_votes,
        "min_rating": min_rating,
        "films_per_month": dg.MetadataValue.json(per_month),
        "with_keywords": int(frame["keywords"].list.len().fill_null(0).gt(0).sum()) if frame.height else 0,
        "preview": dg.MetadataValue.md(
            markdown_preview(frame.select("tmdb_id", "title", "release_date", "vote_count", "genres"), 10)
        ),
    }
    if http:
        metadata["discover"] = dg.MetadataValue.json(http)
    return dg.MaterializeResult(metadata=metadata)
