"""Which members' rows moved since a model was fitted: they are folded into it from their current
rows (a film logged, re-rated or removed counts the same night) until the next refit."""

from __future__ import annotations

import duckdb
import numpy as np
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.serving.recommend import confidence_rows
from lbx_orchestration.core.tables import INTERACTIONS
from lbx_orchestration.core.warehouse import read_frame


def changed_since_training(con: duckdb.DuckDBPyConnection, interactions: Interactions, keys: list[str]) -> set[str]:
    """Members whose row, as the model would build it now from user_item_interactions, is not the
    row it was trained on: they logged, re-rated or removed a film since the fit (films outside
    the model's items cannot change its scores either way)."""
    if not keys:
        return set()
    seen = read_frame(
        con,
        f"select user_key, tmdb_id, rating from {INTERACTIONS} where seen and user_key in "
        "(select unnest(?::varchar[]))",
        [keys],
    )
    members = np.asarray(keys, dtype=object)
    now = confidence_rows(seen, members, interactions.item_ids)
    index = {str(u): i for i, u in enumerate(interactions.user_ids)}
    trained = sp.csr_matrix(interactions.matrix)[[index[k] for k in keys]]
    return {key for i, key in enumerate(keys) if not _same_row(now[i], trained[i])}


def _same_row(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    a.eliminate_zeros(), b.eliminate_zeros()
    a.sort_indices(), b.sort_indices()
    return np.array_equal(a.indices, b.indices) and np.allclose(a.data, b.data, rtol=1e-5, atol=1e-6)
