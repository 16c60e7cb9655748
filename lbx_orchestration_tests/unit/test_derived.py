"""Serving's derived arrays: computed once per model version, read back after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.derived import cached_array, cached_frame, cached_sparse, digest


def test_an_array_is_computed_once_and_read_back(tmp_path: Path) -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = cached_array(tmp_path, "explain-64", compute)
    again = cached_array(tmp_path, "explain-64", compute)
    assert len(calls) == 1 and np.array_equal(first, again) and again.dtype == np.float32
    assert cached_array(None, "explain-64", compute).shape == (2, 3) and len(calls) == 2  # no folder: no cache


def test_a_frame_is_keyed_by_its_rows_and_stale_keys_are_dropped(tmp_path: Path) -> None:
    names = pl.DataFrame({"tmdb_id": [1, 2], "title": ["Alien", "Heat"]})
    renamed = names.with_columns(pl.Series("title", ["Alien", "Heat (1995)"]))
    assert digest(names) == digest(names.clone()) != digest(renamed)
    out = cached_frame(tmp_path, "title-keys", digest(names), lambda: names.with_columns(key=pl.col("title")))
    assert cached_frame(tmp_path, "title-keys", digest(names), lambda: pl.DataFrame()).equals(out)
    cached_frame(tmp_path, "title-keys", digest(renamed), lambda: renamed)
    assert [p.name for p in (tmp_path / "derived").iterdir()] == [f"title-keys-{digest(renamed)}.parquet"]


def test_an_unwritable_folder_only_costs_the_computation(tmp_path: Path) -> None:
    blocked = tmp_path / "model"
    blocked.write_text("a file where the folder should be")
    assert cached_array(blocked, "x", lambda: np.ones(3)).sum() == 3


def test_a_sparse_matrix_round_trips(tmp_path: Path) -> None:
    matrix = sp.random(30, 40, density=0.1, format="csr", random_state=1, dtype=np.float32)
    first = cached_sparse(tmp_path, "explain-exact", lambda: matrix)
    again = cached_sparse(tmp_path, "explain-exact", lambda: sp.csr_matrix((30, 40)))
    assert (first != again).nnz == 0 and again.nnz == matrix.nnz and again.dtype == np.float32


def test_a_keyed_sparse_matrix_drops_its_stale_keys(tmp_path: Path) -> None:
    one, two = sp.identity(3, format="csr"), sp.identity(4, format="csr")
    assert cached_sparse(tmp_path, "mmr", lambda: one, key="a").shape == (3, 3)
    assert cached_sparse(tmp_path, "mmr", lambda: two, key="a").shape == (3, 3)  # read back
    assert cached_sparse(tmp_path, "mmr", lambda: two, key="b").shape == (4, 4)
    assert [p.name for p in (tmp_path / "derived").iterdir()] == ["mmr-b.npz"]


def test_large_model_arrays_are_mapped_copy_on_write(tmp_path: Path) -> None:
    from lbx_orchestration.core.recsys.base import MAP_BYTES, load_model_files, save_model_files

    big = np.arange(MAP_BYTES // 4 + 10, dtype=np.float32)
    wide = np.asfortranarray(np.arange(MAP_BYTES // 8 + 64, dtype=np.float64).reshape(-1, 8))
    save_model_files(tmp_path, "x", {"a": 1}, big=big, wide=wide, small=np.arange(3))
    _, params, arrays = load_model_files(tmp_path)
    assert params == {"a": 1} and isinstance(arrays["big"], np.memmap) and not isinstance(arrays["small"], np.memmap)
    assert np.array_equal(arrays["big"], big) and np.array_equal(arrays["wide"], wide)
    arrays["big"][0] = -1.0  # a write stays in memory
    assert load_model_files(tmp_path)[2]["big"][0] == 0.0
