"""EASE (Steck 2019): a dense item-item linear model with a closed form.

    G = X^T X + l2 * I,  P = G^{-1},  B = -P / diag(P) (column-wise),  diag(B) = 0
    score(u, .) = x_u B

The inverse is dense and costs O(n^3), so the model is restricted to the ``max_items``
(default 10 000) items with the most training users; the other items score -inf (never
recommended). On the 1,000-user benchmark (30k films) 10k items fit in ~12 s on two cores
and lose ~1% NDCG@10 against 15k items (33 s); 20k took 80 s.
The Gram matrix X^T X comes from at most ``max_pairs`` pair updates (``budget.pair_budget_rows``:
above that, a seeded sample of raters, each capped at 1,000 films, scaled back up by the share
of raters kept so ``l2`` keeps its meaning): at ML-32M size the whole product is ~19 billion.
The inversion runs in float32 (half the memory and time of float64; the l2 term keeps G
well conditioned) with BLAS limited to ``num_threads`` (default 1): on a shared, busy
machine a multithreaded OpenBLAS spin-waits, and an 800-item fit went from 0.03 s to 5 s.
On a quiet machine ``num_threads=2`` roughly halves a 10k-item fit (14 s -> 5-6 s).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from lbx_orchestration.core.recsys.base import Recommender, check_row, check_train
from lbx_orchestration.core.recsys.models.budget import pair_budget_rows
from lbx_orchestration.core.recsys.threads import default_threads
from lbx_orchestration.core.settings import SEED

MAX_PAIRS = 2_000_000_000


class EASERecommender(Recommender):
    name = "ease"
    state = ("items", "weights")
    search_space = ({"l2": 100.0}, {"l2": 250.0}, {"l2": 500.0}, {"l2": 1000.0}, {"l2": 2500.0})

    def __init__(
        self,
        l2: float = 250.0,
        max_items: int = 10_000,
        num_threads: int | None = None,
        max_pairs: int = MAX_PAIRS,
        seed: int = SEED,
    ) -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        if int(max_items) < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        if num_threads is not None and int(num_threads) < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.params: dict[str, Any] = {
            "l2": float(l2),
            "max_items": int(max_items),
            "num_threads": int(num_threads if num_threads is not None else default_threads()),
            "max_pairs": int(max_pairs),
            "seed": int(seed),
        }
        self.rater_share = 1.0  # share of raters in the Gram product (for the card)
        self.items: np.ndarray | None = None  # model column -> catalogue item index
        self.weights: np.ndarray | None = None  # B, (len(items), len(items))
        self.n_items = 0

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        x = check_train(train)
        self.n_items = x.shape[1]
        counts = np.bincount(x.indices, minlength=self.n_items)  # films' raters, without a CSC copy
        if self.n_items > self.params["max_items"]:
            order = np.lexsort((np.arange(self.n_items), -counts))
            items = np.sort(order[: self.params["max_items"]])
        else:
            items = np.arange(self.n_items)
        xs, share = pair_budget_rows(x[:, items], self.params["max_pairs"], self.params["seed"])
        gram = np.asarray((xs.T @ xs).todense(), dtype=np.float32)
        if share < 1.0:
            gram /= np.float32(share)
        self.rater_share = share
        gram[np.diag_indices_from(gram)] += np.float32(self.params["l2"])
        with threadpool_limits(limits=self.params["num_threads"], user_api="blas"):
            inv = sla.inv(gram, overwrite_a=True, check_finite=False)
        weights = inv  # in place: at 10,000 films each n^2 copy is 400 MB
        weights /= -np.diag(inv).copy()[None, :]
        np.fill_diagonal(weights, 0.0)
        self.items = items.astype(np.int64)
        # C order: scipy copies a Fortran-ordered dense operand on every sparse @ dense product
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        return self

    def _scores(self, rows: sp.csr_matrix) -> np.ndarray:
        items, weights = self._fitted()
        out = np.full((rows.shape[0], self.n_items), -np.inf, dtype=np.float32)
        out[:, items] = rows[:, items] @ weights
        return out

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        rows = sp.csr_matrix(train, dtype=np.float32)[np.atleast_1d(user_idx)]
        return self._scores(rows)

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        self._fitted()
        return self._scores(check_row(user_row, self.n_items))[0]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {**super()._arrays(), "n_items": np.asarray(self.n_items, dtype=np.int64)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.items = arrays["items"]
        self.weights = np.ascontiguousarray(arrays["weights"], dtype=np.float32)
        self.n_items = int(arrays["n_items"])
