"""Everything serving needs besides the model, read once from the warehouse (no Dagster here).

Used by the ``user_recommendations`` asset (every user) and by fold-in (one new user,
without retraining).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.recsys.data.data import Confidence
from lbx_orchestration.core.recsys.data.derived import cached_array, cached_frame, cached_sparse, digest
from lbx_orchestration.core.recsys.data.features import normalize_rows
from lbx_orchestration.core.recsys.data.training_data import features_fingerprint, item_features
from lbx_orchestration.core.recsys.evaluation.protocol import align_item_features
from lbx_orchestration.core.recsys.models.pipeline import TrainedModel
from lbx_orchestration.core.recsys.serving.explain import (
    EMBED_DIMS,
    explanation_embeddings,
    item_vectors_from_interactions,
)
from lbx_orchestration.core.recsys.serving.serve import ItemSide, ServingPolicy, UserSide, recommend_all, user_rows
from lbx_orchestration.core.seen import (
    film_title_keys,
    not_tv_clause,
    seen_by_title,
    seen_recommendations,
    seen_title_keys,
)
from lbx_orchestration.core.tables import CATALOG, INTERACTIONS, RESOLUTION, REVIEWS, TMDB_MOVIES
from lbx_orchestration.core.warehouse import column_exists, read_frame

OUTPUT_COLUMNS = (
    "username",
    "source",
    "user_key",
    "rank",
    "tmdb_id",
    "title",
    "year",
    "score",
    "reason",
    "genres",
    "decade",
    "model",
    "model_version",
    "generated_at",
)


@dataclass
class ServingInputs:
    trained: TrainedModel
    films: pl.DataFrame  # tmdb_id, title, year, genres, decade: one row per model item, in order
    allowed: np.ndarray
    mmr_vectors: sp.csr_matrix  # film features, rows of unit L2 norm
    explain_vectors: np.ndarray  # CF item embeddings (explanation_embeddings): the shortlist
    explain_exact: sp.csr_matrix  # unit item vectors of the interactions: the choice
    interactions: pl.DataFrame
    policy: ServingPolicy
    seen_keys: pl.DataFrame  # (user_key, key, partial, year): every seen film's title keys
    film_keys: pl.DataFrame  # (tmdb_id, key, partial, year): every model item's names

    @property
    def titles(self) -> list[str]:
        return self.films["title"].to_list()

    def item_side(self) -> ItemSide:
        return ItemSide(self.titles, self.allowed, self.mmr_vectors, self.explain_vectors, self.explain_exact)


def aligned(frame: pl.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, value: str | None) -> sp.csr_matrix:
    """A users x items matrix of ``frame`` (user_key, tmdb_id[, value]) in the model's order."""
    users = pl.DataFrame({"user_key": np.asarray(user_ids).astype(str), "_u": np.arange(len(user_ids))})
    items = pl.DataFrame({"tmdb_id": np.asarray(item_ids, dtype=np.int64), "_i": np.arange(len(item_ids))})
    hits = frame.join(users, on="user_key").join(items, on="tmdb_id")
    vals = hits[value].cast(pl.Float64).fill_null(np.nan).to_numpy() if value else np.ones(hits.height)
    return sp.csr_matrix((vals, (hits["_u"].to_numpy(), hits["_i"].to_numpy())), shape=(len(user_ids), len(item_ids)))


def confidence_rows(seen: pl.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix:
    """Users' seen films (user_key, tmdb_id, rating) as the confidence rows a model was trained
    on: what folding a user into a model starts from."""
    rows = aligned(seen, user_ids, item_ids, "rating")
    rows.data = Confidence()(rows.data).astype(np.float32)
    return rows


TITLE_COLUMNS = ("title", "title_tmdb", "original_title")


def read_seen_title_keys(con: duckdb.DuckDBPyConnection, users: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Title keys of every film each user has seen (matched to TMDb or not); ``users``: only
    this user or these users."""
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    where = f"kind in ({kinds}) and film_title is not null"
    if column_exists(con, RESOLUTION, "media_type"):
        where += " and " + not_tv_clause(RESOLUTION)
    keys = [users] if isinstance(users, str) else None if users is None else list(users)
    seen = read_frame(
        con,
        f"select distinct user_key, film_title, film_year from {REVIEWS} where {where}"
        + ("" if keys is None else " and list_contains(?::varchar[], user_key)"),
        None if keys is None else [keys],
    )
    return seen_title_keys(seen)


def seen_by_title_count(con: duckdb.DuckDBPyConnection, recs: pl.DataFrame) -> int:
    """How many of ``recs`` (user_key, tmdb_id, title, year) are a film their user has seen,
    by normalised title and year (the ``no_seen_films`` checks)."""
    if recs.is_empty():
        return 0
    keys = read_seen_title_keys(con, recs["user_key"].unique().to_list())  # not 200,000 raters' titles
    names = recs.select("tmdb_id", "title", "year").unique("tmdb_id")
    movies = read_frame(con, f"select tmdb_id, original_title from {TMDB_MOVIES}")
    films = names.join(movies, on="tmdb_id", how="left")
    return seen_recommendations(recs, keys, film_title_keys(films, ("title", "original_title"))).height


def decade(year: pl.Expr) -> pl.Expr:
    """A film's decade label: 'unknown', 'pre_1950', else '1950s', '1960s' ... (uncapped).

    dbt_features/models/staging/stg_movies.sql computes the same label in SQL (the ``decade``
    feature family); a unit test holds the two together.
    """
    return (
        pl.when(year.is_null())
        .then(pl.lit("unknown"))
        .when(year < 1950)
        .then(pl.lit("pre_1950"))
        .otherwise(((year // 10) * 10).cast(pl.Utf8) + "s")
    )


def load_serving_inputs(
    con: duckdb.DuckDBPyConnection,
    trained: TrainedModel,
    policy: ServingPolicy,
    min_vote_count: int = 0,
    users: Sequence[str] | None = None,
) -> ServingInputs:
    """What serving needs beside the model. ``users``: read only these users' films (the
    members a refresh writes lists for; none for onboarding, which reads the member's own):
    at ML-32M size everyone's films and seen titles do not fit in memory."""
    item_ids = trained.interactions.item_ids
    interactions = read_frame(
        con,
        f"select user_key, tmdb_id, rating, seen, on_watchlist from {INTERACTIONS}"
        + ("" if users is None else " where list_contains(?::varchar[], user_key)"),
        None if users is None else [list(users)],
    )
    movies = read_frame(
        con, f"select tmdb_id, title, original_title, year, media_type, vote_count, genres from {TMDB_MOVIES}"
    )
    catalog = read_frame(con, f"select tmdb_id, title, year from {CATALOG}")
    info = pl.DataFrame({"tmdb_id": item_ids}).join(
        catalog.join(movies, on="tmdb_id", how="full", coalesce=True, suffix="_tmdb"), on="tmdb_id", how="left"
    )
    year = pl.coalesce("year_tmdb", "year")
    films = info.select(
        "tmdb_id",
        pl.coalesce("title_tmdb", "title", pl.format("TMDb {}", pl.col("tmdb_id"))).alias("title"),
        year.cast(pl.Int32).alias("year"),
        pl.col("genres").fill_null([]).alias("genres"),
        decade(year).alias("decade"),
    )
    names = info.select("tmdb_id", *TITLE_COLUMNS, year.cast(pl.Int32).alias("year"))
    allowed = (
        (info["media_type"].fill_null("movie") == "movie")
        & (info["vote_count"].fill_null(min_vote_count) >= min_vote_count)
    ).to_numpy()
    return ServingInputs(
        trained=trained,
        films=films,
        allowed=allowed,
        mmr_vectors=cached_sparse(  # reading and building the features took a second at ML-32M size
            trained.path,
            "mmr",
            lambda: normalize_rows(align_item_features(item_ids, item_features(con)), "l2"),
            key=features_fingerprint(con),
        ),
        explain_vectors=cached_array(
            trained.path, f"explain-{EMBED_DIMS}", lambda: explanation_embeddings(trained.interactions.matrix)
        ),
        explain_exact=cached_sparse(
            trained.path, "explain-exact", lambda: item_vectors_from_interactions(trained.interactions.matrix)
        ),
        interactions=interactions,
        policy=policy,
        seen_keys=read_seen_title_keys(con, users),
        film_keys=cached_frame(
            trained.path, "title-keys", digest(names), lambda: film_title_keys(names, TITLE_COLUMNS)
        ),
    )


def _finish(recs: pl.DataFrame, inputs: ServingInputs) -> pl.DataFrame:
    parts = pl.col("user_key").str.split_exact(":", 1).struct
    return (
        recs.join(inputs.films, on="tmdb_id", how="left")
        .with_columns(
            parts.field("field_0").alias("source"),
            parts.field("field_1").alias("username"),
            pl.lit(inputs.trained.name).alias("model"),
            pl.lit(inputs.trained.version).alias("model_version"),
            pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)).alias("generated_at"),
        )
        .select(OUTPUT_COLUMNS)
        .sort("user_key", "rank")
    )


def _seen_matrix(
    seen_frame: pl.DataFrame, by_title: pl.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray
) -> sp.csr_matrix:
    """Seen by id or by title: both are excluded from the lists (ratings stay id-only)."""
    both = pl.concat(
        [
            seen_frame.select("user_key", pl.col("tmdb_id").cast(pl.Int64)),
            by_title.select("user_key", pl.col("tmdb_id").cast(pl.Int64)),
        ]
    ).unique()
    return aligned(both, user_ids, item_ids, None)


def recommend_trained(inputs: ServingInputs, user_keys: list[str] | None = None) -> pl.DataFrame:
    """Top-N for users the model was trained on (``user_keys``; default every one of them)."""
    t = inputs.trained
    user_ids, item_ids = t.interactions.user_ids, t.interactions.item_ids
    users = _user_side(inputs, inputs.interactions, inputs.seen_keys, user_ids)
    rows = None if user_keys is None else _rows_of(user_ids, user_keys)
    recs = recommend_all(t.model, t.interactions.matrix, item_ids, users, inputs.item_side(), inputs.policy, rows)
    return _finish(recs, inputs)


def _user_side(inputs: ServingInputs, frame: pl.DataFrame, seen_keys: pl.DataFrame, keys: np.ndarray) -> UserSide:
    """The films of the users ``keys`` (rows in that order) from ``frame`` (user_key, tmdb_id,
    rating, seen, on_watchlist) and their seen films' title keys."""
    item_ids = inputs.trained.interactions.item_ids
    seen_frame = frame.filter(pl.col("seen"))
    seen = _seen_matrix(seen_frame, seen_by_title(seen_keys, inputs.film_keys), keys, item_ids)
    watchlist = aligned(frame.filter(pl.col("on_watchlist") & ~pl.col("seen")), keys, item_ids, None)
    return UserSide(keys, seen, watchlist, aligned(seen_frame, keys, item_ids, "rating"))


def _rows_of(user_ids: np.ndarray, user_keys: list[str]) -> np.ndarray:
    position = {str(k): i for i, k in enumerate(user_ids)}
    return np.array([position[k] for k in user_keys if k in position], dtype=np.int64)


def fold_in_user(
    inputs: ServingInputs, user_key: str, observations: pl.DataFrame, seen_keys: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Top-N for a user the model never saw, from ``observations`` (tmdb_id, rating, seen,
    on_watchlist) and ``seen_keys`` (their seen films' title keys; default: from ``inputs``):
    the model folds the user in (ALS recalculate_user, LightFM's ridge fallback, item models
    directly) without retraining."""
    t = inputs.trained
    keys = np.array([user_key], dtype=object)
    frame = observations.with_columns(pl.lit(user_key).alias("user_key"))
    if seen_keys is None:
        seen_keys = inputs.seen_keys.filter(pl.col("user_key") == user_key)
    users = _user_side(inputs, frame, seen_keys, keys)
    row = confidence_rows(frame.filter(pl.col("seen")), keys, t.interactions.item_ids)
    scores = np.asarray(t.model.fold_in(sp.csr_matrix(row)), dtype=np.float64)[None, :]
    recs = user_rows(t.model, np.array([0]), row, users, inputs.item_side(), inputs.policy, scores=scores)
    recs = recs.with_columns(pl.Series("tmdb_id", t.interactions.item_ids[recs["tmdb_id"].to_numpy()], dtype=pl.Int64))
    return _finish(recs, inputs)
