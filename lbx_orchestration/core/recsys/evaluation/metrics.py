"""Top-k ranking metrics with binary relevance.

Per user ``u`` with ranked list ``r_1..r_k`` (training items already excluded),
relevant held-out set ``Rel_u`` (``|Rel_u| >= 1``) and ``rel_i = 1 if r_i in Rel_u else 0``:

    DCG@k       = sum_{i=1..k} rel_i / log2(i + 1)
    IDCG@k      = sum_{i=1..min(|Rel_u|, k)} 1 / log2(i + 1)
    NDCG@k      = DCG@k / IDCG@k
    hits@k      = sum_{i=1..k} rel_i
    Recall@k    = hits@k / |Rel_u|              (not truncated to min(|Rel_u|, k))
    Precision@k = hits@k / k
    P@i         = hits@i / i
    MAP@k       = (sum_{i=1..k} P@i * rel_i) / min(|Rel_u|, k)
    HR@k        = 1 if hits@k >= 1 else 0

Each is averaged over users with at least one relevant held-out item; the others are
excluded (and counted by the caller). Two catalogue-level metrics over the same users:

    coverage@k  = |union_u top-k(u)| / n_items
    pop_share@k = (number of top-k slots holding a "popular" item) / (number of filled slots)

where "popular" = the ceil(1% * n_items) items with the most training interactions (ties
by lower item index). An empty slot (index -1: fewer than k rankable items) is never a
hit and is not counted in pop_share's denominator.

Relevance: a held-out observation is relevant when its rating >= the threshold (default
3.5); with ``relevance=None`` every held-out observation is relevant. Unrated held-out
observations are relevant only when ``relevance`` is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

METRIC_NAMES = ("ndcg", "recall", "precision", "map", "hr", "coverage", "pop_share")
#: what every report, card and serving.model_metrics row shows, in this order
HEADLINE_METRICS = ("ndcg@10", "recall@20", "precision@10", "map@10", "hr@10", "coverage@10", "pop_share@10")
#: the metric that tunes hyperparameters, picks the served model and gates it
PRIMARY_METRIC = "ndcg@10"


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def hits_matrix(top_idx: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """``hits[u, i]`` = whether ``top_idx[u, i]`` is among row ``u``'s stored entries."""
    top_idx = np.asarray(top_idx, dtype=np.int64)
    rel = sp.csr_matrix(relevant)
    if rel.shape[0] != top_idx.shape[0]:
        raise ValueError(f"{top_idx.shape[0]} ranked rows but {rel.shape[0]} relevance rows")
    hits = np.zeros(top_idx.shape, dtype=bool)
    for u in range(top_idx.shape[0]):
        items = rel.indices[rel.indptr[u] : rel.indptr[u + 1]]
        if len(items):
            hits[u] = np.isin(top_idx[u], items) & (top_idx[u] >= 0)
    return hits


def _check(hits: np.ndarray, k: int) -> np.ndarray:
    if k < 1 or hits.shape[1] < k:
        raise ValueError(f"need 1 <= k <= {hits.shape[1]} ranked positions, got k={k}")
    return np.asarray(hits[:, :k], dtype=np.float64)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    h = _check(hits, k)
    disc = _discounts(k)
    dcg = h @ disc
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(np.asarray(n_relevant), k)]
    return dcg / idcg


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return _check(hits, k).sum(axis=1) / np.asarray(n_relevant, dtype=np.float64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return _check(hits, k).sum(axis=1) / k


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    h = _check(hits, k)
    prec_at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return (prec_at_i * h).sum(axis=1) / np.minimum(np.asarray(n_relevant), k)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return (_check(hits, k).sum(axis=1) > 0).astype(np.float64)


def coverage_at_k(top_idx: np.ndarray, k: int, n_items: int) -> float:
    top = np.asarray(top_idx)[:, :k]
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else 0.0


def popular_items(train: sp.csr_matrix, share: float = 0.01) -> np.ndarray:
    """Boolean mask of the ceil(share * n_items) items with the most training users."""
    n_items = train.shape[1]
    counts = np.asarray((sp.csr_matrix(train) != 0).sum(axis=0)).ravel()
    n_top = min(n_items, max(1, math.ceil(share * n_items)))
    order = np.lexsort((np.arange(n_items), -counts))
    mask = np.zeros(n_items, dtype=bool)
    mask[order[:n_top]] = True
    return mask


def pop_share_at_k(top_idx: np.ndarray, k: int, popular: np.ndarray) -> float:
    top = np.asarray(top_idx)[:, :k]
    filled = top[top >= 0]
    return float(popular[filled].mean()) if len(filled) else 0.0


def ranking_metrics(
    top_idx: np.ndarray,
    relevant: sp.csr_matrix,
    k_values: Iterable[int],
    popular: np.ndarray,
) -> dict[str, float]:
    """Mean of every metric for every k, over rows of ``relevant`` with >= 1 entry.

    Returns ``{"ndcg@10": ..., "ndcg@10_se": ..., ..., "n_users_evaluated": n, "n_users_no_relevant": m}``
    (``_se``: the standard error of the mean over those users).
    """
    rel = sp.csr_matrix(relevant)
    n_rel = np.diff(rel.indptr)
    keep = n_rel > 0
    top = np.asarray(top_idx)[keep]
    hits = hits_matrix(top, rel[keep])
    n_rel = n_rel[keep]
    out: dict[str, float] = {}
    for k in k_values:
        if not keep.any():
            out.update({f"{m}@{k}": float("nan") for m in METRIC_NAMES})
            continue
        per_user = ndcg_at_k(hits, n_rel, k)
        out[f"ndcg@{k}"] = float(per_user.mean())
        # the standard error of that mean: what the sample of users leaves uncertain
        out[f"ndcg@{k}_se"] = (
            float(per_user.std(ddof=1) / np.sqrt(len(per_user))) if len(per_user) > 1 else float("nan")
        )
        out[f"recall@{k}"] = float(recall_at_k(hits, n_rel, k).mean())
        out[f"precision@{k}"] = float(precision_at_k(hits, k).mean())
        out[f"map@{k}"] = float(map_at_k(hits, n_rel, k).mean())
        out[f"hr@{k}"] = float(hit_rate_at_k(hits, k).mean())
        out[f"coverage@{k}"] = coverage_at_k(top, k, rel.shape[1])
        out[f"pop_share@{k}"] = pop_share_at_k(top, k, popular)
    out["n_users_evaluated"] = int(keep.sum())
    out["n_users_no_relevant"] = int((~keep).sum())
    return out
