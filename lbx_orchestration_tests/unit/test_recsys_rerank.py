from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.serving.rerank import mmr_rerank

# item 7 and item 3 point the same way; 9 and 1 are orthogonal to them and to each other
VECTORS = np.zeros((10, 3))
VECTORS[7] = [1.0, 0.0, 0.0]
VECTORS[3] = [2.0, 0.0, 0.0]
VECTORS[9] = [0.0, 1.0, 0.0]
VECTORS[1] = [0.0, 0.0, 1.0]
CANDIDATES = np.array([7, 3, 9, 1])
SCORES = np.array([10.0, 9.5, 5.0, 0.0])  # min-max normalised: 1, 0.95, 0.5, 0


def test_lambda_one_returns_the_score_order_exactly() -> None:
    rng = np.random.default_rng(0)
    candidates = rng.permutation(500)[:200]
    scores = np.round(rng.normal(size=200), 1)  # rounding creates ties
    vectors = rng.normal(size=(500, 8))
    order = candidates[np.argsort(-scores, kind="stable")]
    assert np.array_equal(mmr_rerank(candidates, scores, vectors, 50, lambda_=1.0), order[:50])
    assert np.array_equal(mmr_rerank(CANDIDATES, SCORES, VECTORS, 4, lambda_=1.0), [7, 3, 9, 1])


def test_small_lambda_skips_the_near_duplicate() -> None:
    # after 7, item 3 gains 0.3*0.95 - 0.7*1 < 0, item 9 gains 0.3*0.5, item 1 gains 0
    assert np.array_equal(mmr_rerank(CANDIDATES, SCORES, VECTORS, 4, lambda_=0.3), [7, 9, 1, 3])
    assert np.array_equal(mmr_rerank(CANDIDATES, SCORES, VECTORS, 2, lambda_=0.3), [7, 9])
    sparse = sp.csr_matrix(VECTORS)
    assert np.array_equal(mmr_rerank(CANDIDATES, SCORES, sparse, 4, lambda_=0.3), [7, 9, 1, 3])


def test_lambda_zero_second_pick_is_least_similar_to_the_first() -> None:
    rng = np.random.default_rng(1)
    candidates = np.arange(200)
    scores = rng.normal(size=200)
    vectors = rng.normal(size=(200, 16))
    picked = mmr_rerank(candidates, scores, vectors, 2, lambda_=0.0)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit[picked[0]]
    sims[picked[0]] = np.inf
    assert picked[0] == np.argmax(scores)  # all gains tie at 0: relevance breaks the tie
    assert picked[1] == np.argmin(sims)


@pytest.mark.parametrize("lambda_", [0.0, 0.3, 0.7, 0.95])
def test_200_candidates_to_50_never_duplicates(lambda_: float) -> None:
    rng = np.random.default_rng(2)
    candidates = rng.permutation(10_000)[:200]
    scores = rng.normal(size=200)
    vectors = sp.random(10_000, 64, density=0.1, format="csr", random_state=3)
    picked = mmr_rerank(candidates, scores, vectors, 50, lambda_=lambda_)
    assert picked.shape == (50,)
    assert len(set(picked.tolist())) == 50
    assert set(picked.tolist()) <= set(candidates.tolist())
    assert picked[0] == candidates[np.argmax(scores)]


def test_k_larger_than_the_candidates_returns_them_all() -> None:
    picked = mmr_rerank(CANDIDATES, SCORES, VECTORS, 10, lambda_=0.5)
    assert sorted(picked.tolist()) == [1, 3, 7, 9]
    assert mmr_rerank(CANDIDATES, SCORES, VECTORS, 0).size == 0


def test_equal_scores_and_zero_vectors_are_handled() -> None:
    picked = mmr_rerank(np.array([0, 2, 4]), np.ones(3), np.zeros((5, 2)), 3, lambda_=0.5)
    assert picked.tolist() == [0, 2, 4]


def test_bad_input_is_refused_with_the_cause() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        mmr_rerank(np.array([1, 1]), np.array([1.0, 2.0]), VECTORS, 2)
    with pytest.raises(ValueError, match=r"candidate_idx \(2\) and scores \(3\) differ"):
        mmr_rerank(np.array([1, 2]), np.ones(3), VECTORS, 2)
    with pytest.raises(ValueError, match="scores must be finite"):
        mmr_rerank(np.array([1, 2]), np.array([1.0, -np.inf]), VECTORS, 2)
    with pytest.raises(ValueError, match=r"lambda_ must be in \[0, 1\]"):
        mmr_rerank(CANDIDATES, SCORES, VECTORS, 2, lambda_=1.5)
    with pytest.raises(IndexError, match=r"candidate index out of range 0..9"):
        mmr_rerank(np.array([1, 12]), np.array([1.0, 0.0]), VECTORS, 2)


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 0.8])
def test_the_batch_picks_what_each_user_alone_would(lambda_: float) -> None:
    from lbx_orchestration.core.recsys.serving.rerank import mmr_rerank_batch

    rng = np.random.default_rng(4)
    vectors = sp.random(300, 20, density=0.2, format="csr", random_state=5)
    cand = np.stack([rng.permutation(300)[:40] for _ in range(6)])
    scores = np.round(rng.normal(size=cand.shape), 1)  # ties included
    cand[2, 30:] = -1  # a user with only 30 candidates
    cand[5, :] = -1  # and one with none
    batch = mmr_rerank_batch(cand, scores, vectors, 35, lambda_=lambda_)
    assert batch.shape == (6, 35)
    for row in range(6):
        ok = cand[row] >= 0
        alone = mmr_rerank(cand[row][ok], scores[row][ok], vectors, 35, lambda_=lambda_)
        assert batch[row][: alone.size].tolist() == alone.tolist()
        assert (batch[row][alone.size :] == -1).all()
