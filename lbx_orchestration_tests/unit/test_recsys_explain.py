from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.serving.explain import (
    FALLBACK_REASON,
    explain,
    item_vectors_from_interactions,
)

TITLES = ["Alien", "Blade Runner", "Cats", "Dune", "Rec E1", "Rec E2", "Rec Neg", "Rec Mix"]
VECTORS = np.array(
    [
        [1.0, 0.0, 0.0],  # 0 Alien: rated 5
        [1.0, 0.0, 1.0],  # 1 Blade Runner: rated 4.5, cos 0.707 with e1
        [1.0, 0.0, 0.0],  # 2 Cats: rated 2 -> never a reason
        [0.0, 1.0, 0.0],  # 3 Dune: watched, unrated
        [3.0, 0.0, 0.0],  # 4 same direction as Alien
        [0.0, 2.0, 0.0],  # 5 only like Dune
        [0.0, 0.0, -1.0],  # 6 opposed to Blade Runner, orthogonal to the rest
        [1.0, 0.0, 0.9],  # 7 cos .743 with Alien (x5 = 3.7), .998 with Blade Runner (x4.5 = 4.5)
    ]
)
RATED = np.array([0, 1, 2, 3])
VALUES = np.array([5.0, 4.5, 2.0, np.nan])


def test_reasons_for_hand_built_vectors() -> None:
    reasons = explain(RATED, VALUES, np.array([4, 5, 6, 7]), VECTORS, TITLES)
    assert reasons == [
        "Because you rated Alien (5★) and Blade Runner (4.5★) highly",
        "Because you watched Dune",
        FALLBACK_REASON,
        "Because you rated Blade Runner (4.5★) and Alien (5★) highly",
    ]


def test_top_n_and_sparse_vectors() -> None:
    reasons = explain(RATED, VALUES, np.array([7, 4]), sp.csr_matrix(VECTORS), TITLES, top_n=1)
    assert reasons == [
        "Because you rated Blade Runner (4.5★) highly",
        "Because you rated Alien (5★) highly",
    ]


def test_three_reasons_are_listed_with_commas() -> None:
    rated = np.array([0, 1, 7])
    reasons = explain(rated, np.array([5.0, 4.5, 4.0]), np.array([4]), VECTORS, TITLES, top_n=3)
    # Alien 1 x 5, Blade Runner .707 x 4.5 = 3.18, Rec Mix .743 x 4 = 2.97
    assert reasons == ["Because you rated Alien (5★), Blade Runner (4.5★) and Rec Mix (4★) highly"]


def test_min_rating_threshold_controls_who_counts_as_liked() -> None:
    # with the bar at 2, Cats (2★, cos 1 with Rec E1: 2.0) joins, after Blade Runner (3.18)
    reasons = explain(RATED, VALUES, np.array([4]), VECTORS, TITLES, top_n=3, min_rating=2.0)
    assert reasons == ["Because you rated Alien (5★), Blade Runner (4.5★) and Cats (2★) highly"]
    reasons = explain(RATED, VALUES, np.array([4, 7]), VECTORS, TITLES, top_n=3, min_rating=5)
    assert reasons == ["Because you rated Alien (5★) highly"] * 2


def test_a_film_never_explains_itself() -> None:
    reasons = explain(np.array([0, 3]), np.array([5.0, np.nan]), np.array([0]), VECTORS, TITLES)
    assert reasons == [FALLBACK_REASON]


def test_user_without_films_gets_the_fallback() -> None:
    empty = np.array([], dtype=np.int64)
    assert explain(empty, np.array([]), np.array([4, 5]), VECTORS, TITLES) == [FALLBACK_REASON] * 2
    assert explain(RATED, VALUES, np.array([], dtype=np.int64), VECTORS, TITLES) == []


def test_item_vectors_from_interactions_are_unit_item_columns() -> None:
    train = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]))
    vectors = item_vectors_from_interactions(train)
    assert vectors.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(vectors.toarray(), axis=1), 1.0, rtol=1e-6)
    cosine = (vectors @ vectors.T).toarray()
    # items 0 and 1 share users 0 and 1; item 1 also has user 2: 2 / (sqrt 2 * sqrt 3)
    np.testing.assert_allclose(cosine[0, 1], 2 / np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(cosine[0, 2], 0.0)
    titles = ["A", "B", "C"]
    assert explain(np.array([0]), np.array([4.0]), np.array([1, 2]), vectors, titles) == [
        "Because you rated A (4★) highly",
        FALLBACK_REASON,
    ]


def test_bad_input_is_refused_with_the_cause() -> None:
    with pytest.raises(ValueError, match=r"user_rated_idx \(4\) and user_rated_values \(2\)"):
        explain(RATED, np.array([1.0, 2.0]), np.array([4]), VECTORS, TITLES)
    with pytest.raises(ValueError, match="titles has 2 entries for 8 items"):
        explain(RATED, VALUES, np.array([4]), VECTORS, ["a", "b"])
    with pytest.raises(IndexError, match=r"rec_idx out of range 0..7"):
        explain(RATED, VALUES, np.array([8]), VECTORS, TITLES)


def test_best_columns_matches_a_stable_descending_sort_on_finite_gains() -> None:
    from lbx_orchestration.core.recsys.serving.explain import _best_columns

    rng = np.random.default_rng(0)
    for _ in range(500):
        gain = rng.choice([-np.inf, 0.5, 1.0, 1.5, 2.0], size=(5, int(rng.integers(1, 9))))
        n = int(rng.integers(1, 4))
        expected = np.argsort(-gain, axis=1, kind="stable")[:, :n]
        got = _best_columns(gain, n)
        for row in range(gain.shape[0]):
            finite = np.isfinite(gain[row, expected[row]])
            assert (got[row][finite] == expected[row][finite]).all()


def test_reasons_are_the_same_with_sparse_and_dense_item_vectors() -> None:
    rng = np.random.default_rng(1)
    dense = (rng.random((40, 12)) < 0.3) * rng.random((40, 12))
    titles = [f"F{i}" for i in range(40)]
    rated, recs = np.arange(10), np.arange(20, 30)
    values = np.array([5.0, 4.5, 2.0, np.nan, 4.0, 3.5, 1.0, 5.0, np.nan, 4.5])
    assert explain(rated, values, recs, sp.csr_matrix(dense), titles) == explain(rated, values, recs, dense, titles)


def test_explanation_embeddings_keep_the_item_cosines() -> None:
    from lbx_orchestration.core.recsys.serving.explain import explanation_embeddings

    rng = np.random.default_rng(2)
    tastes = rng.integers(0, 4, size=300)  # users in 4 taste groups, each watching its own 20 films
    rows = [(u, 20 * t + f) for u, t in enumerate(tastes) for f in rng.choice(20, 8, replace=False)]
    train = sp.csr_matrix((np.ones(len(rows)), tuple(zip(*rows, strict=True))), shape=(300, 80))
    exact = item_vectors_from_interactions(train)
    exact_cos = (exact @ exact.T).toarray()
    small = explanation_embeddings(train, dims=8)
    assert small.shape == (80, 8)
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, rtol=1e-5)
    approx_cos = small @ small.T
    same_group = np.equal.outer(np.arange(80) // 20, np.arange(80) // 20)
    assert approx_cos[same_group].mean() > 0.7 > 0.1 > np.abs(approx_cos[~same_group]).mean()
    assert np.corrcoef(exact_cos.ravel(), approx_cos.ravel())[0, 1] > 0.9
    full = explanation_embeddings(train[:5], dims=8)  # at most `dims` users: exact
    np.testing.assert_allclose(
        full @ full.T,
        (item_vectors_from_interactions(train[:5]) @ item_vectors_from_interactions(train[:5]).T).toarray(),
        atol=1e-6,
    )


def test_a_shortlist_from_embeddings_then_exact_cosines_gives_the_exact_reasons() -> None:
    from lbx_orchestration.core.recsys.serving.explain import explanation_embeddings

    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((30, 60)) < 0.25) * 1.0)
    exact = item_vectors_from_interactions(train)
    titles = [f"F{i}" for i in range(60)]
    rated = np.arange(40)
    values = rng.choice([np.nan, 2.0, 3.5, 4.0, 4.5, 5.0], size=40)
    recs = np.arange(40, 60)
    truth = explain(rated, values, recs, exact, titles)
    # embeddings that keep every cosine (30 users <= 30 dims): a shortlist of 3 loses nothing
    faithful = explanation_embeddings(train, dims=30)
    assert explain(rated, values, recs, faithful, titles, exact_vectors=exact, shortlist=3) == truth
    # unrelated embeddings: the exact cosines still choose within the (wrong) shortlist, and a
    # shortlist as long as the rated list is the exact answer again
    noise = rng.normal(size=(60, 4))
    assert explain(rated, values, recs, noise, titles, exact_vectors=exact, shortlist=40) == truth
    noisy = explain(rated, values, recs, noise, titles, exact_vectors=exact, shortlist=3)
    assert len(noisy) == 20 and noisy != truth
