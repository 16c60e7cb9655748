"""Most-popular baseline: an item's score is the number of training users who logged it."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Recommender, check_row, check_train


class PopularityRecommender(Recommender):
    name = "popularity"
    state = ("counts",)

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.counts: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        csr = check_train(train)
        self.counts = np.diff(csr.tocsc().indptr).astype(np.float32)
        return self

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        counts = self._fitted()
        return np.tile(counts, (len(np.atleast_1d(user_idx)), 1))

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        counts = self._fitted()
        check_row(user_row, len(counts))
        return counts.copy()
