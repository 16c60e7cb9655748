"""Seen films by title: a film a member has seen is never recommended, matched or not.

Exclusion by TMDb id misses a seen film that was never matched (or matched to another id),
so every seen film also yields title keys (:func:`match_key` of its title, and of its main
title and subtitle), and a recommendable film is excluded for a user when one of its names
meets one of the user's seen keys within one year. A main-title/subtitle key only meets a full
key ("Castle in the Sky" = "Laputa: Castle in the Sky"), never another partial one.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from lbx_orchestration.core.tmdb.normalize import match_key, partial_keys

YEAR_TOLERANCE = 1


def not_tv_clause(resolution: str) -> str:
    """A filter on ``film_key`` leaving out entries resolved as TV (a show's title must not hide
    the film of the same name)."""
    return f"film_key not in (select film_key from {resolution} where media_type = 'tv')"


KEYS_SCHEMA = {"key": pl.Utf8, "partial": pl.Boolean}


def _keys_of_titles(titles: Sequence[str]) -> pl.DataFrame:
    """title -> (key, partial) rows, computed once per distinct title."""
    rows: list[tuple[str, str, bool]] = []
    for title in dict.fromkeys(t for t in titles if t):
        full = match_key(title)
        if full:
            rows.append((title, full, False))
        rows.extend((title, key, True) for key in partial_keys(title))
    return pl.DataFrame(rows, schema={"_title": pl.Utf8, **KEYS_SCHEMA}, orient="row")


def title_keys(frame: pl.DataFrame, id_col: str, title_cols: Sequence[str], year_col: str) -> pl.DataFrame:
    """(id, key, partial, year) for every name of every row of ``frame``."""
    parts = [
        frame.select(
            pl.col(id_col), pl.col(c).cast(pl.Utf8).alias("_title"), pl.col(year_col).cast(pl.Int32).alias("year")
        )
        for c in title_cols
    ]
    names = pl.concat(parts).drop_nulls("_title").unique()
    keys = _keys_of_titles(names["_title"].to_list())
    return names.join(keys, on="_title").select(id_col, "key", "partial", "year").unique()


def seen_title_keys(seen: pl.DataFrame) -> pl.DataFrame:
    """``seen`` has user_key, film_title, film_year (one row per seen observation) ->
    (user_key, key, partial, year)."""
    return title_keys(seen.select("user_key", "film_title", "film_year"), "user_key", ["film_title"], "film_year")


def film_title_keys(films: pl.DataFrame, title_cols: Sequence[str] = ("title", "original_title")) -> pl.DataFrame:
    """``films`` has tmdb_id, year and the ``title_cols`` (missing ones are skipped) ->
    (tmdb_id, key, partial, year)."""
    cols = [c for c in title_cols if c in films.columns]
    return title_keys(films, "tmdb_id", cols, "year")


def seen_by_title(seen_keys: pl.DataFrame, film_keys: pl.DataFrame) -> pl.DataFrame:
    """(user_key, tmdb_id) of every film whose names meet a user's seen keys within
    :data:`YEAR_TOLERANCE` years (or with a year unknown on one side, for full keys only)."""
    hits = seen_keys.join(film_keys, on="key", suffix="_film")
    near = (pl.col("year") - pl.col("year_film")).abs() <= YEAR_TOLERANCE
    unknown = pl.col("year").is_null() | pl.col("year_film").is_null()
    both_full = ~pl.col("partial") & ~pl.col("partial_film")
    one_partial = ~(pl.col("partial") & pl.col("partial_film"))
    keep = (near & one_partial) | (unknown & both_full)
    return hits.filter(keep).select("user_key", "tmdb_id").unique().sort("user_key", "tmdb_id")


def seen_recommendations(recs: pl.DataFrame, seen_keys: pl.DataFrame, film_keys: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``recs`` (user_key, tmdb_id, ...) that are a film the user has seen by title."""
    pairs = seen_by_title(
        seen_keys.join(recs.select("user_key").unique(), on="user_key"),
        film_keys.join(recs.select("tmdb_id").unique(), on="tmdb_id"),
    )
    return recs.join(pairs, on=["user_key", "tmdb_id"], how="semi")
