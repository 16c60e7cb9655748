"""Every warehouse table lbx writes or reads, by its one name, and the served-model lookup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from lbx_orchestration.core.warehouse import table_exists

# raw: what the sources gave, as they gave it
MOVIELENS_RATINGS = "raw.movielens_ratings"
MOVIELENS_MOVIES = "raw.movielens_movies"
EXPORT_ENTRIES = "raw.letterboxd_export_entries"
EXPORT_IMPORTS = "raw.letterboxd_imports"  # one row per export file ever imported (append-only)
EXPORT_LISTS = "raw.letterboxd_lists"  # every film of every list in a member's newest export
MEMBER_KEYS = "raw.member_keys"  # who may change a member from the web: one key hash per member

# ingest: one observation table, partitioned by scrape date, and the users
REVIEWS = "ingest.reviews"
USERS = "ingest.users"

# metadata: film resolution and TMDb
RESOLUTION = "metadata.film_resolution"
CATALOG = "metadata.film_catalog"
UNRESOLVED = "metadata.unresolved_films"  # refused, not found and ambiguous films, with candidates
OVERRIDES = "metadata.film_overrides"  # members' corrections (`lbx match`): win over search
TMDB_RAW = "metadata.tmdb_raw"
TMDB_MOVIES = "metadata.tmdb_movies"
TMDB_CATALOG = "metadata.tmdb_catalog"  # films by release month (tmdb_catalog), wider than the community

# tmdb: the cache of raw TMDb responses, so an interrupted live fetch resumes
TMDB_CACHE = "tmdb.raw_responses"

# staging (dbt views over ingest and metadata: always current, no run needed)
STG_REVIEWS = "staging.stg_reviews"

# features (dbt, plus keyword TF-IDF)
INTERACTIONS = "features.user_item_interactions"
MOVIE_FEATURES = "features.movie_features"
KEYWORD_TFIDF = "features.keyword_tfidf"

# serving
MODEL_METRICS = "serving.model_metrics"
RECOMMENDATIONS = "serving.user_recommendations"
GENRE_PICKS = "serving.genre_picks"
NEW_FOR_YOU = "serving.new_for_you"


@dataclass(frozen=True)
class ServedModel:
    run_id: str
    model: str
    version: str
    path: Path


def _served(con: duckdb.DuckDBPyConnection, where: str) -> ServedModel | None:
    if not table_exists(con, MODEL_METRICS):
        return None
    rows = con.execute(
        f"select run_id, model, version, path from {MODEL_METRICS} where {where} order by evaluated_at desc limit 1"
    ).fetchall()
    return ServedModel(rows[0][0], rows[0][1], rows[0][2], Path(rows[0][3])) if rows else None


def accepted_model(con: duckdb.DuckDBPyConnection) -> ServedModel | None:
    """The model members' lists come from: the newest served model that passed the gate."""
    return _served(con, "served and accepted")


def latest_challenger(con: duckdb.DuckDBPyConnection) -> ServedModel | None:
    """The newest model picked to serve, whether or not the gate accepted it yet."""
    return _served(con, "served")


def protected_model_paths(con: duckdb.DuckDBPyConnection) -> set[Path]:
    """Model folders that must never be pruned: the accepted champion and the newest challenger."""
    return {m.path for m in (accepted_model(con), latest_challenger(con)) if m is not None}
