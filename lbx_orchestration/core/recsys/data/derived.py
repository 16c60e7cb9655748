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
from typing import TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

DERIVED_DIR = "derived"
T = TypeVar("T")


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


#: what a missing, partly written or foreign cache file raises when read: it is computed again
_UNREADABLE = (OSError, ValueError, pl.exceptions.ComputeError)


def _cached(
    model_path: Path | None,
    name: str,
    key: str | None,
    read: Callable[[Path], T],
    write: Callable[[T, Path], None],
    compute: Callable[[], T],
) -> T:
    """``compute()`` kept in ``derived/<name>[-<key>]``; writing a keyed one drops the name's
    other keys (the rows they were computed from have changed since)."""
    if model_path is None:
        return compute()
    folder = Path(model_path) / DERIVED_DIR
    stem, suffix = os.path.splitext(name)
    path = folder / (f"{stem}-{key}{suffix}" if key else name)
    try:
        return read(path)
    except _UNREADABLE:
        pass
    value = compute()
    _write(path, lambda tmp: write(value, tmp))
    if key:
        for old in folder.glob(f"{stem}-*{suffix}"):
            if old != path:
                old.unlink(missing_ok=True)
    return value


def _save_array(value: np.ndarray, tmp: Path) -> None:
    with open(tmp, "wb") as fh:
        np.save(fh, value, allow_pickle=False)


def _save_sparse(value: sp.csr_matrix, tmp: Path) -> None:
    with open(tmp, "wb") as fh:
        sp.save_npz(fh, value, compressed=False)


def cached_array(model_path: Path | None, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    return _cached(model_path, f"{name}.npy", None, lambda p: np.load(p, allow_pickle=False), _save_array, compute)


def cached_frame(model_path: Path | None, family: str, key: str, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """``compute()`` kept as ``<family>-<key>``; writing one drops the family's other keys."""
    return _cached(model_path, f"{family}.parquet", key, pl.read_parquet, lambda v, p: v.write_parquet(p), compute)


def cached_sparse(
    model_path: Path | None, family: str, compute: Callable[[], sp.csr_matrix], key: str | None = None
) -> sp.csr_matrix:
    """``compute()`` kept as ``<family>`` (or ``<family>-<key>``, dropping the family's other keys)."""
    return _cached(
        model_path,
        f"{family}.npz",
        key,
        lambda p: sp.csr_matrix(sp.load_npz(p)),
        _save_sparse,
        lambda: sp.csr_matrix(compute()),
    )
