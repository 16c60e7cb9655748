"""Top-N recommendations per user from a trained model: filtered, diversified and explained."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Recommender
from lbx_orchestration.core.recsys.serving.explain import (
    explain,
)
from lbx_orchestration.core.recsys.serving.rerank import mmr_rerank_batch
from lbx_orchestration.core.recsys.threads import default_threads
from lbx_orchestration.core.recsys.topk import top_k
from lbx_orchestration.core.settings import RELEVANCE

REC_SCHEMA = {
    "user_key": pl.Utf8,
    "rank": pl.Int32,
    "tmdb_id": pl.Int64,
    "score": pl.Float64,
    "reason": pl.Utf8,
}


@dataclass(frozen=True)
class ServingPolicy:
    top_n: int = 50
    candidates: int = 200
    mmr_lambda: float = 0.8
    watchlist: str = "exclude"  # exclude | boost | ignore
    watchlist_boost: float = 0.1
    explain_top: int = 2
    min_rating: float = RELEVANCE
    # the main list fuses the collaborative list with the content model's films of the last
    # blend_recent_years years of the data (core/recsys/serving/blend.py: weighted reciprocal rank)
    blend_collaborative_weight: float = 0.8
    blend_content_weight: float = 0.2
    blend_recent_years: int = 5
    # the share of recent films follows the member's own latest films (core/recsys/serving/present.py);
    # off, every member gets the fixed-weight fusion above (the member protocol measures both)
    blend_by_member_share: bool = True
    # serving.new_for_you: each member's top films of the catalogue's last N months
    new_for_you_months: int = 24
    new_for_you_top_n: int = 20
    new_film_min_votes: int = 200  # TMDb votes a new film needs to be proposed (new_for_you, blend)
    new_film_min_rating: float = 6.0  # and TMDb's average rating it needs (over those votes)
    # serve as on this day: films released after it are not proposed and New for you's window ends
    # there (the member protocol replays each member's past; None is today)
    as_of: dt.date | None = None


def _score_in_threads(model: Recommender, user_idx: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
    """``model.score_users`` with the users split over the cores: scipy's sparse products and
    BLAS release the GIL, and the sparse ones (EASE, item-kNN) are otherwise single-threaded."""
    workers = min(default_threads(), max(1, len(user_idx) // 32))
    if workers == 1:
        return model.score_users(user_idx, train)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda chunk: model.score_users(chunk, train), np.array_split(user_idx, workers)))
    return np.vstack(parts)


@dataclass(frozen=True)
class ItemSide:
    """What serving knows of the model's films, in its column order."""

    titles: list[str]
    allowed: np.ndarray  # servable films: movies with enough votes
    mmr_vectors: sp.csr_matrix  # film features, rows of unit L2 norm: diversity
    explain_vectors: np.ndarray | sp.csr_matrix  # CF item embeddings: the explanation shortlist
    explain_exact: sp.csr_matrix | None = None  # unit item vectors of the interactions: the choice


@dataclass(frozen=True)
class UserSide:
    """Users' films, one row per user: ``seen`` (rated, logged or watched) is never recommended,
    ``watchlist`` follows the policy, ``ratings`` explain the picks."""

    keys: np.ndarray
    seen: sp.csr_matrix
    watchlist: sp.csr_matrix | None
    ratings: sp.csr_matrix


def user_rows(
    model: Recommender,
    user_idx: np.ndarray,
    train: sp.csr_matrix,
    users: UserSide,
    items: ItemSide,
    policy: ServingPolicy,
    scores: np.ndarray | None = None,
) -> pl.DataFrame:
    """Recommendations for the users ``user_idx`` (rows of ``train`` and of ``users``' matrices;
    ``users.keys`` holds the keys of exactly these users). ``scores``, when given, replaces
    ``model.score_users`` (folded-in users)."""
    seen, watchlist, ratings = users.seen, users.watchlist, users.ratings
    if scores is None:
        scores = _score_in_threads(model, user_idx, train)
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[:, ~items.allowed] = -np.inf
    if watchlist is not None and policy.watchlist != "ignore":
        wl = watchlist[user_idx].toarray() > 0
        if policy.watchlist == "exclude":
            scores[wl] = -np.inf
        else:
            spread = np.nanstd(np.where(np.isfinite(scores), scores, np.nan), axis=1, keepdims=True)
            scores = np.where(wl & np.isfinite(scores), scores + policy.watchlist_boost * 10 * spread, scores)
    n_cand = min(policy.candidates, scores.shape[1])
    cand_idx, cand_scores = top_k(scores, n_cand, exclude=seen[user_idx])
    valid = (cand_idx >= 0) & np.isfinite(cand_scores)
    picked_all = mmr_rerank_batch(
        np.where(valid, cand_idx, -1),
        np.where(valid, cand_scores, 0.0),
        items.mmr_vectors,
        k=policy.top_n,
        lambda_=policy.mmr_lambda,
        normalized=True,
    )
    rows: dict[str, list] = {k: [] for k in REC_SCHEMA}
    for pos, u in enumerate(user_idx):
        picked = picked_all[pos][picked_all[pos] >= 0]
        if len(picked) == 0:
            continue
        score_of = dict(zip(cand_idx[pos][valid[pos]].tolist(), cand_scores[pos][valid[pos]].tolist(), strict=True))
        rated = ratings[u]
        rated_idx = rated.indices
        rated_vals = rated.data.astype(np.float64)
        reasons = explain(
            rated_idx,
            rated_vals,
            picked,
            items.explain_vectors,
            items.titles,
            top_n=policy.explain_top,
            min_rating=policy.min_rating,
            exact_vectors=items.explain_exact,
        )
        for rank, (item, reason) in enumerate(zip(picked.tolist(), reasons, strict=True), start=1):
            rows["user_key"].append(str(users.keys[pos]))
            rows["rank"].append(rank)
            rows["tmdb_id"].append(item)  # item index for now; mapped to ids by the caller
            rows["score"].append(float(score_of[item]))
            rows["reason"].append(reason)
    return pl.DataFrame(rows, schema=REC_SCHEMA)


def recommend_all(
    model: Recommender,
    train: sp.csr_matrix,
    item_ids: np.ndarray,
    users: UserSide,
    items: ItemSide,
    policy: ServingPolicy,
    rows: np.ndarray | None = None,
    batch_size: int = 256,
) -> pl.DataFrame:
    """Top-N rows for the rows ``rows`` of ``train`` (default: every user; ``users`` holds one
    row per row of ``train``); ``tmdb_id`` holds real TMDb ids."""
    wanted = np.arange(train.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    parts = []
    for start in range(0, len(wanted), batch_size):
        batch = wanted[start : start + batch_size]
        parts.append(user_rows(model, batch, train, replace(users, keys=users.keys[batch]), items, policy))
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=REC_SCHEMA)
    return frame.with_columns(
        pl.Series("tmdb_id", np.asarray(item_ids, dtype=np.int64)[frame["tmdb_id"].to_numpy()], dtype=pl.Int64)
    )
