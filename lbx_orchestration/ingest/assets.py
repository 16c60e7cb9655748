"""The ingest group: MovieLens raters, Letterboxd exports, the reviews table and the users table."""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.catalog import RESOLUTION_SCHEMA
from lbx_orchestration.core.importer import (
    OlderExport,
    ResolvedImport,
    check_newer,
    last_import,
    prepare_import,
    write_import,
)
from lbx_orchestration.core.observations import (
    REVIEW_SCHEMA,
    empty_reviews,
    export_observations,
    movielens_observations_sql,
    movielens_ratings_sql,
    read_movielens_movies,
)
from lbx_orchestration.core.settings import SAMPLE_SCRAPE_DATE
from lbx_orchestration.core.tables import (
    EXPORT_ENTRIES,
    MOVIELENS_MOVIES,
    MOVIELENS_RATINGS,
    REVIEWS,
    USERS,
)
from lbx_orchestration.core.warehouse import (
    markdown_preview,
    read_frame,
    registered,
    replace_rows,
    scalar,
    table_exists,
    transaction,
)
from lbx_orchestration.partitions import scrape_date_partitions
from lbx_orchestration.resources import LbxSettings, LetterboxdResource


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
    missing = [f for f in ("ratings.csv", "movies.csv", "links.csv") if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{directory} is not a MovieLens folder: {', '.join(missing)} missing "
            "(fetch one with `lbx fetch movielens ml-32m`, or fix LBX_MOVIELENS_DIR)"
        )
    movies = read_movielens_movies(directory)
    query, params = movielens_ratings_sql(directory / "ratings.csv")
    with duckdb.get_connection() as con:
        con.execute("create schema if not exists raw")
        # DuckDB reads the CSV in parallel straight into the table; both tables or neither
        with registered(con, {"_lbx_movielens_movies": movies}), transaction(con):
            con.execute(f"create or replace table {MOVIELENS_RATINGS} as {query}", params)
            con.execute(f"create or replace table {MOVIELENS_MOVIES} as select * from _lbx_movielens_movies")
        n_ratings, n_users = con.execute(
            f"select count(*), count(distinct userId) from {MOVIELENS_RATINGS}"
        ).fetchall()[0]
        preview = read_frame(con, f"select * from {MOVIELENS_RATINGS} limit 10")
    return dg.MaterializeResult(
        metadata={
            "dataset": str(directory),
            "ratings": int(n_ratings),
            "users": int(n_users),
            "films": movies.height,
            "films_with_tmdb_id": movies["tmdbId"].drop_nulls().len(),
            "preview": dg.MetadataValue.md(markdown_preview(preview)),
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
    description="The Letterboxd data exports in the configured folders (the bundled ones by default), "
    "imported like `lbx import` does: raw rows (ratings, diary, watched, watchlist, likes, reviews; "
    "deleted/ and orphaned/ left out) and one ledger row per file. An export older than the one a "
    "member already imported is skipped, so a refresh never rolls a member back.",
)
def letterboxd_exports(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, letterboxd: LetterboxdResource
) -> dg.MaterializeResult:
    prepared = [prepare_import(p, scrape_date=SAMPLE_SCRAPE_DATE) for p in _export_paths(letterboxd.export_dirs)]
    outcome: dict[str, str] = {}
    no_films = pl.DataFrame(schema=RESOLUTION_SCHEMA)
    with duckdb.get_connection() as con:
        for item in prepared:
            previous = last_import(con, item.username)
            try:
                check_newer(item, previous)
            except OlderExport as exc:
                context.log.info(str(exc))
                outcome[item.username] = "skipped: a newer export is already imported"
                continue
            # films are resolved by film_catalog; the member's reviews rows by the reviews asset
            report = write_import(con, ResolvedImport(item, previous, no_films, no_films))
            outcome[item.username] = report.status
    entries = pl.concat([p.export.entries for p in prepared], how="vertical_relaxed") if prepared else pl.DataFrame()
    return dg.MaterializeResult(
        metadata={
            "exports": len(prepared),
            "rows": entries.height,
            "outcome": dg.MetadataValue.json(outcome),
            "users": dg.MetadataValue.json({p.username: p.export.summary() for p in prepared}),
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
        dg.AssetCheckSpec("ratings_in_half_stars", asset="reviews", description="Ratings are 0.5-5 in halves"),
        dg.AssetCheckSpec(
            "unique_observations", asset="reviews", description="No observation twice in one scrape date"
        ),
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
        with_movielens = scrape_date == SAMPLE_SCRAPE_DATE and table_exists(con, MOVIELENS_RATINGS)
        if table_exists(con, EXPORT_ENTRIES):
            entries = read_frame(con, f"select * from {EXPORT_ENTRIES} where scrape_date = ?", [scrape_date])
            parts.append(export_observations(entries.drop("scrape_date"), scrape_date))
        frame = pl.concat(parts, how="vertical_relaxed").select(list(REVIEW_SCHEMA))
        _replace_partition(con, frame, scrape_date, with_movielens)
        bad_ratings = _bad_ratings(con, scrape_date)
        duplicates = _duplicates(con, scrape_date)
        n_rows, n_users, n_films = con.execute(
            f"select count(*), count(distinct user_key), count(distinct film_key) from {REVIEWS} where scrape_date = ?",
            [scrape_date],
        ).fetchall()[0]
        by_source = con.execute(
            f"select source, count(*) from {REVIEWS} where scrape_date = ? group by source order by source",
            [scrape_date],
        ).fetchall()
        preview = read_frame(
            con,
            f"select * from {REVIEWS} where scrape_date = ? order by source desc, observation_id limit 10",
            [scrape_date],
        )
    return dg.MaterializeResult(
        metadata={
            "scrape_date": context.partition_key,
            "rows": int(n_rows),
            "users": int(n_users),
            "films": int(n_films),
            "rows_by_source": dg.MetadataValue.json({k: int(v) for k, v in by_source}),
            "preview": dg.MetadataValue.md(markdown_preview(preview)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="ratings_in_half_stars", passed=bad_ratings == 0, metadata={"bad_ratings": bad_ratings}
            ),
            dg.AssetCheckResult(
                check_name="unique_observations", passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
            ),
        ],
    )


def _replace_partition(con, frame: pl.DataFrame, scrape_date: dt.date, with_movielens: bool) -> None:
    """Rewrite one scrape date in one transaction: the parsed rows in ``frame`` and, for the
    sample date, every MovieLens rating turned into an observation inside DuckDB."""
    replace_rows(con, REVIEWS, frame.head(0), {})  # creates the table (or adds new columns) only
    with registered(con, {"_lbx_reviews_frame": frame}), transaction(con):
        con.execute(f"delete from {REVIEWS} where scrape_date = ?", [scrape_date])
        con.execute(f"insert into {REVIEWS} by name select * from _lbx_reviews_frame")
        if with_movielens:
            con.execute(
                f"insert into {REVIEWS} by name {movielens_observations_sql(MOVIELENS_RATINGS, MOVIELENS_MOVIES)}",
                [scrape_date],
            )


def _bad_ratings(con, scrape_date: dt.date) -> int:
    return int(
        scalar(
            con,
            f"select count(*) from {REVIEWS} where scrape_date = ? and rating is not null "
            "and (rating < 0.5 or rating > 5 or rating * 2 <> round(rating * 2))",
            [scrape_date],
        )
    )


def _duplicates(con, scrape_date: dt.date) -> int:
    return int(
        scalar(
            con,
            f"select count(*) - count(distinct observation_id) from {REVIEWS} where scrape_date = ?",
            [scrape_date],
        )
    )


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
