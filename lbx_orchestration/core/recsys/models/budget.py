"""Bounds that keep a fit's cost fixed as the community grows (each model states its own in its card).

* ``budget_sample``: at most about N (user, film) pairs, a seeded uniform share of every user's
  films, each user keeping at least ``MIN_PER_USER`` (ALS);
* ``rater_sample``: at most N pairs from whole raters in a seeded order, each capped at
  ``MAX_FILMS_PER_RATER`` films; the model folds the others in when it scores them (LightFM);
* ``pair_budget_rows``: the users whose films enter an items x items product (X^T X costs the
  sum over users of n_u^2 pair updates: one rater of 15,000 films alone costs 225M), a seeded
  sample of raters with every rater capped at ``MAX_FILMS_PER_RATER`` films (item-kNN, EASE).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MIN_PER_USER = 5
#: in a budgeted items x items product, a rater contributes at most this many of their films
MAX_FILMS_PER_RATER = 1_000


def budget_sample(train: sp.csr_matrix, max_interactions: int, seed: int) -> sp.csr_matrix:
    """At most ~``max_interactions`` entries of ``train``: a uniform seeded share of every
    user's films, and never fewer than ``MIN_PER_USER`` of them (so every user stays trained)."""
    train = sp.csr_matrix(train)
    if train.nnz <= max_interactions:
        return train
    rng = np.random.default_rng(seed)
    draw = rng.random(train.nnz)
    return _keep(train, (draw < max_interactions / train.nnz) | _within(train, draw, MIN_PER_USER))


def _within(train: sp.csr_matrix, draw: np.ndarray, cap: int) -> np.ndarray:
    """Whether each entry is among the ``cap`` smallest ``draw`` values of its row. Only rows
    longer than ``cap`` are ranked (sorting all 32M entries took seconds; the rows over a
    1,000-film cap hold a small share of them)."""
    counts = np.diff(train.indptr)
    long_rows = np.flatnonzero(counts > cap)
    inside = np.ones(train.nnz, dtype=bool)
    if not len(long_rows):
        return inside
    entries = np.concatenate([np.arange(train.indptr[r], train.indptr[r + 1]) for r in long_rows])
    rows = np.repeat(np.arange(len(long_rows)), counts[long_rows])
    order = np.lexsort((draw[entries], rows))
    starts = np.concatenate([[0], np.cumsum(counts[long_rows])[:-1]])
    rank = np.empty(len(entries), dtype=np.int64)
    rank[order] = np.arange(len(entries)) - starts[rows[order]]
    inside[entries] = rank < cap
    return inside


def _keep(train: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    return sp.csr_matrix(
        (
            train.data[keep],
            train.indices[keep],
            np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=train.shape[0]))]),
        ),
        shape=train.shape,
    )


def rater_sample(
    train: sp.csr_matrix, max_interactions: int, seed: int, per_rater: int = MAX_FILMS_PER_RATER
) -> tuple[sp.csr_matrix, np.ndarray]:
    """At most ``max_interactions`` entries of ``train``: whole raters (each capped at a seeded
    ``per_rater`` of their films) taken in a seeded order, and the mask of raters kept; the
    others' rows are left empty. Within budget: ``train`` and all True.

    A uniform share of every rater's films (``budget_sample``) leaves each of 200,000 raters
    with about five films under a 1M budget, too few to learn from; whole raters keep the
    depth, and the model folds the others in from their rows when it scores them."""
    train = sp.csr_matrix(train)
    counts = np.diff(train.indptr).astype(np.int64)
    if train.nnz <= max_interactions:
        return train, np.ones(train.shape[0], dtype=bool)
    rng = np.random.default_rng(seed)
    draw = rng.random(train.nnz)
    capped = np.minimum(counts, per_rater)
    order = rng.permutation(train.shape[0])
    chosen = np.zeros(train.shape[0], dtype=bool)
    chosen[order[np.cumsum(capped[order]) <= max_interactions]] = True
    rows = np.repeat(np.arange(train.shape[0]), counts)
    return _keep(train, chosen[rows] & _within(train, draw, per_rater)), chosen & (counts > 0)


def pair_budget_rows(train: sp.csr_matrix, max_pairs: int, seed: int) -> tuple[sp.csr_matrix, float]:
    """The rows of ``train`` an items x items product reads under ``max_pairs`` pair updates,
    and the share of raters kept. Within budget: ``train`` itself and 1.0. Otherwise every
    rater keeps a seeded ``MAX_FILMS_PER_RATER`` of their films at most, and raters are taken
    in a seeded order while the sum of n_u^2 stays within the budget (the rest become empty rows)."""
    train = sp.csr_matrix(train)
    counts = np.diff(train.indptr).astype(np.int64)
    if int((counts**2).sum()) <= max_pairs:
        return train, 1.0
    rng = np.random.default_rng(seed)
    draw = rng.random(train.nnz)
    counts = np.minimum(counts, MAX_FILMS_PER_RATER)
    order = rng.permutation(train.shape[0])
    chosen = np.zeros(train.shape[0], dtype=bool)
    chosen[order[np.cumsum(counts[order] ** 2) <= max_pairs]] = True
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    kept = _keep(train, chosen[rows] & _within(train, draw, MAX_FILMS_PER_RATER))
    rated = max(1, int((counts > 0).sum()))
    return kept, float(chosen[counts > 0].sum() / rated)
