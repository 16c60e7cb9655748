"""Item-feature matrices aligned to a recommender's item order.

Rows follow ``item_ids`` (the model's item index -> tmdb_id); columns are content
features. Rows are normalised (L1 by default: LightFM treats a row as the weights of
the features that make up the item, and expects them to sum to about one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

MISSING_FEATURE = "missing_metadata"
Norm = Literal["l1", "l2"] | None


def normalize_rows(matrix: sp.spmatrix, norm: Norm = "l1") -> sp.csr_matrix:
    """Scale every non-empty row to unit L1 (sum of |values|) or L2 norm; empty rows stay 0."""
    csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if norm is None:
        return csr
    if norm == "l1":
        sizes = np.asarray(abs(csr).sum(axis=1)).ravel()
    elif norm == "l2":
        sizes = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1)).ravel())
    else:
        raise ValueError(f"norm must be 'l1', 'l2' or None, got {norm!r}")
    scale = np.divide(1.0, sizes, out=np.zeros_like(sizes, dtype=np.float64), where=sizes > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ csr)


def _row_positions(item_ids: np.ndarray, keys: np.ndarray, what: str) -> np.ndarray:
    """For each item id, the row in ``keys`` holding it, or -1 if absent."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        dupes = uniq[counts > 1][:5].tolist()
        raise ValueError(f"{what} has duplicate ids, e.g. {dupes}")
    if len(keys) == 0:
        return np.full(len(item_ids), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.minimum(np.searchsorted(sorted_keys, item_ids), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == item_ids, order[pos], -1)


def _align_rows(matrix: sp.csr_matrix, positions: np.ndarray) -> sp.csr_matrix:
    """Rows of ``matrix`` picked by ``positions``; -1 gives an all-zero row."""
    present = positions >= 0
    picker = sp.csr_matrix(
        (
            np.ones(int(present.sum()), dtype=np.float32),
            (np.flatnonzero(present), positions[present]),
        ),
        shape=(len(positions), matrix.shape[0]),
    )
    return sp.csr_matrix(picker @ matrix)


def item_feature_matrix(
    item_ids: np.ndarray,
    features: pl.DataFrame,
    id_col: str = "tmdb_id",
    *,
    missing_indicator: bool = True,
    norm: Norm = "l1",
) -> tuple[sp.csr_matrix, list[str]]:
    """Align a wide feature frame (one row per film) to ``item_ids``.

    Every numeric or boolean column other than ``id_col`` is a feature (nulls count as 0);
    other columns (titles, lists) are ignored. Films absent from the frame get an all-zero
    row, plus a 1 in a trailing ``missing_metadata`` column when ``missing_indicator``.
    """
    if id_col not in features.columns:
        raise ValueError(f"feature frame has no id column {id_col!r}: {features.columns}")
    names = [c for c, dtype in features.schema.items() if c != id_col and (dtype.is_numeric() or dtype == pl.Boolean)]
    if features[id_col].null_count():
        raise ValueError(f"feature frame has null values in id column {id_col!r}")
    keys = features[id_col].cast(pl.Int64).to_numpy()
    if names:
        values = (
            features.select(pl.col(names).cast(pl.Float32).fill_null(0.0).fill_nan(0.0))
            .to_numpy()
            .astype(np.float32, copy=False)
        )
    else:
        values = np.zeros((features.height, 0), dtype=np.float32)
    positions = _row_positions(item_ids, keys, f"feature frame column {id_col!r}")
    matrix = _align_rows(sp.csr_matrix(values), positions)
    if missing_indicator:
        missing = sp.csr_matrix((positions < 0).astype(np.float32)[:, None])
        matrix = sp.hstack([matrix, missing], format="csr")
        names = [*names, MISSING_FEATURE]
    matrix.eliminate_zeros()
    return normalize_rows(matrix, norm), list(names)


def tfidf_block(
    base: sp.spmatrix,
    base_names: Sequence[str],
    item_ids: np.ndarray,
    tfidf: sp.spmatrix,
    tfidf_ids: np.ndarray,
    vocabulary: Sequence[str],
    *,
    weight: float = 0.5,
    prefix: str = "kw_",
    norm: Norm = "l1",
) -> tuple[sp.csr_matrix, list[str]]:
    """Append a keyword TF-IDF block (rows keyed by ``tfidf_ids``) to ``base``.

    Both blocks are L1-normalised per row first, so ``weight`` is the keyword block's
    share relative to the base features (1.0 = equal say) before the final row norm.
    """
    base = sp.csr_matrix(base)
    if base.shape != (len(item_ids), len(base_names)):
        raise ValueError(
            f"base matrix shape {base.shape} does not match {len(item_ids)} items x {len(base_names)} names"
        )
    tfidf = sp.csr_matrix(tfidf)
    if tfidf.shape != (len(tfidf_ids), len(vocabulary)):
        raise ValueError(
            f"tfidf matrix shape {tfidf.shape} does not match {len(tfidf_ids)} ids x {len(vocabulary)} terms"
        )
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    positions = _row_positions(item_ids, tfidf_ids, "tfidf ids")
    block = normalize_rows(_align_rows(tfidf, positions), "l1") * np.float32(weight)
    stacked = sp.hstack([normalize_rows(base, "l1"), block], format="csr")
    stacked.eliminate_zeros()
    names = [*base_names, *(f"{prefix}{term}" for term in vocabulary)]
    return normalize_rows(stacked, norm), names
