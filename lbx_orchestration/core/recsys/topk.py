"""Batched top-k selection over dense score rows."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` best items per row, best first.

    ``exclude`` (same shape as ``scores``) marks items that must not be returned (a
    user's training items): their score becomes -inf. NaN scores count as -inf too. Slots
    that only -inf items could fill get index -1 and score -inf, so an excluded item is
    never returned. Within the returned slots, equal scores are ordered by item index.
    ``scores`` is not modified.
    """
    scores = np.asarray(scores)
    if scores.ndim == 1:
        scores = scores[None, :]
    if scores.ndim != 2:
        raise ValueError(f"scores must be 1-d or 2-d, got shape {scores.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_rows, n_items = scores.shape
    # float32 scores stay float32 (half the memory traffic of a 1,000 x 30k batch)
    work = np.array(scores, dtype=np.result_type(scores.dtype, np.float32), copy=True)
    work[np.isnan(work)] = -np.inf
    if exclude is not None:
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude has shape {exclude.shape} but scores have shape {scores.shape}")
        ex = sp.csr_matrix(exclude)
        row_of = np.repeat(np.arange(n_rows), np.diff(ex.indptr))
        work[row_of, ex.indices] = -np.inf

    kk = min(k, n_items)
    if kk < n_items:
        part = np.argpartition(-work, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(n_items), (n_rows, 1))
    part_vals = np.take_along_axis(work, part, axis=1)
    # Sort by score descending, then by item index ascending.
    order = np.lexsort((part, -part_vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(part_vals, order, axis=1)
    if kk < k:
        idx = np.hstack([idx, np.full((n_rows, k - kk), -1, dtype=idx.dtype)])
        vals = np.hstack([vals, np.full((n_rows, k - kk), -np.inf)])
    invalid = np.isneginf(vals)
    idx = np.where(invalid, -1, idx).astype(np.int64)
    return idx, vals
