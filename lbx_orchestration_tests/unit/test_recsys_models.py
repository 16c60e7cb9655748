"""Baseline models on synthetic data with planted structure, persistence and fold-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.split import random_split
from lbx_orchestration.core.recsys.evaluation.evaluate import evaluate
from lbx_orchestration.core.recsys.models import (
    MODEL_REGISTRY,
    SEARCH_SPACES,
    create_model,
    load_model,
)
from lbx_orchestration.core.recsys.models.ease import EASERecommender
from lbx_orchestration.core.recsys.topk import top_k

N_USERS, N_CLUSTERS, ITEMS_PER_CLUSTER = 240, 4, 30
MY_MODELS = ("popularity", "itemknn", "ease", "als")
SMALL = {
    "popularity": {},
    "itemknn": {"k": 20, "shrink": 5.0},
    "ease": {"l2": 20.0},
    "als": {"factors": 16, "regularization": 0.1, "iterations": 10, "alpha": 10.0},
}


def planted_observations(seed: int = 0) -> pl.DataFrame:
    """Each user belongs to one of 4 taste clusters of 30 films and watches 15 films of
    their cluster (skewed towards the cluster's first films) plus 2 films at random."""
    rng = np.random.default_rng(seed)
    n_items = N_CLUSTERS * ITEMS_PER_CLUSTER
    within = 1.0 / np.arange(1, ITEMS_PER_CLUSTER + 1) ** 0.8
    within /= within.sum()
    rows = []
    for u in range(N_USERS):
        cluster = u % N_CLUSTERS
        own = cluster * ITEMS_PER_CLUSTER + rng.choice(ITEMS_PER_CLUSTER, size=15, replace=False, p=within)
        noise = rng.choice(n_items, size=2, replace=False)
        for day, item in enumerate(np.unique(np.concatenate([own, noise]))):
            rating = None if rng.random() < 0.2 else float(rng.choice([3.0, 3.5, 4.0, 4.5, 5.0]))
            rows.append((f"u{u}", 1000 + int(item), rating, datetime(2024, 1, 1) + timedelta(day)))
    return pl.DataFrame(rows, schema=["user_key", "tmdb_id", "rating", "ts"], orient="row").with_columns(
        pl.col("rating").cast(pl.Float64)
    )


class RandomScores:
    name = "random"
    params: dict = {}

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        rng = np.random.default_rng(123)
        return rng.random((len(user_idx), train.shape[1]))


@pytest.fixture(scope="module")
def planted() -> tuple[Interactions, pl.DataFrame]:
    train_df, test_df = random_split(planted_observations(), test_frac=0.25, seed=1)
    return build_interactions(train_df), test_df


@pytest.fixture(scope="module")
def fitted(planted: tuple[Interactions, pl.DataFrame]) -> dict[str, object]:
    train, _ = planted
    return {name: create_model(name, SMALL[name]).fit(train.matrix) for name in MY_MODELS}


@pytest.fixture(scope="module")
def ndcg(planted, fitted) -> dict[str, float]:
    train, test_df = planted
    models = {**fitted, "random": RandomScores()}
    return {name: evaluate(m, train, test_df, relevance=None)["ndcg@10"] for name, m in models.items()}


def test_popularity_beats_random(ndcg: dict[str, float]) -> None:
    assert ndcg["popularity"] > ndcg["random"] + 0.03


@pytest.mark.parametrize("name", ["itemknn", "ease", "als"])
def test_personalised_models_find_the_planted_clusters(name: str, ndcg: dict[str, float]) -> None:
    # popularity can only guess the cluster (about 1 in 4); these models see it
    assert ndcg[name] > ndcg["popularity"] + 0.1
    assert ndcg[name] > 2 * ndcg["random"]


@pytest.mark.parametrize("name", MY_MODELS)
def test_save_load_round_trip_gives_identical_scores(
    name: str,
    planted,
    fitted,
    tmp_path: Path,
) -> None:
    train, _ = planted
    model = fitted[name]
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert loaded.params == model.params
    users = np.arange(0, train.n_users, 7)
    assert np.array_equal(loaded.score_users(users, train.matrix), model.score_users(users, train.matrix))
    row = train.matrix[5]
    assert np.allclose(loaded.fold_in(row), model.fold_in(row))


@pytest.mark.parametrize("name", ["popularity", "itemknn", "ease"])
def test_fold_in_equals_training_scores_for_memory_based_models(
    name: str,
    planted,
    fitted,
) -> None:
    train, _ = planted
    for u in (0, 17, 101):
        expected = fitted[name].score_users(np.array([u]), train.matrix)[0]
        assert np.allclose(fitted[name].fold_in(train.matrix[u]), expected, rtol=1e-5)


def test_als_fold_in_ranks_like_trained_user_factors(planted, fitted) -> None:
    train, _ = planted
    als = fitted["als"]
    users = np.arange(0, train.n_users, 3)
    trained, _ = top_k(als.score_users(users, train.matrix), 10, exclude=train.matrix[users])
    overlaps = []
    for row_no, u in enumerate(users):
        folded, _ = top_k(als.fold_in(train.matrix[u]), 10, exclude=train.matrix[u])
        overlaps.append(len(set(folded[0]) & set(trained[row_no])) / 10)
    assert np.mean(overlaps) >= 0.8


def test_ease_restricts_to_most_rated_items_and_never_recommends_the_rest() -> None:
    # item 0: 3 users, item 1: 2 users, item 2: 1 user; max_items=2 keeps items 0 and 1
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=np.float32))
    model = EASERecommender(l2=1.0, max_items=2).fit(train)
    scores = model.score_users(np.arange(3), train)
    assert np.isneginf(scores[:, 2]).all()
    assert np.isfinite(scores[:, :2]).all()


def test_registry_and_search_spaces_cover_every_model() -> None:
    expected = {
        "popularity",
        "itemknn",
        "ease",
        "als",
        "lightfm_cf",
        "lightfm_cb",
        "lightfm_hybrid",
        "content",
    }
    assert expected <= set(MODEL_REGISTRY)
    assert set(SEARCH_SPACES) == set(MODEL_REGISTRY)
    for name in ("itemknn", "ease", "als"):
        assert 4 <= len(SEARCH_SPACES[name]) <= 6
        for config in SEARCH_SPACES[name]:
            params = create_model(name, config).params
            assert {k: params[k] for k in config} == config


def test_load_errors_name_the_cause(tmp_path: Path, planted, fitted) -> None:
    with pytest.raises(FileNotFoundError, match="model.json is missing"):
        load_model(tmp_path / "nothing")
    fitted["ease"].save(tmp_path / "ease")
    with pytest.raises(ValueError, match="holds a 'ease' model, not 'als'; use load_model"):
        type(fitted["als"]).load(tmp_path / "ease")


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="ALSRecommender is not fitted: call fit\\(\\) first"):
        create_model("als").score_users(np.array([0]), sp.csr_matrix((1, 3)))


def test_itemknn_dense_and_sparse_products_find_the_same_neighbours(monkeypatch: pytest.MonkeyPatch) -> None:
    from lbx_orchestration.core.recsys.models import itemknn

    train = build_interactions(planted_observations()).matrix
    dense = itemknn.ItemKNNRecommender(k=10, shrink=5.0).fit(train).similarity
    monkeypatch.setattr(itemknn, "DENSE_LIMIT", 0)
    monkeypatch.setattr(itemknn, "BLOCK_FLOATS", 1_000)  # many small blocks
    sparse = itemknn.ItemKNNRecommender(k=10, shrink=5.0).fit(train).similarity
    assert dense is not None and sparse is not None
    assert dense.nnz == sparse.nnz and 0 < dense.nnz <= 10 * train.shape[1]
    np.testing.assert_allclose(dense.toarray(), sparse.toarray(), rtol=1e-5, atol=1e-7)
    assert (np.diff(dense.tocsc().indptr) <= 10).all()  # at most k neighbours per film
    assert dense.diagonal().sum() == 0


@pytest.mark.parametrize(("n_films", "k"), [(3000, 100), (500, 10), (50, 100)])
def test_itemknn_keeps_each_rows_k_largest_positive_similarities(n_films: int, k: int) -> None:
    from lbx_orchestration.core.recsys.models.itemknn import _top_positive

    rng = np.random.default_rng(n_films)
    sim = (rng.permutation(40 * n_films).reshape(40, n_films) / (40 * n_films)).astype(np.float32)  # no ties
    sim[rng.random(sim.shape) < 0.7] = 0.0  # most pairs of films share no rater
    sim[3] = 0.0  # a film that shares no rater with any other
    sim[5] = 0.0
    sim[5, :7] = [0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.4]  # fewer positive values than k
    row, col, val = _top_positive(sim, k)
    for r in range(sim.shape[0]):
        positive = np.flatnonzero(sim[r] > 0)
        expected = positive[np.argsort(-sim[r, positive])[:k]]
        assert sorted(col[row == r]) == sorted(expected), r
    assert not (row == 3).any() and (row == 5).sum() == min(7, k)
    np.testing.assert_array_equal(val, sim[row, col])
