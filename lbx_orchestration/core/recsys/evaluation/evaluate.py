"""Score a fitted model on held-out observations (formulas in ``metrics``).

Every evaluated user is ranked against ALL catalogue items minus their own training
items. Held-out observations of users or items unknown to ``train`` are dropped and
counted; duplicates collapse as in ``data.collapse_duplicates``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions, Recommender
from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.evaluation.metrics import popular_items, ranking_metrics
from lbx_orchestration.core.recsys.topk import top_k
from lbx_orchestration.core.settings import RELEVANCE


def relevance_matrix(
    test_df: pl.DataFrame, train: Interactions, relevance: float | None = RELEVANCE
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """users x items CSR of relevant held-out pairs (in ``train``'s index) + drop counts."""
    held = build_interactions(test_df, user_ids=train.user_ids, item_ids=train.item_ids)
    assert held.ratings is not None
    rel = held.ratings.tocoo()
    if relevance is None:
        keep = np.ones(rel.nnz, dtype=bool)
    else:
        keep = ~np.isnan(rel.data) & (rel.data >= relevance)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rel.row[keep], rel.col[keep])),
        shape=held.ratings.shape,
    )
    counts = {
        "n_test_users": len(np.unique(rel.row)),
        "n_test_pairs": int(rel.nnz),
        "n_test_relevant": int(keep.sum()),
        "n_test_dropped_unknown_user": held.extra["dropped_unknown_user"],
        "n_test_dropped_unknown_item": held.extra["dropped_unknown_item"],
    }
    return matrix, counts


def evaluate(
    model: Recommender,
    train: Interactions,
    test_df: pl.DataFrame,
    k_values: Iterable[int] = (10, 20),
    relevance: float | None = RELEVANCE,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Mean ranking metrics of ``model`` (fitted on ``train.matrix``) on ``test_df``.

    Keys: ``{metric}@{k}`` for metric in ndcg, recall, precision, map, hr, coverage,
    pop_share and every k; plus ``n_users_evaluated``, ``n_users_no_relevant`` (held-out
    users without a relevant item, excluded) and the ``n_test_*`` counts.
    """
    k_values = sorted({int(k) for k in k_values})
    if not k_values or k_values[0] < 1:
        raise ValueError(f"k_values must be positive integers, got {k_values}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    relevant, counts = relevance_matrix(test_df, train, relevance)
    max_k = k_values[-1]
    test_users = np.unique(relevant.tocoo().row) if relevant.nnz else np.array([], dtype=int)
    n_no_relevant = counts["n_test_users"] - len(test_users)

    train_csr = sp.csr_matrix(train.matrix)
    tops = np.full((len(test_users), max_k), -1, dtype=np.int64)
    for start in range(0, len(test_users), batch_size):
        users = test_users[start : start + batch_size]
        scores = model.score_users(users, train_csr)
        tops[start : start + len(users)], _ = top_k(scores, max_k, exclude=train_csr[users])
    result = ranking_metrics(tops, relevant[test_users], k_values, popular_items(train_csr))
    result["n_users_no_relevant"] = n_no_relevant
    result.update(counts)
    return result
