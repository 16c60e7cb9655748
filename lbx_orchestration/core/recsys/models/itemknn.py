"""Item-based k-nearest-neighbours.

    sim(i, j)  = <x_i, x_j> / (||x_i|| * ||x_j|| + shrink)      (cosine on item columns)
    S[:, j]    = the k largest positive sim(., j), i != j; all else 0
    score(u,j) = sum_i x_ui * S[i, j]

``x`` are the training confidence weights. The similarity is symmetric, so the neighbours of
column j are the k best entries of row j: rows are computed in blocks (about 20M floats per
block, so memory stays bounded) and cut along the contiguous axis. When the dense users x
items matrix is small (<= ``DENSE_LIMIT`` floats, e.g. 1,000 users x 30k films) the blocks
come from a BLAS product on it, which beats scipy's single-threaded sparse product ~2x.
Larger communities use the sparse product, bounded two ways (stated in the card): neighbours
are found among the ``max_items`` most-rated films only (the rest get none and score 0), and
the co-occurrences come from at most ``max_pairs`` pair updates (``budget.pair_budget_rows``:
a seeded sample of raters, each capped at 1,000 films). At ML-32M size (200,000 raters) the
whole product would be ~19 billion updates.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from lbx_orchestration.core.recsys.base import Recommender, check_row, check_train
from lbx_orchestration.core.recsys.models.budget import pair_budget_rows
from lbx_orchestration.core.recsys.threads import default_threads
from lbx_orchestration.core.settings import SEED

BLOCK_FLOATS = 20_000_000
DENSE_LIMIT = 100_000_000
MAX_ITEMS = 20_000
MAX_PAIRS = 2_000_000_000


class ItemKNNRecommender(Recommender):
    name = "itemknn"
    state = ("similarity",)
    search_space = (
        {"k": 20, "shrink": 10.0},
        {"k": 50, "shrink": 0.0},
        {"k": 50, "shrink": 10.0},
        {"k": 100, "shrink": 10.0},
        {"k": 200, "shrink": 50.0},
    )

    def __init__(
        self,
        k: int = 100,
        shrink: float = 10.0,
        similarity: str = "cosine",
        max_items: int = MAX_ITEMS,
        max_pairs: int = MAX_PAIRS,
        seed: int = SEED,
    ) -> None:
        if similarity != "cosine":
            raise ValueError(f"similarity must be 'cosine', got {similarity!r}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        if int(max_items) < 2 or int(max_pairs) < 1:
            raise ValueError(f"max_items must be >= 2 and max_pairs >= 1, got {max_items}, {max_pairs}")
        self.params: dict[str, Any] = {
            "k": int(k),
            "shrink": float(shrink),
            "similarity": similarity,
            "max_items": int(max_items),
            "max_pairs": int(max_pairs),
            "seed": int(seed),
        }
        self.similarity: sp.csr_matrix | None = None
        #: what the fit read (for the card): films with neighbours, share of raters in the product
        self.fitted_items = 0
        self.rater_share = 1.0

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        x = check_train(train).tocsc().astype(np.float32)
        n_users, n_items = x.shape
        if n_users * n_items <= DENSE_LIMIT:
            items, share = np.arange(n_items), 1.0
        else:  # bounded: the most-rated films, co-occurrences from a pair budget
            counts = np.diff(x.indptr)
            items = np.sort(np.lexsort((np.arange(n_items), -counts))[: self.params["max_items"]])
            rows, share = pair_budget_rows(x[:, items].tocsr(), self.params["max_pairs"], self.params["seed"])
            x = rows.tocsc()
        similarity = self._neighbours(x, dense=n_users * n_items <= DENSE_LIMIT)
        coo = similarity.tocoo()  # positions among ``items`` -> catalogue positions
        sim_matrix = sp.csr_matrix(
            (coo.data, (items[coo.row], items[coo.col])), shape=(n_items, n_items), dtype=np.float32
        )
        sim_matrix.sort_indices()
        self.similarity = sim_matrix
        self.fitted_items, self.rater_share = len(items), share
        return self

    def _neighbours(self, x: sp.csc_matrix, dense: bool) -> sp.csr_matrix:
        """Top-k cosine neighbours among the columns of ``x``, in row blocks."""
        n_items = x.shape[1]
        k = min(self.params["k"], max(n_items - 1, 1))
        shrink = np.float32(self.params["shrink"])
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel()).astype(np.float32)
        dense_x = x.toarray() if dense else None
        xt = None if dense else x.T.tocsr()
        block = max(1, BLOCK_FLOATS // max(n_items, 1))
        rows, cols, vals = [], [], []
        with threadpool_limits(limits=default_threads(), user_api="blas"):
            for start in range(0, n_items, block):
                stop = min(start + block, n_items)
                if dense_x is not None:
                    sim = dense_x[:, start:stop].T @ dense_x  # (block, n_items) co-occurrence
                else:
                    sim = (xt[start:stop] @ x).toarray().astype(np.float32, copy=False)
                denom = norms[start:stop, None] * norms[None, :] + shrink
                # denom is 0 only for a film nobody watched (with shrink 0): its co-occurrence is 0 too
                np.divide(sim, denom, out=sim, where=denom > 0)
                sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
                if k < n_items:
                    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
                else:
                    top = np.tile(np.arange(n_items)[None, :], (stop - start, 1))
                top_vals = np.take_along_axis(sim, top, axis=1)
                keep = top_vals > 0
                rows.append(top[keep])
                cols.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[keep])
                vals.append(top_vals[keep])
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        sim = self._fitted()
        rows = sp.csr_matrix(train, dtype=np.float32)[np.atleast_1d(user_idx)]
        return np.asarray((rows @ sim).todense(), dtype=np.float32)

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        sim = self._fitted()
        row = check_row(user_row, sim.shape[0])
        return np.asarray((row @ sim).todense(), dtype=np.float32).ravel()

    def _arrays(self) -> dict[str, np.ndarray]:
        sim = self._fitted()
        return {
            "data": sim.data,
            "indices": sim.indices,
            "indptr": sim.indptr,
            "shape": np.asarray(sim.shape, dtype=np.int64),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
        )
