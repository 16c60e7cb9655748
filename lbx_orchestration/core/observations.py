"""One shape for every observation lbx collects, whatever its source.

An observation is one user's contact with one film on one day: a rating, a diary entry, a
watch, a like or a watchlist entry. ``reviews`` stores them partitioned by ``scrape_date``,
the date lbx collected them; the same observation collected on two dates appears twice and
downstream models keep the latest.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from lbx_orchestration.core.tmdb.normalize import normalize_title, split_movielens_title

REVIEW_SCHEMA: dict[str, pl.DataType] = {
    "scrape_date": pl.Date(),
    "source": pl.Utf8(),
    "platform": pl.Utf8(),
    "username": pl.Utf8(),
    "user_key": pl.Utf8(),
    "observation_id": pl.Utf8(),
    "kind": pl.Utf8(),
    "film_key": pl.Utf8(),
    "film_title": pl.Utf8(),
    "film_year": pl.Int32(),
    "tmdb_id": pl.Int64(),
    "rating": pl.Float64(),
    "rewatch": pl.Boolean(),
    "liked": pl.Boolean(),
    "event_date": pl.Date(),
    "event_at": pl.Datetime("us"),
}

#: kinds that mean "the user has seen this film" (used for exclusion and training)
SEEN_KINDS = ("rating", "diary", "watched", "review", "like")


def empty_reviews() -> pl.DataFrame:
    return pl.DataFrame(schema=REVIEW_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in REVIEW_SCHEMA.items()]
    )


def title_film_key(title: str | None, year: int | None) -> str:
    return f"title:{normalize_title(title or '')}|{year or ''}"


def read_movielens(directory: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ratings, movies-with-links) from a MovieLens-format folder."""
    ratings = pl.read_csv(
        directory / "ratings.csv",
        schema_overrides={"userId": pl.Int64, "movieId": pl.Int64, "rating": pl.Float64, "timestamp": pl.Int64},
    )
    movies = read_movielens_movies(directory)
    return ratings, movies


def movielens_observations(ratings: pl.DataFrame, movies: pl.DataFrame, scrape_date: dt.date) -> pl.DataFrame:
    frame = ratings.join(movies.select("movieId", "film_title", "film_year", "tmdbId"), on="movieId", how="left")
    return conform(
        frame.select(
            pl.lit(scrape_date).alias("scrape_date"),
            pl.lit("movielens").alias("source"),
            pl.lit("movielens").alias("platform"),
            pl.col("userId").cast(pl.Utf8).alias("username"),
            pl.format("movielens:{}", pl.col("userId")).alias("user_key"),
            pl.format("ml:{}:{}", pl.col("userId"), pl.col("movieId")).alias("observation_id"),
            pl.lit("rating").alias("kind"),
            pl.format("ml:{}", pl.col("movieId")).alias("film_key"),
            "film_title",
            "film_year",
            pl.col("tmdbId").alias("tmdb_id"),
            "rating",
            pl.lit(False).alias("rewatch"),
            pl.lit(None, pl.Boolean).alias("liked"),
            pl.from_epoch("timestamp", time_unit="s").dt.date().alias("event_date"),
            pl.from_epoch("timestamp", time_unit="s").alias("event_at"),
        )
    )


def export_observations(entries: pl.DataFrame, scrape_date: dt.date) -> pl.DataFrame:
    """Rows of a parsed Letterboxd export (see core.letterboxd.export) as observations.

    Films are keyed by their boxd.it code where the export gives it (ratings, watched,
    watchlist, likes) and by normalised title + year for diary and review rows, whose code
    names the entry rather than the film.
    """
    if entries.is_empty():
        return empty_reviews()
    names, years = entries["film_name"].to_list(), entries["film_year"].to_list()
    title_keys = [title_film_key(t, y) for t, y in zip(names, years, strict=True)]
    frame = entries.with_columns(pl.Series("_title_key", title_keys, dtype=pl.Utf8))
    return conform(
        frame.select(
            pl.lit(scrape_date).alias("scrape_date"),
            pl.lit("letterboxd_export").alias("source"),
            pl.lit("letterboxd").alias("platform"),
            "username",
            pl.format("letterboxd:{}", pl.col("username")).alias("user_key"),
            pl.format(
                "lbx:{}:{}:{}",
                pl.col("username"),
                pl.col("kind"),
                pl.coalesce(pl.col("entry_key"), pl.col("film_key"), pl.col("_title_key")),
            ).alias("observation_id"),
            pl.col("kind").replace({"like": "like"}),
            pl.when(pl.col("film_key").is_not_null())
            .then(pl.format("lb:{}", pl.col("film_key")))
            .otherwise(pl.col("_title_key"))
            .alias("film_key"),
            pl.col("film_name").alias("film_title"),
            "film_year",
            pl.lit(None, pl.Int64).alias("tmdb_id"),
            "rating",
            "rewatch",
            "liked",
            pl.coalesce(pl.col("watched_date"), pl.col("logged_date")).alias("event_date"),
            # the day it was logged orders a user's history; the line keeps same-day order
            (pl.col("logged_date").cast(pl.Datetime("us")) + pl.duration(seconds=pl.col("source_line"))).alias(
                "event_at"
            ),
        )
    ).unique(subset=["observation_id"], keep="last", maintain_order=True)


RATINGS_CSV_COLUMNS = {"userId": "BIGINT", "movieId": "BIGINT", "rating": "DOUBLE", "timestamp": "BIGINT"}


def read_movielens_movies(directory: Path) -> pl.DataFrame:
    """movies.csv joined with links.csv, titles split into title and year (one row per film)."""
    movies = pl.read_csv(directory / "movies.csv", schema_overrides={"movieId": pl.Int64})
    links = pl.read_csv(
        directory / "links.csv",
        schema_overrides={"movieId": pl.Int64, "imdbId": pl.Utf8, "tmdbId": pl.Int64},
    )
    parts = [split_movielens_title(t) for t in movies["title"].to_list()]
    return movies.with_columns(
        pl.Series("film_title", [p[0] for p in parts], dtype=pl.Utf8),
        pl.Series("film_year", [p[2] for p in parts], dtype=pl.Int32),
    ).join(links, on="movieId", how="left")


def movielens_ratings_sql(path: Path) -> tuple[str, list[str]]:
    """A DuckDB query reading a MovieLens ``ratings.csv`` with fixed types (never through Python rows)."""
    columns = ", ".join(f"'{k}': '{v}'" for k, v in RATINGS_CSV_COLUMNS.items())
    return f"select * from read_csv(?, header = true, columns = {{{columns}}})", [str(path)]


def movielens_observations_sql(ratings_table: str, movies_table: str) -> str:
    """``movielens_observations`` as one DuckDB query over the raw tables (parameter: the scrape
    date): 32 million ratings become observations without leaving the database."""
    return f"""
        select ?::date as scrape_date, 'movielens' as source, 'movielens' as platform,
               r.userId::varchar as username, 'movielens:' || r.userId as user_key,
               'ml:' || r.userId || ':' || r.movieId as observation_id, 'rating' as kind,
               'ml:' || r.movieId as film_key, m.film_title::varchar as film_title,
               m.film_year::integer as film_year, m.tmdbId::bigint as tmdb_id, r.rating::double as rating,
               false as rewatch, null::boolean as liked,
               make_timestamp(r.timestamp * 1000000)::date as event_date,
               make_timestamp(r.timestamp * 1000000) as event_at
        from {ratings_table} r left join {movies_table} m using (movieId)
    """


RSS_SOURCE = "letterboxd_rss"


def rss_observations(items: list[dict[str, Any]], scrape_date: dt.date) -> pl.DataFrame:
    """RSS diary items (core.letterboxd.rss.parse_feed rows) as observations."""
    rows = []
    for item in items:
        tmdb_id = item.get("tmdb_id")
        film_key = (
            f"tmdb:{tmdb_id}" if tmdb_id is not None else title_film_key(item.get("film_title"), item.get("film_year"))
        )
        watched = item.get("watched_date")
        if isinstance(watched, str):
            watched = dt.date.fromisoformat(watched)
        username = str(item["username"]).lower()  # one member whatever the case (usernames.py)
        local_id = item.get("guid") or f"{film_key}:{watched or ''}"
        rows.append(
            {
                "scrape_date": scrape_date,
                "source": RSS_SOURCE,
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
            }
        )
    if not rows:
        return empty_reviews()
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return conform(frame).unique(subset=["observation_id"], keep="first", maintain_order=True)
