"""Maximal Marginal Relevance re-ranking of a recommender's candidate list."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def unit_rows(vectors: sp.spmatrix | np.ndarray) -> np.ndarray:
    """Dense float64 copy of ``vectors`` with every non-zero row scaled to unit L2 norm."""
    dense = vectors.toarray() if sp.issparse(vectors) else np.asarray(vectors)
    dense = np.array(dense, dtype=np.float64, ndmin=2)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)


def cosine_matrix(a: sp.spmatrix | np.ndarray, b: sp.spmatrix | np.ndarray, normalized: bool = False) -> np.ndarray:
    """Dense cosine similarities between the rows of ``a`` and of ``b`` (zero rows give 0).

    Sparse inputs stay sparse until the (small) product; ``normalized`` says their rows
    already have unit L2 norm (serving normalises the whole matrix once, not per user).
    """
    if sp.issparse(a) and sp.issparse(b):
        if not normalized:
            from lbx_orchestration.core.recsys.features import normalize_rows

            a, b = normalize_rows(a, "l2"), normalize_rows(b, "l2")
        return np.asarray((a @ b.T).toarray(), dtype=np.float64)
    return unit_rows(a) @ unit_rows(b).T


def mmr_rerank(
    candidate_idx: np.ndarray,
    scores: np.ndarray,
    item_vectors: sp.spmatrix | np.ndarray,
    k: int,
    lambda_: float = 0.7,
    normalized: bool = False,
) -> np.ndarray:
    """Pick ``min(k, len(candidate_idx))`` items from the candidates, greedily, by MMR.

    ``scores[j]`` is the relevance of ``candidate_idx[j]``; ``item_vectors`` is indexed by
    item index (rows: items). Each step picks the candidate maximising
    ``lambda_ * rel - (1 - lambda_) * max cosine similarity to the items already picked``
    with ``rel`` the scores min-max normalised over the candidates. Ties go to the more
    relevant, then the earlier candidate, so ``lambda_ == 1`` returns exactly the stable
    descending-score order and even ``lambda_ == 0`` starts from the top-scored item.
    Returns item indices (not positions). ``normalized``: sparse ``item_vectors`` rows
    already have unit norm.
    """
    candidate_idx = np.asarray(candidate_idx, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if candidate_idx.shape != scores.shape:
        raise ValueError(
            f"candidate_idx ({candidate_idx.size}) and scores ({scores.size}) differ in length"
        )
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (drop masked -inf candidates first)")
    if np.unique(candidate_idx).size != candidate_idx.size:
        raise ValueError("candidate_idx contains duplicate items")
    n_pick = min(k, candidate_idx.size)
    if n_pick == 0:
        return np.empty(0, dtype=np.int64)
    if lambda_ == 1.0:
        return candidate_idx[np.argsort(-scores, kind="stable")[:n_pick]]
    n_items = item_vectors.shape[0]
    if candidate_idx.min() < 0 or candidate_idx.max() >= n_items:
        raise IndexError(f"candidate index out of range 0..{n_items - 1}")

    span = scores.max() - scores.min()
    rel = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    candidates = item_vectors[candidate_idx]
    sims = cosine_matrix(candidates, candidates, normalized=normalized)
    max_sim = np.zeros(candidate_idx.size)  # nothing picked yet
    available = np.ones(candidate_idx.size, dtype=bool)
    picked = np.empty(n_pick, dtype=np.int64)
    for step in range(n_pick):
        gain = lambda_ * rel - (1.0 - lambda_) * max_sim
        gain[~available] = -np.inf
        tied = np.flatnonzero(gain == gain.max())
        best = int(tied[np.argmax(rel[tied])])
        picked[step] = best
        available[best] = False
        max_sim = sims[best].copy() if step == 0 else np.maximum(max_sim, sims[best])
    return candidate_idx[picked]
