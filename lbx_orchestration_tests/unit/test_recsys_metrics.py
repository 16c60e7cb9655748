"""Every metric on tiny cases worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.evaluation.evaluate import evaluate
from lbx_orchestration.core.recsys.evaluation.metrics import (
    coverage_at_k,
    hit_rate_at_k,
    hits_matrix,
    map_at_k,
    ndcg_at_k,
    pop_share_at_k,
    popular_items,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # 1.58496...

# Ranked list for one user: items 10, 11, 12, 13, 14; relevant = {10, 12, 99} (|rel| = 3).
# rel_i = [1, 0, 1, 0, 0]
RANKED = np.array([[10, 11, 12, 13, 14]])
RELEVANT = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [10, 12, 99])), shape=(1, 100))


@pytest.fixture
def hits() -> np.ndarray:
    return hits_matrix(RANKED, RELEVANT)


def test_hits_matrix_marks_relevant_positions(hits: np.ndarray) -> None:
    assert hits.tolist() == [[True, False, True, False, False]]


def test_ndcg_by_hand(hits: np.ndarray) -> None:
    # DCG@5 = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG@5 over min(3, 5) = 3 positions = 1 + 1/log2(3) + 1/log2(4) = 1.5 + 1/1.58496
    expected5 = 1.5 / (1.5 + 1 / LOG2_3)
    assert ndcg_at_k(hits, np.array([3]), 5)[0] == pytest.approx(expected5)
    assert expected5 == pytest.approx(0.70392, abs=1e-5)
    # DCG@2 = 1 ; IDCG@2 = 1 + 1/log2(3)
    assert ndcg_at_k(hits, np.array([3]), 2)[0] == pytest.approx(1 / (1 + 1 / LOG2_3))


def test_recall_is_not_truncated_and_precision_divides_by_k(hits: np.ndarray) -> None:
    assert recall_at_k(hits, np.array([3]), 5)[0] == pytest.approx(2 / 3)  # 2 hits / 3 relevant
    assert recall_at_k(hits, np.array([3]), 2)[0] == pytest.approx(1 / 3)
    assert precision_at_k(hits, 5)[0] == pytest.approx(2 / 5)
    assert precision_at_k(hits, 2)[0] == pytest.approx(1 / 2)


def test_map_by_hand(hits: np.ndarray) -> None:
    # P@1 = 1/1 at the hit in rank 1, P@3 = 2/3 at the hit in rank 3; / min(3, 5) = 3
    assert map_at_k(hits, np.array([3]), 5)[0] == pytest.approx((1 + 2 / 3) / 3)
    # k = 2: only the rank-1 hit; / min(3, 2) = 2
    assert map_at_k(hits, np.array([3]), 2)[0] == pytest.approx(1 / 2)


def test_hit_rate(hits: np.ndarray) -> None:
    assert hit_rate_at_k(hits, 5)[0] == 1.0
    miss = np.zeros((1, 5), dtype=bool)
    assert hit_rate_at_k(miss, 5)[0] == 0.0
    assert ndcg_at_k(miss, np.array([2]), 5)[0] == 0.0


def test_more_relevant_than_k() -> None:
    # 12 relevant, k = 10, all 10 slots hit: IDCG over min(12, 10) = 10 slots -> NDCG = 1,
    # MAP = 10 * 1 / 10 = 1, Recall = 10 / 12 (not truncated to min(|rel|, k)).
    all_hit = np.ones((1, 10), dtype=bool)
    assert ndcg_at_k(all_hit, np.array([12]), 10)[0] == pytest.approx(1.0)
    assert map_at_k(all_hit, np.array([12]), 10)[0] == pytest.approx(1.0)
    assert recall_at_k(all_hit, np.array([12]), 10)[0] == pytest.approx(10 / 12)


def test_coverage_counts_distinct_items_over_catalogue() -> None:
    # union of {0, 1} and {1, 2} = 3 items out of 10; the empty slot (-1) is not an item
    assert coverage_at_k(np.array([[0, 1], [1, 2], [2, -1]]), 2, 10) == pytest.approx(0.3)


def test_pop_share_uses_top_one_percent_of_training_items() -> None:
    # 150 items -> ceil(1.5) = 2 popular items. Item 5 has 3 users, item 7 has 2,
    # items 1 and 2 have 1 each -> popular = {5, 7}.
    rows = [0, 1, 2, 0, 1, 0, 1]
    cols = [5, 5, 5, 7, 7, 1, 2]
    train = sp.csr_matrix((np.ones(7), (rows, cols)), shape=(3, 150))
    popular = popular_items(train)
    assert np.flatnonzero(popular).tolist() == [5, 7]
    # filled slots: 5, 1, 7, 5, 2 -> popular among them: 5, 7, 5 -> 3 / 5
    top = np.array([[5, 1], [7, 5], [2, -1]])
    assert pop_share_at_k(top, 2, popular) == pytest.approx(3 / 5)


def test_ranking_metrics_excludes_users_without_relevant_items() -> None:
    # user 0: ranked [1, 2], relevant {2}: hit at rank 2 -> NDCG@2 = (1/log2(3)) / 1
    # user 1: no relevant item -> excluded, counted
    # user 2: ranked [3, 4], relevant {3}: NDCG@2 = 1
    top = np.array([[1, 2], [1, 2], [3, 4]])
    relevant = sp.csr_matrix((np.ones(2), ([0, 2], [2, 3])), shape=(3, 5))
    out = ranking_metrics(top, relevant, [2], popular=np.zeros(5, dtype=bool))
    assert out["n_users_evaluated"] == 2
    assert out["n_users_no_relevant"] == 1
    assert out["ndcg@2"] == pytest.approx((1 / LOG2_3 + 1) / 2)
    assert out["hr@2"] == 1.0
    assert out["precision@2"] == pytest.approx(0.5)
    assert out["coverage@2"] == pytest.approx(4 / 5)  # items 1, 2, 3, 4 of 5


def test_k_larger_than_ranked_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="need 1 <= k <= 5 ranked positions, got k=6"):
        ndcg_at_k(np.zeros((1, 5), dtype=bool), np.array([1]), 6)


class FixedScores:
    """A 'model' whose scores are given: lets evaluate() be checked by hand."""

    name = "fixed"
    params: dict = {}

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def fit(self, train, item_features=None):
        return self

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return self.scores[user_idx]


def _obs(rows: list[tuple[str, int, float | None, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_key": [r[0] for r in rows],
            "tmdb_id": [r[1] for r in rows],
            "rating": [r[2] for r in rows],
            "ts": [datetime(2024, 1, r[3]) for r in rows],
        },
        schema_overrides={"rating": pl.Float64},
    )


def test_evaluate_by_hand_with_and_without_relevance_threshold() -> None:
    # Items 100..104 (indices 0..4). Both users trained on item 100 (index 0, the top score).
    train = Interactions(
        user_ids=np.array(["a", "b"], dtype=object),
        item_ids=np.arange(100, 105, dtype=np.int64),
        matrix=sp.csr_matrix((np.ones(2), ([0, 1], [0, 0])), shape=(2, 5)),
    )
    scores = np.array([[9.0, 8.0, 7.0, 6.0, 5.0], [9.0, 8.0, 7.0, 6.0, 5.0]])
    test = _obs(
        [
            ("a", 101, 4.0, 2),
            ("a", 103, 3.0, 2),
            ("a", 104, None, 2),
            ("b", 102, 2.0, 2),
            ("b", 999, 5.0, 2),
        ]
    )
    model = FixedScores(scores)

    # relevance 3.5: user a ranks [101, 102, 103, 104] (100 excluded); relevant = {101}
    # -> hit at rank 1: NDCG@2 = 1, P@2 = 1/2, Recall@2 = 1/1, MAP@2 = 1/min(1,2) = 1.
    # user b: 102 rated 2.0 is not relevant -> excluded; film 999 is unknown -> dropped.
    out = evaluate(model, train, test, k_values=(2,), relevance=3.5)
    assert out["n_users_evaluated"] == 1
    assert out["n_users_no_relevant"] == 1
    assert out["n_test_dropped_unknown_item"] == 1
    assert out["ndcg@2"] == pytest.approx(1.0)
    assert out["precision@2"] == pytest.approx(0.5)
    assert out["recall@2"] == pytest.approx(1.0)
    assert out["map@2"] == pytest.approx(1.0)

    # relevance None: user a relevant = {101, 103, 104 (unrated)}; top-2 = [101, 102]
    # -> DCG = 1, IDCG@2 = 1 + 1/log2(3); Recall@2 = 1/3.
    # user b relevant = {102}; top-2 = [101, 102] -> DCG = 1/log2(3), IDCG = 1.
    out = evaluate(model, train, test, k_values=(2,), relevance=None)
    assert out["n_users_evaluated"] == 2
    ndcg_a = 1 / (1 + 1 / LOG2_3)
    ndcg_b = 1 / LOG2_3
    assert out["ndcg@2"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert out["recall@2"] == pytest.approx((1 / 3 + 1) / 2)
    # both users' top-2 is [101, 102]: 2 distinct items of 5
    assert out["coverage@2"] == pytest.approx(2 / 5)
