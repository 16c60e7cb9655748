"""The ingest group: MovieLens raters, Letterboxd exports, the reviews table and the users table."""


import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.constants import SAMPLE_SCRAPE_DATE
from lbx_orchestration.core.letterboxd.export import read_export
from lbx_orchestration.core.observations import (
    REVIEW_SCHEMA,
    empty_reviews,
    export_observations,
    movielens_observations,
    read_movielens,
)
from lbx_orchestration.core.warehouse import (
    markdown_preview,
    read_frame,
    replace_rows,
    replace_table,
    scalar,
    table_exists,
)
from lbx_orchestration.partitions import scrape_date_partitions
from lbx_orchestration.resources import LbxSettings, LetterboxdResource

EXPORT_ENTRIES = "raw.letterboxd_export_entries"
EXPORT_IMPORTS = "raw.letterboxd_imports"
REVIEWS = "ingest.reviews"
USERS = "ingest.users"


@dg.asset(
    group_name="ingest",
    kinds={"python", "duckdb"},
    pool="duckdb",
    description="MovieLens ratings, films and links (ml-latest-small bundled; a larger set by path), "
    "the bootstrap community of raters.",
)
def movielens_ratings(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    directory = Path(settings.movielens_dir)
    ratings, movies = read_movielens(directory)
    with duckdb.get_connection() as con:
        replace_table(con, "raw.movielens_ratings", ratings)
        replace_table(con, "raw.movielens_movies", movies)
    return dg.MaterializeResult(
        metadata={
            "dataset": str(directory),
            "ratings": ratings.height,
            "users": ratings["userId"].n_unique(),
            "films": movies.height,
            "films_with_tmdb_id": movies["tmdbId"].drop_nulls().len(),
            "preview": dg.MetadataValue.md(markdown_preview(ratings)),
        }
    )


def _export_paths(dirs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for d in dirs:
        root = Path(d)
        if not root.exists():
            continue
        for child in sorted(root.iterdir()):
            if child.is_dir() or child.suffix.lower() == ".zip":
                paths.append(child)
    return paths


@dg.asset(
    group_name="ingest",
    kinds={"python", "duckdb"},
    pool="duckdb",
    description="Rows parsed from the Letterboxd data exports in the configured folders "
    "(ratings, diary, watched, watchlist, likes, reviews); deleted/ and orphaned/ are left out.",
)
def letterboxd_exports(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, letterboxd: LetterboxdResource
) -> dg.MaterializeResult:
    exports = [read_export(p) for p in _export_paths(letterboxd.export_dirs)]
    summaries = {e.username: e.summary() for e in exports}
    entries = (
        pl.concat([e.entries for e in exports], how="vertical_relaxed")
        if exports
        else pl.DataFrame()
    )
    imports = pl.DataFrame(
        {
            "username": [e.username for e in exports],
            "source_name": [e.source_name for e in exports],
            "content_sha256": [e.content_sha256 for e in exports],
            "scrape_date": [SAMPLE_SCRAPE_DATE] * len(exports),
            "imported_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)] * len(exports),
        },
        schema={"username": pl.Utf8, "source_name": pl.Utf8, "content_sha256": pl.Utf8,
                "scrape_date": pl.Date, "imported_at": pl.Datetime("us")},
    )
    users = [e.username for e in exports]
    with duckdb.get_connection() as con:
        if exports:
            replace_rows(con, EXPORT_ENTRIES, entries.with_columns(
                pl.lit(SAMPLE_SCRAPE_DATE).alias("scrape_date")), {"username": users})
            replace_rows(con, EXPORT_IMPORTS, imports, {"username": users})
    return dg.MaterializeResult(
        metadata={
            "exports": len(exports),
            "rows": entries.height,
            "users": dg.MetadataValue.json(summaries),
            "preview": dg.MetadataValue.md(markdown_preview(entries.drop("source_file", strict=False))),
        }
    )


@dg.asset(
    group_name="ingest",
    kinds={"python", "duckdb"},
    pool="duckdb",
    partitions_def=scrape_date_partitions,
    deps=[movielens_ratings, letterboxd_exports],
    description="Every observation (rating, diary entry, watch, like, watchlist) in one table, "
    "partitioned by scrape date: the day lbx collected it. Rewriting a date replaces its rows.",
    check_specs=[
        dg.AssetCheckSpec("ratings_in_half_stars", asset="reviews",
                          description="Ratings are 0.5-5 in halves"),
        dg.AssetCheckSpec("unique_observations", asset="reviews",
                          description="No observation twice in one scrape date"),
    ],
)
def reviews(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, letterboxd: LetterboxdResource
) -> dg.MaterializeResult:
    scrape_date = dt.date.fromisoformat(context.partition_key)
    parts = [empty_reviews()]
    if letterboxd.rss_users and letterboxd.crawl_enabled:
        # crawl before opening the warehouse: a blocked crawl fails the run with nothing written
        from lbx_orchestration.ingest.rss import rss_observations

        parts.append(rss_observations(context, letterboxd, scrape_date))
    with duckdb.get_connection() as con:
        if scrape_date == SAMPLE_SCRAPE_DATE and table_exists(con, "raw.movielens_ratings"):
            ratings = read_frame(con, "select * from raw.movielens_ratings")
            movies = read_frame(con, "select * from raw.movielens_movies")
            parts.append(movielens_observations(ratings, movies, scrape_date))
        if table_exists(con, EXPORT_ENTRIES):
            entries = read_frame(con, f"select * from {EXPORT_ENTRIES} where scrape_date = ?", [scrape_date])
            parts.append(export_observations(entries.drop("scrape_date"), scrape_date))
        frame = pl.concat(parts, how="vertical_relaxed").select(list(REVIEW_SCHEMA))
        replace_rows(con, REVIEWS, frame, {"scrape_date": [scrape_date]})
        bad_ratings = _bad_ratings(con, scrape_date)
        duplicates = _duplicates(con, scrape_date)
    by_source = frame.group_by("source").len().sort("source")
    return dg.MaterializeResult(
        metadata={
            "scrape_date": context.partition_key,
            "rows": frame.height,
            "users": frame["user_key"].n_unique(),
            "films": frame["film_key"].n_unique(),
            "rows_by_source": dg.MetadataValue.json(dict(by_source.iter_rows())),
            "preview": dg.MetadataValue.md(markdown_preview(frame)),
        },
        check_results=[
            dg.AssetCheckResult(check_name="ratings_in_half_stars", passed=bad_ratings == 0,
                                metadata={"bad_ratings": bad_ratings}),
            dg.AssetCheckResult(check_name="unique_observations", passed=duplicates == 0,
                                metadata={"duplicate_keys": duplicates}),
        ],
    )


def _bad_ratings(con, scrape_date: dt.date) -> int:  # noqa: ANN001
    return int(scalar(
        con,
        f"select count(*) from {REVIEWS} where scrape_date = ? and rating is not null "
        "and (rating < 0.5 or rating > 5 or rating * 2 <> round(rating * 2))",
        [scrape_date],
    ))


def _duplicates(con, scrape_date: dt.date) -> int:  # noqa: ANN001
    return int(scalar(
        con,
        f"select count(*) - count(distinct observation_id) from {REVIEWS} where scrape_date = ?",
        [scrape_date],
    ))


@dg.asset(
    group_name="ingest",
    kinds={"duckdb"},
    pool="duckdb",
    deps=[reviews],
    description="One row per user: platform, username, sources, counts, first and last seen.",
)
def users(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        con.execute("create schema if not exists ingest")
        con.execute(
            f"""
            create or replace table {USERS} as
            select user_key, any_value(platform) as platform, any_value(username) as username,
                   list_sort(list_distinct(list(source))) as sources,
                   count(distinct film_key) filter (where kind <> 'watchlist') as films_seen,
                   count(*) filter (where rating is not null) as ratings,
                   count(distinct film_key) filter (where kind = 'watchlist') as watchlist,
                   min(scrape_date) as first_seen, max(scrape_date) as last_seen
            from {REVIEWS}
            group by user_key
            order by platform, username
            """
        )
        frame = read_frame(con, f"select * from {USERS}")
    by_platform = frame.group_by("platform").len().sort("platform")
    return dg.MaterializeResult(
        metadata={
            "users": frame.height,
            "users_by_platform": dg.MetadataValue.json(dict(by_platform.iter_rows())),
            "preview": dg.MetadataValue.md(markdown_preview(frame.filter(pl.col("platform") == "letterboxd"))),
        }
    )
