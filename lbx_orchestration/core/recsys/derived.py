"""Serving's derived arrays of a saved model, computed once and kept in the model's folder.

A model version never changes, so what serving derives from it alone (the explanation
embeddings: a truncated SVD of every rating) is computed by the first caller, usually the
refresh's ``user_recommendations``, and read by every later one (an onboarding process, the
web app). What also depends on warehouse rows is keyed by a digest of those rows. A folder
that cannot be written (read-only models) only costs the computation each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

DERIVED_DIR = "derived"


def digest(frame: pl.DataFrame) -> str:
    """A key for ``frame``'s content (columns, order and values)."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()[:16]


def _write(path: Path, save: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(tmp)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def cached_array(model_path: Path | None, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if model_path is None:
        return compute()
    path = Path(model_path) / DERIVED_DIR / f"{name}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    value = compute()

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=False)

    _write(path, save)
    return value


def cached_frame(model_path: Path | None, family: str, key: str, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """``compute()`` kept as ``<family>-<key>``; writing one drops the family's other keys
    (the rows they were computed from have changed since)."""
    if model_path is None:
        return compute()
    folder = Path(model_path) / DERIVED_DIR
    path = folder / f"{family}-{key}.parquet"
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError):
        pass
    value = compute()
    _write(path, lambda tmp: value.write_parquet(tmp))
    for old in folder.glob(f"{family}-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)
    return value


def cached_sparse(
    model_path: Path | None, family: str, compute: Callable[[], sp.csr_matrix], key: str | None = None
) -> sp.csr_matrix:
    """``compute()`` kept as ``<family>`` (or ``<family>-<key>``, and then writing one drops the
    family's other keys, as in ``cached_frame``)."""
    if model_path is None:
        return compute()
    folder = Path(model_path) / DERIVED_DIR
    path = folder / (f"{family}-{key}.npz" if key else f"{family}.npz")
    try:
        return sp.csr_matrix(sp.load_npz(path))
    except (OSError, ValueError):
        pass
    value = sp.csr_matrix(compute())

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            sp.save_npz(fh, value, compressed=False)

    _write(path, save)
    if key:
        for old in folder.glob(f"{family}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    return value
