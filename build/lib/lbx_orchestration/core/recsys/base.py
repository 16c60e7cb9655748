"""The shared shape of every recommender in lbx.

Matrices are users x items in CSR form. Item indices map to TMDb ids through
``Interactions.item_ids``; user indices map to user keys (``source:username``)
through ``Interactions.user_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    """A user x item matrix and the keys of its rows and columns.

    ``matrix`` holds the training signal (a confidence weight > 0 per seen pair);
    ``ratings`` holds the explicit rating per pair, NaN where the user only logged
    the film as watched.
    """

    user_ids: np.ndarray  # dtype object (str): index -> user key
    item_ids: np.ndarray  # dtype int64: index -> tmdb_id
    matrix: sp.csr_matrix
    ratings: sp.csr_matrix | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])


class Recommender(Protocol):
    name: str
    params: dict[str, Any]

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self: ...

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        """Dense scores (len(user_idx), n_items) for users seen in training."""
        ...

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        """Scores (n_items,) for a user absent from training, without retraining."""
        ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...
