"""Blending collaborative and content candidates into one list.

Collaborative models cannot rank a film the community has not rated; a content model can,
but ranks the canon worse. The blend is a weighted reciprocal-rank fusion of the two lists
(the content list holds only new films): ``score = w_cf / (60 + rank_cf) + w_cb / (60 +
rank_cb)``. A new film climbs into the top of the list when the content model ranks it high
AND the collaborative list does not bury it, so the list keeps most of its accuracy while new
films get in. The weights are settings (``blend_collaborative_weight``,
``blend_content_weight``) and are written into the content model's card.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class BlendWeights:
    collaborative: float = 0.8
    content: float = 0.2

    def __post_init__(self) -> None:
        if self.collaborative < 0 or self.content < 0 or self.collaborative + self.content <= 0:
            raise ValueError(f"blend weights must be >= 0 and not both 0, got {self.collaborative}, {self.content}")

    @property
    def content_share(self) -> float:
        return self.content / (self.collaborative + self.content)


RRF_K = 60


def fuse_lists(
    collaborative: np.ndarray, content: np.ndarray, n: int, weights: BlendWeights, k: int = RRF_K
) -> np.ndarray:
    """Weighted reciprocal-rank fusion of two ranked index lists per row (-1 = empty):
    ``score(i) = w_cf / (k + rank_cf(i)) + w_cb / (k + rank_cb(i))``, a list that does not hold
    ``i`` adds nothing. A content candidate rises into the top of the list only when the
    collaborative list also ranks it reasonably, or the content model ranks it very high.
    Ties keep the collaborative order. Returns ``n`` indices per row, -1 where none is left."""
    cf, cb = np.asarray(collaborative, dtype=np.int64), np.asarray(content, dtype=np.int64)
    if cf.ndim != 2 or cb.ndim != 2 or cf.shape[0] != cb.shape[0]:
        raise ValueError(f"need two 2-d lists with the same rows, got {cf.shape} and {cb.shape}")
    out = np.full((cf.shape[0], n), -1, dtype=np.int64)
    w_cf, w_cb = weights.collaborative, weights.content
    for u in range(cf.shape[0]):
        score: dict[int, float] = {}
        order: dict[int, int] = {}
        for rank, item in enumerate(cf[u][cf[u] >= 0], start=1):
            score[int(item)] = w_cf / (k + rank)
            order[int(item)] = rank
        for rank, item in enumerate(cb[u][cb[u] >= 0], start=1):
            score[int(item)] = score.get(int(item), 0.0) + w_cb / (k + rank)
            order.setdefault(int(item), len(cf[u]) + rank)
        ranked = sorted(score, key=lambda i: (-score[i], order[i]))[:n]
        out[u, : len(ranked)] = ranked
    return out


def blend_frames(collaborative: pl.DataFrame, content: pl.DataFrame, n: int, weights: BlendWeights) -> pl.DataFrame:
    """``fuse_lists`` on recommendation rows (``user_key``, ``rank``, ``tmdb_id`` and any other
    columns, the same in both frames). Returns up to ``n`` rows per user of ``collaborative``,
    ranks renumbered from 1, and a ``candidate`` column saying which list each row came from
    (a film in both keeps its collaborative row). A user only ``content`` holds gets its rows."""
    cf = collaborative.with_columns(candidate=pl.lit("collaborative")).sort("user_key", "rank")
    cb = content.select(collaborative.columns).with_columns(candidate=pl.lit("content")).sort("user_key", "rank")
    cf_by_user, cb_by_user = by_user(cf), by_user(cb)
    parts = []
    for user in dict.fromkeys([*cf_by_user, *cb_by_user]):
        frame, other = cf_by_user.get(user, cf.clear()), cb_by_user.get(user, cb.clear())
        ids = _fuse_ids(frame["tmdb_id"].to_numpy(), other["tmdb_id"].to_numpy(), n, weights)
        pool = pl.concat([frame, other]).unique("tmdb_id", keep="first", maintain_order=True)
        order = pl.DataFrame({"tmdb_id": ids, "_new": np.arange(1, len(ids) + 1)})
        parts.append(order.join(pool, on="tmdb_id", how="left").drop("rank").rename({"_new": "rank"}))
    if not parts:
        return cf.clear()
    return pl.concat(parts).select(cf.columns)


def by_user(rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each user's rows, users in order of first appearance."""
    return {key[0]: frame for key, frame in rows.partition_by("user_key", as_dict=True, maintain_order=True).items()}


def _fuse_ids(cf: np.ndarray, cb: np.ndarray, n: int, weights: BlendWeights) -> np.ndarray:
    """``fuse_lists`` on raw ids (any int64): positions in a shared universe stand in for them."""
    universe, inverse = np.unique(np.concatenate([cf, cb]).astype(np.int64), return_inverse=True)
    fused = fuse_lists(inverse[None, : len(cf)], inverse[None, len(cf) :], n, weights)[0]
    return universe[fused[fused >= 0]]


def recent_share(top: np.ndarray, is_recent: np.ndarray, k: int) -> float:
    """Share of the filled top-``k`` slots holding a film from the recent years."""
    slots = np.asarray(top)[:, :k]
    filled = slots[slots >= 0]
    return float(np.asarray(is_recent)[filled].mean()) if len(filled) else 0.0


def on_collaborative_scale(rows: pl.DataFrame) -> pl.DataFrame:
    """Content picks carry the content model's score, on its own scale (LightFM's -3.8 beside
    EASE's 0.33 in one list): each takes the mean of the collaborative scores just above and
    below its place, so a member's list reads on one scale and its scores fall with its rank."""
    if "score" not in rows.columns or "candidate" not in rows.columns:
        return rows
    collaborative = pl.when(pl.col("candidate") == "collaborative").then(pl.col("score"))
    around = pl.mean_horizontal(
        collaborative.forward_fill().over("user_key"), collaborative.backward_fill().over("user_key")
    )
    is_content = pl.col("candidate") == "content"
    return rows.sort("user_key", "rank").with_columns(
        score=pl.when(is_content).then(around.fill_null(pl.col("score"))).otherwise(pl.col("score"))
    )
