"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit`` on CPU.

Confidence per logged pair is ``c_ui = 1 + alpha * w_ui`` (``w`` = the training weight;
unlogged pairs have c = 1 and preference 0). ``implicit`` takes the matrix as ``c_ui``
itself, so we hand it ``1 + alpha * w`` and keep its own ``alpha`` at 1.

``fold_in`` solves the exact least-squares user factor for a new row against the fixed
item factors (``recalculate_user``): no retraining. BLAS is pinned to one thread around
``implicit`` calls (it parallelises itself and warns otherwise).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from lbx_orchestration.core.recsys.base import Recommender, check_row, check_train
from lbx_orchestration.core.recsys.models.budget import budget_sample
from lbx_orchestration.core.recsys.threads import default_threads
from lbx_orchestration.core.settings import SEED


def _confidence(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (1.0 + alpha * out.data).astype(np.float32)
    return out


#: ALS's budget: a conjugate-gradient sweep costs every (user, film) pair times the factors, and
#: 26M pairs took about 3 minutes per fit on two shared cores; above this many pairs it trains on a
#: seeded sample in which every user keeps at least 5, followed by one sweep over every pair
MAX_INTERACTIONS = 8_000_000


class ALSRecommender(Recommender):
    name = "als"
    state = ("user_factors", "item_factors")
    # c_ui = 1 + alpha * w; on MovieLens low alpha with strong regularisation wins.
    search_space = (
        {"factors": 32, "regularization": 10.0, "iterations": 15, "alpha": 1.0},
        {"factors": 64, "regularization": 10.0, "iterations": 15, "alpha": 1.0},
        {"factors": 64, "regularization": 1.0, "iterations": 15, "alpha": 1.0},
        {"factors": 64, "regularization": 50.0, "iterations": 15, "alpha": 5.0},
        {"factors": 128, "regularization": 50.0, "iterations": 15, "alpha": 5.0},
    )

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 50.0,
        iterations: int = 15,
        alpha: float = 5.0,
        seed: int = SEED,
        num_threads: int | None = None,
        max_interactions: int = MAX_INTERACTIONS,
    ) -> None:
        if int(factors) < 1 or int(iterations) < 1:
            raise ValueError(f"factors and iterations must be >= 1, got {factors}, {iterations}")
        if regularization < 0 or alpha < 0:
            raise ValueError(f"regularization and alpha must be >= 0, got {regularization}, {alpha}")
        self.params: dict[str, Any] = {
            "factors": int(factors),
            "regularization": float(regularization),
            "iterations": int(iterations),
            "alpha": float(alpha),
            "seed": int(seed),
            "num_threads": int(num_threads if num_threads is not None else default_threads()),
            "max_interactions": int(max_interactions),
        }
        self.trained_interactions = 0
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self._model: Any = None

    def _new_model(self) -> Any:
        p = self.params
        return AlternatingLeastSquares(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=1.0,
            iterations=p["iterations"],
            random_state=p["seed"],
            num_threads=p["num_threads"],
        )

    def fit(self, train: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        train = check_train(train)
        sample = budget_sample(train, self.params["max_interactions"], self.params["seed"])
        self.trained_interactions = int(sample.nnz)
        with threadpool_limits(limits=1, user_api="blas"):
            model = self._new_model()
            model.fit(_confidence(sample, self.params["alpha"]), show_progress=False)
            if sample.nnz < train.nnz:
                # one more sweep on every pair (users, items, users again), warm-started from the
                # sample's factors: each user's factor then reflects all of their films
                conf = _confidence(train, self.params["alpha"])
                for matrix, solve, fixed in (
                    (conf, model.user_factors, model.item_factors),
                    (conf.T.tocsr(), model.item_factors, model.user_factors),
                    (conf, model.user_factors, model.item_factors),
                ):
                    model.solver(matrix, solve, fixed, model.regularization, num_threads=model.num_threads)
        self._model = model
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score_users(self, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        users, items = self._fitted()
        idx = np.atleast_1d(user_idx)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(users)):
            raise IndexError(f"user index out of range 0..{len(users) - 1}; use fold_in")
        with threadpool_limits(limits=1, user_api="blas"):
            return users[idx] @ items.T

    def fold_in(self, user_row: sp.csr_matrix) -> np.ndarray:
        _, items = self._fitted()
        row = _confidence(check_row(user_row, len(items)), self.params["alpha"])
        with threadpool_limits(limits=1, user_api="blas"):
            if self._model is None:
                self._model = self._new_model()
                self._model.user_factors = self.user_factors
                self._model.item_factors = self.item_factors
            factor = self._model.recalculate_user(0, row)
        return np.asarray(factor, dtype=np.float32) @ items.T
