"""Most-popular baseline: an item's score is the number of training users who logged it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from lbx_orchestration.core.recsys.models import load_model_files, save_model_files


def check_train(train: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy of a users x items training matrix, or a clear error."""
    if not sp.issparse(train):
        raise TypeError(f"train must be a scipy sparse matrix, got {type(train).__name__}")
    csr = sp.csr_matrix(train, dtype=np.float32)
    if csr.ndim != 2 or csr.shape[1] == 0:
        raise ValueError(f"train must be a users x items matrix with items, got {csr.shape}")
    if csr.nnz and not np.all(np.isfinite(csr.data)):
        raise ValueError("train contains NaN or infinite values")
    return csr


def check_row(user_row: sp.spmatrix, n_items: int) -> sp.csr_matrix:
    row = sp.csr_matrix(user_row, dtype=np.float32)
    if row.shape != (1, n_items):
        raise ValueError(f"user_row must have shape (1, {n_items}), got {row.shape}")
    return row


class PopularityRecommender:
    name = "popularity"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.counts: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        csr = check_train(train)
        self.counts = np.diff(csr.tocsc().indptr).astype(np.float32)
        return self

    def _fitted(self) -> np.ndarray:
        if self.counts is None:
            raise RuntimeError("PopularityRecommender is not fitted: call fit() first")
        return self.counts

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        counts = self._fitted()
        return np.tile(counts, (len(np.atleast_1d(user_idx)), 1))

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        counts = self._fitted()
        check_row(user_row, len(counts))
        return counts.copy()

    def save(self, path: Path) -> None:
        save_model_files(path, self.name, self.params, counts=self._fitted())

    @classmethod
    def load(cls, path: Path) -> Self:
        params, arrays = load_model_files(path, cls.name)
        model = cls(**params)
        model.counts = arrays["counts"]
        return model
