"""The content baseline: a member's profile over the film features, ranked by cosine.

    profile_u = sum_i c_ui * f_i / ||f_i||        (over u's training films, c = confidence)
    score(u, j) = cos(profile_u, f_j)

It needs no community signal at all, so it scores a film nobody has rated exactly as it
scores any other: the baseline the learnt content models must beat on unseen films.
``center=True`` subtracts the catalogue's mean feature vector first, so features every
film has (a common genre, "missing metadata") stop dominating the profile.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Recommender
from lbx_orchestration.core.recsys.data.features import normalize_rows

NAME = "content"


class ContentRecommender(Recommender):
    name = NAME
    state = ("item_vectors", "mean")
    search_space = ({"center": False}, {"center": True})

    def __init__(self, center: bool = False) -> None:
        self.params: dict[str, Any] = {"center": bool(center)}
        self.item_vectors: sp.csr_matrix | None = None  # unit L2 rows, one per training film
        self.mean: np.ndarray | None = None

    def fit(self, train: sp.csr_matrix, item_features: sp.spmatrix | None = None) -> Self:
        if item_features is None:
            raise ValueError("the content baseline needs item_features (items x features)")
        if item_features.shape[0] != train.shape[1]:
            raise ValueError(f"item_features has {item_features.shape[0]} rows but train has {train.shape[1]} items")
        self.item_vectors = normalize_rows(item_features, "l2")
        self.mean = np.asarray(self.item_vectors.mean(axis=0), dtype=np.float32).ravel()
        return self

    def _vectors(self, content: sp.spmatrix) -> tuple[sp.csr_matrix | np.ndarray, bool]:
        unit = normalize_rows(content, "l2")
        if not self.params["center"]:
            return unit, False
        assert self.mean is not None
        dense = unit.toarray() - self.mean[None, :]
        return dense, True

    def _profiles(self, rows: sp.spmatrix) -> np.ndarray:
        self._fitted()
        rows = sp.csr_matrix(rows, dtype=np.float32)
        profile = np.asarray((rows @ self.item_vectors).todense(), dtype=np.float32)
        if self.params["center"]:
            weight = np.asarray(rows.sum(axis=1), dtype=np.float32)
            profile -= weight * self.mean[None, :]
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        return np.divide(profile, norms, out=np.zeros_like(profile), where=norms > 0)

    def _cosine(self, profiles: np.ndarray, content: sp.spmatrix) -> np.ndarray:
        vectors, dense = self._unit_vectors(content)
        if dense:
            return (profiles @ vectors.T).astype(np.float32)
        return np.asarray((vectors @ profiles.T).T, dtype=np.float32)

    def _unit_vectors(self, content: sp.spmatrix) -> tuple[sp.csr_matrix | np.ndarray, bool]:
        """The candidates' unit vectors, kept for the last ``content`` seen: a protocol or a
        serving run scores the same candidates for batch after batch of users."""
        cached = getattr(self, "_candidates", None)
        if cached is not None and cached[0] is content:
            return cached[1], cached[2]
        vectors, dense = self._vectors(content)
        if dense:
            norms = np.linalg.norm(vectors, axis=1)
            vectors = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0)
        else:
            vectors = sp.csr_matrix(vectors)
        self._candidates = (content, vectors, dense)
        return vectors, dense

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        profiles = self._profiles(sp.csr_matrix(train)[np.asarray(user_idx, dtype=np.int64)])
        assert self.item_vectors is not None
        return self._cosine(profiles, self.item_vectors)

    def score_new_items(self, user_idx: np.ndarray, content: sp.spmatrix, train: sp.csr_matrix) -> np.ndarray:
        """Scores (len(user_idx), n_new) for films absent from training, from their features."""
        profiles = self._profiles(sp.csr_matrix(train)[np.asarray(user_idx, dtype=np.int64)])
        return self._cosine(profiles, content)

    def score_new_items_folded(self, user_rows: sp.csr_matrix, content: sp.spmatrix) -> np.ndarray:
        """Scores (n_rows, n_new) of users absent from training, from their rows over the training films."""
        return self._cosine(self._profiles(user_rows), content)

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        profiles = self._profiles(user_row)
        assert self.item_vectors is not None
        return self._cosine(profiles, self.item_vectors)[0]

    def _arrays(self) -> dict[str, np.ndarray]:
        v, mean = self._fitted()
        return {
            "data": v.data,
            "indices": v.indices,
            "indptr": v.indptr,
            "shape": np.asarray(v.shape, dtype=np.int64),
            "mean": mean,
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(int(n) for n in arrays["shape"])
        )
        self.mean = arrays["mean"]
