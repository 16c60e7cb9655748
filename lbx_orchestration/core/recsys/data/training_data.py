"""Reading what the models need from the warehouse (no Dagster here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.features import item_feature_matrix, tfidf_block
from lbx_orchestration.core.tables import CATALOG, INTERACTIONS, KEYWORD_TFIDF, MOVIE_FEATURES, TMDB_MOVIES
from lbx_orchestration.core.warehouse import connect, read_frame, table_exists
from lbx_orchestration.core.warehouse import exists as warehouse_exists


def training_observations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Seen films per user (rated or logged), the input of every recommender. Unordered: there
    is one row per (user, film) already, and the recommenders sort what they need."""
    return read_frame(
        con,
        f"select user_key, tmdb_id, rating, last_at as ts from {INTERACTIONS} where seen and last_at is not null",
    )


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, with_features: bool = False) -> str:
    """A hash of what a model trains on (the seen interactions; with ``with_features`` the movie
    features and keyword TF-IDF too), computed in DuckDB without reading the rows into Python."""
    parts = [
        con.execute(
            f"select count(*), sum(hash(user_key, tmdb_id, rating, last_at)) from {INTERACTIONS} "
            "where seen and last_at is not null"
        ).fetchall()[0]
    ]
    if with_features:
        parts.append(features_fingerprint(con))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def features_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A hash of what ``item_features`` reads (movie features, keyword TF-IDF), in DuckDB."""
    parts = [con.execute(f"select count(*), sum(hash(columns(*))) from {MOVIE_FEATURES}").fetchall()[0]]
    if table_exists(con, KEYWORD_TFIDF):
        parts.append(
            con.execute(f"select count(*), sum(hash(tmdb_id, keyword, weight)) from {KEYWORD_TFIDF}").fetchall()[0]
        )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def item_features(con: duckdb.DuckDBPyConnection, keyword_weight: float = 0.5) -> tuple[np.ndarray, sp.csr_matrix]:
    """Multi-hot movie features plus the keyword TF-IDF block, one row per film."""
    features = read_frame(con, f"select * from {MOVIE_FEATURES}")
    ids = features["tmdb_id"].to_numpy().astype(np.int64)
    matrix, names = item_feature_matrix(ids, features)
    if table_exists(con, KEYWORD_TFIDF):
        tfidf = read_frame(con, f"select tmdb_id, keyword, weight from {KEYWORD_TFIDF}")
        if tfidf.height:
            vocab = sorted(tfidf["keyword"].unique().to_list())
            col = {k: i for i, k in enumerate(vocab)}
            tf_ids = np.unique(tfidf["tmdb_id"].to_numpy())
            row = {int(t): i for i, t in enumerate(tf_ids)}
            block = sp.csr_matrix(
                (
                    tfidf["weight"].to_numpy(),
                    ([row[int(t)] for t in tfidf["tmdb_id"].to_list()], [col[k] for k in tfidf["keyword"].to_list()]),
                ),
                shape=(len(tf_ids), len(vocab)),
            )
            matrix, names = tfidf_block(matrix, names, ids, block, tf_ids, vocab, weight=keyword_weight)
    return ids, matrix


def vote_counts(con: duckdb.DuckDBPyConnection) -> dict[int, float]:
    """TMDb vote count per film (the cold-film protocol's popularity baseline); {} without metadata."""
    if not table_exists(con, TMDB_MOVIES):
        return {}
    rows = con.execute(f"select tmdb_id, vote_count from {TMDB_MOVIES} where vote_count is not null").fetchall()
    return {int(t): float(v) for t, v in rows}


def film_years(con: duckdb.DuckDBPyConnection) -> dict[int, int]:
    """Release year per film: TMDb's, else the catalogue's (title + year of the export)."""
    parts = (
        [f"select tmdb_id, year from {TMDB_MOVIES} where year is not null"] if table_exists(con, TMDB_MOVIES) else []
    )
    if table_exists(con, CATALOG):
        parts.append(f"select tmdb_id, year from {CATALOG} where year is not null")
    out: dict[int, int] = {}
    for query in reversed(parts):  # TMDb's year wins
        out.update({int(t): int(y) for t, y in con.execute(query).fetchall()})
    return out


def load_vote_counts(db: Path) -> dict[int, float]:
    if not warehouse_exists(db):
        raise FileNotFoundError(f"no warehouse at {db}: run `make demo` first")
    with connect(db, read_only=True) as con:
        return vote_counts(con)


#: the films the content model learns from (``select * from`` it): TMDb's flat rows, films only
CONTENT_MOVIES_SQL = f"{TMDB_MOVIES} where media_type = 'movie' or media_type is null"


def load_content_movies(db: Path) -> pl.DataFrame:
    """The flat TMDb rows the content model is fitted on, from a warehouse file (read-only)."""
    if not warehouse_exists(db):
        raise FileNotFoundError(f"no warehouse at {db}: run `make demo` first")
    with connect(db, read_only=True) as con:
        if not table_exists(con, TMDB_MOVIES):
            raise FileNotFoundError(f"{db} has no {TMDB_MOVIES}: materialize the metadata group first")
        return read_frame(con, f"select * from {CONTENT_MOVIES_SQL}")


def load_training_data(db: Path) -> tuple[pl.DataFrame, tuple[np.ndarray, sp.csr_matrix]]:
    """Observations and item features from a warehouse file (read-only), for `lbx eval` and `make eval`."""
    if not warehouse_exists(db):
        raise FileNotFoundError(f"no warehouse at {db}: run `make demo` first")
    with connect(db, read_only=True) as con:
        return training_observations(con), item_features(con)
