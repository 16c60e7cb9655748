"""Per-user train/test splits of observation frames.

All splits first collapse rewatches (``data.collapse_duplicates``) so a film is never in
both parts for the same user. A user with ``n`` distinct films holds out
``min(floor(n * frac), n - min_train)`` of them; users for whom that is 0 stay all-train.
Held-out pairs whose item never appears in the training part are dropped (cold items
cannot be ranked by collaborative models) and counted in ``.stats``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from lbx_orchestration.core.recsys.data.data import collapse_duplicates
from lbx_orchestration.core.settings import SEED


class Split(tuple):
    """``(train_df, test_df)`` that also carries ``.stats`` (counts of what was held out)."""

    stats: dict[str, Any]

    def __new__(cls, train: pl.DataFrame, test: pl.DataFrame, stats: dict[str, Any]) -> Split:
        obj = super().__new__(cls, (train, test))
        obj.stats = stats
        return obj

    @property
    def train(self) -> pl.DataFrame:
        return self[0]

    @property
    def test(self) -> pl.DataFrame:
        return self[1]


def _check_frac(name: str, frac: float) -> None:
    if not 0.0 < frac < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {frac}")


def _split_by_rank(pairs: pl.DataFrame, frac: float, min_train: int) -> Split:
    """``pairs`` has a ``_rank`` column: per-user order 0..n-1, the highest ranks held out."""
    if min_train < 1:
        raise ValueError(f"min_train must be >= 1, got {min_train}")
    pairs = pairs.with_columns(_n=pl.len().over("user_key"))
    n_hold = pl.min_horizontal((pl.col("_n") * frac).floor().cast(pl.Int64), pl.col("_n") - min_train).clip(
        lower_bound=0
    )
    pairs = pairs.with_columns(_test=pl.col("_rank") >= pl.col("_n") - n_hold)
    train = pairs.filter(~pl.col("_test")).drop("_rank", "_n", "_test")
    test = pairs.filter(pl.col("_test")).drop("_rank", "_n", "_test")
    test, dropped = _keep_known(test, train, "tmdb_id")
    return Split(train, test, {**_counts(pairs, train, test), "n_test_dropped_cold_item": dropped})


def _keep_known(test: pl.DataFrame, train: pl.DataFrame, column: str) -> tuple[pl.DataFrame, int]:
    """Held-out rows whose ``column`` value also occurs in training, and how many were dropped."""
    known = test[column].is_in(train[column].unique().implode())
    return test.filter(known), int((~known).sum())


def _counts(pairs: pl.DataFrame, train: pl.DataFrame, test: pl.DataFrame) -> dict[str, int]:
    return {
        "n_users": pairs["user_key"].n_unique(),
        "n_users_with_test": test["user_key"].n_unique(),
        "n_train": train.height,
        "n_test": test.height,
    }


def temporal_split(df: pl.DataFrame, test_frac: float = 0.2, min_train: int = 1, collapsed: bool = False) -> Split:
    """Hold out each user's latest ``test_frac`` of films by ``ts`` (ties: by tmdb_id).
    ``collapsed``: ``df`` is already ``collapse_duplicates``' output (unique and in its order)."""
    _check_frac("test_frac", test_frac)
    pairs = df if collapsed else collapse_duplicates(df)  # sorted by user, ts, film
    pairs = pairs.with_columns(_rank=pl.int_range(pl.len()).over("user_key"))
    return _split_by_rank(pairs, test_frac, min_train)


def random_split(
    df: pl.DataFrame, test_frac: float = 0.25, seed: int = SEED, min_train: int = 1, collapsed: bool = False
) -> Split:
    """Hold out a random ``test_frac`` of each user's films; same seed + data -> same split."""
    _check_frac("test_frac", test_frac)
    pairs = (df if collapsed else collapse_duplicates(df)).sort(["user_key", "tmdb_id"])
    noise = np.random.default_rng(seed).random(pairs.height)
    pairs = pairs.with_columns(_u=pl.Series(noise)).with_columns(
        _rank=pl.col("_u").rank("ordinal").over("user_key").cast(pl.Int64) - 1
    )
    return _split_by_rank(pairs.drop("_u"), test_frac, min_train)


def validation_split(
    train_df: pl.DataFrame,
    val_frac: float = 0.1,
    method: Literal["temporal", "random"] = "temporal",
    seed: int = SEED,
) -> Split:
    """Carve a validation part out of a training part: by default each user's latest
    ``val_frac`` (the same rule as ``temporal_split``, applied again)."""
    if method == "temporal":
        return temporal_split(train_df, test_frac=val_frac)
    if method == "random":
        return random_split(train_df, test_frac=val_frac, seed=seed)
    raise ValueError(f"method must be 'temporal' or 'random', got {method!r}")


def cold_film_split(df: pl.DataFrame, test_frac: float = 0.2, seed: int = SEED) -> Split:
    """Hold out EVERY interaction of a seeded random ``test_frac`` of the films.

    The held-out films (ceil(n_films x test_frac), drawn from the sorted distinct ids) never
    appear in training, so only a model that scores films from their content can rank them.
    Users left without any training film cannot be profiled: their held-out pairs are
    dropped and counted (``n_test_dropped_no_train``). ``stats["cold_films"]`` lists the
    held-out film ids.
    """
    _check_frac("test_frac", test_frac)
    pairs = collapse_duplicates(df)
    films = np.sort(pairs["tmdb_id"].unique().to_numpy())
    n_cold = min(len(films) - 1, int(np.ceil(len(films) * test_frac))) if len(films) > 1 else 0
    cold = np.sort(np.random.default_rng(seed).permutation(films)[:n_cold])
    is_cold = pl.col("tmdb_id").is_in(pl.Series(cold, dtype=pl.Int64).implode())
    train = pairs.filter(~is_cold)
    test = pairs.filter(is_cold)
    test, dropped = _keep_known(test, train, "user_key")
    stats = {
        "n_films": len(films),
        "n_cold_films": int(n_cold),
        "cold_films": cold.astype(np.int64),
        **_counts(pairs, train, test),
        "n_test_dropped_no_train": dropped,
    }
    return Split(train, test, stats)
