"""The pair budgets keep, in every row, exactly the entries with the smallest seeded draws (checked
against a plain per-row sort), and the library comparison measures the same models lbx fits."""

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from lbx_orchestration.core.recsys.models import budget


def _matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.lognormal(3.0, 1.2, 400).astype(int) + 1, 900)
    rows = np.repeat(np.arange(len(counts)), counts)
    cols = np.concatenate([rng.choice(1000, c, replace=False) for c in counts])
    return sp.csr_matrix((rng.random(len(rows)).astype(np.float32) + 0.5, (rows, cols)), shape=(len(counts), 1000))


def test_within_keeps_the_smallest_draws_of_each_row() -> None:
    m = _matrix()
    draw = np.random.default_rng(1).random(m.nnz)
    for cap in (1, 5, 60):
        inside = budget._within(m, draw, cap)
        for r in range(m.shape[0]):
            lo, hi = m.indptr[r], m.indptr[r + 1]
            expected = np.zeros(hi - lo, dtype=bool)
            expected[np.argsort(draw[lo:hi], kind="stable")[:cap]] = True
            assert np.array_equal(inside[lo:hi], expected), (cap, r)


def test_pair_budget_caps_long_raters_and_keeps_short_ones_whole() -> None:
    m = _matrix()
    kept, share = budget.pair_budget_rows(m, 400_000, seed=3)
    counts, kept_counts = np.diff(m.indptr), np.diff(kept.indptr)
    assert 0 < share < 1
    assert kept_counts.max() <= budget.MAX_FILMS_PER_RATER
    chosen = kept_counts > 0
    assert np.array_equal(kept_counts[chosen], np.minimum(counts[chosen], budget.MAX_FILMS_PER_RATER))
    assert int((kept_counts.astype(np.int64) ** 2).sum()) <= 400_000


def test_library_comparison_fits_the_same_models() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import library_overhead
    finally:
        sys.path.pop(0)
    m = _matrix(2)
    ease = library_overhead._measure_ease(m, {"max_items": 300, "l2": 50.0, "max_pairs": 200_000}, 1)
    assert ease["max_abs_diff"] == 0.0 and ease["items"] == 300 and ease["rater_share"] < 1
    params = {"factors": 8, "iterations": 3, "regularization": 1.0, "alpha": 1.0, "max_interactions": 5_000}
    als = library_overhead._measure_als(m, params, 1)
    assert als["pairs"] == m.nnz and als["lbx_trains_on_pairs"] < m.nnz and als["lbx_extra_sweeps"] == 3
    assert als["same_work"]["pairs"] == als["lbx_trains_on_pairs"] and als["same_work"]["ratio"] > 0
    within = library_overhead._measure_als(m, {**params, "max_interactions": 10**7}, 1)
    assert "same_work" not in within and within["max_abs_diff"] < 1e-3
