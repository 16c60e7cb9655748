from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.topk import top_k


def test_top_k_matches_a_full_sort_and_never_returns_excluded_items() -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(50, 200))
    exclude = sp.random(50, 200, density=0.3, random_state=3, format="csr")
    original = scores.copy()
    idx, vals = top_k(scores, 15, exclude=exclude)
    assert np.array_equal(scores, original)  # input untouched
    dense_ex = exclude.toarray() != 0
    for u in range(50):
        allowed = np.flatnonzero(~dense_ex[u])
        expected = allowed[np.argsort(-scores[u, allowed], kind="stable")][:15]
        assert idx[u].tolist() == expected.tolist()
        assert not dense_ex[u, idx[u]].any()
        assert np.allclose(vals[u], scores[u, idx[u]])


def test_top_k_pads_with_minus_one_when_too_few_items_remain() -> None:
    scores = np.array([[0.1, 0.9, 0.5, np.nan]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0]]))
    idx, vals = top_k(scores, 4, exclude=exclude)
    # item 1 excluded, item 3 NaN -> only 2 then 0 remain
    assert idx.tolist() == [[2, 0, -1, -1]]
    assert vals[0, :2].tolist() == [0.5, 0.1]
    assert np.isneginf(vals[0, 2:]).all()


def test_top_k_k_larger_than_catalogue_and_ties_by_index() -> None:
    idx, _ = top_k(np.array([[1.0, 2.0, 2.0]]), 5)
    assert idx.tolist() == [[1, 2, 0, -1, -1]]


def test_top_k_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        top_k(np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match=r"exclude has shape \(2, 3\) but scores have shape"):
        top_k(np.zeros((1, 3)), 1, exclude=sp.csr_matrix((2, 3)))
