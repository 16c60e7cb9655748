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

from concurrent.futures import ThreadPoolExecutor
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
        threads = default_threads()
        with threadpool_limits(limits=threads, user_api="blas"), ThreadPoolExecutor(threads) as pool:
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
                bounds = np.linspace(0, stop - start, threads + 1).astype(int)
                parts = [sim[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
                for offset, (row, neighbour, value) in zip(
                    bounds[:-1], pool.map(_top_positive, parts, [k] * len(parts)), strict=True
                ):
                    rows.append(neighbour)
                    cols.append(start + offset + row)
                    vals.append(value)
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


def _top_positive(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) of each row's ``k`` largest positive values (ties in any order).

    An argpartition of every row cost twice the block's BLAS product at 30,000 films. The
    ``k``-th largest of a subset of a row's values is at most the row's own, so every top value
    is at least that of a strided sample of ~sqrt(n k) columns, and only ~sqrt(n k) values per
    row pass it: those are partitioned, padded into a narrow matrix. Runs in a thread per row
    chunk (numpy releases the GIL)."""
    n_rows, n = sim.shape
    stride = max(1, int(n / np.sqrt(n * k)))
    sample = sim[:, ::stride]
    mask = sim > 0
    if stride > 1 and sample.shape[1] >= k:
        floor = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
        mask &= sim >= floor[:, None]
    row, col = np.nonzero(mask)
    counts = np.bincount(row, minlength=n_rows)
    width = int(counts.max()) if len(row) else 0
    if width == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    pos = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    values = np.full((n_rows, width), -np.inf, dtype=np.float32)
    columns = np.zeros((n_rows, width), dtype=np.int64)
    values[row, pos] = sim[row, col]
    columns[row, pos] = col
    if width > k:
        top = np.argpartition(-values, k - 1, axis=1)[:, :k]
        values, columns = np.take_along_axis(values, top, axis=1), np.take_along_axis(columns, top, axis=1)
    keep = values > 0
    rows = np.broadcast_to(np.arange(n_rows)[:, None], values.shape)[keep]
    return rows, columns[keep], values[keep]
