"""Blending collaborative and content candidates into one list.

Collaborative models cannot rank a film the community has not rated; a content model can,
but ranks the canon worse. The blend keeps the collaborative order and gives the content
model a fixed share of the slots, spread evenly down the list: slot ``i`` (1-based) goes to
the content list when ``floor(i * share)`` steps up, so with share 0.2 slots 5, 10, 15 ...
are content picks. A film already placed is skipped; when one list runs dry the other fills
in. The share is ``content / (collaborative + content)`` of the weights in settings.
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


def content_slots(n: int, share: float) -> np.ndarray:
    """Boolean (n,): which slots of a list of ``n`` belong to the content candidates."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    steps = np.floor(np.arange(n + 1) * share + 1e-9)
    return np.diff(steps) > 0


def blend_lists(collaborative: np.ndarray, content: np.ndarray, n: int, share: float) -> np.ndarray:
    """Per row, ``n`` item indices from two ranked index lists (-1 = empty); -1 fills what
    neither list can."""
    cf, cb = np.asarray(collaborative, dtype=np.int64), np.asarray(content, dtype=np.int64)
    if cf.ndim != 2 or cb.ndim != 2 or cf.shape[0] != cb.shape[0]:
        raise ValueError(f"need two 2-d lists with the same rows, got {cf.shape} and {cb.shape}")
    slots = content_slots(n, share)
    out = np.full((cf.shape[0], n), -1, dtype=np.int64)
    for u in range(cf.shape[0]):
        out[u] = _merge(cf[u][cf[u] >= 0], cb[u][cb[u] >= 0], slots)
    return out


def _merge(cf: np.ndarray, cb: np.ndarray, slots: np.ndarray) -> np.ndarray:
    out = np.full(len(slots), -1, dtype=np.int64)
    taken: set[int] = set()
    pos = [0, 0]
    lists = (cf, cb)
    for i, want_content in enumerate(slots):
        for source in (1, 0) if want_content else (0, 1):
            items = lists[source]
            while pos[source] < len(items) and int(items[pos[source]]) in taken:
                pos[source] += 1
            if pos[source] < len(items):
                out[i] = items[pos[source]]
                taken.add(int(out[i]))
                pos[source] += 1
                break
    return out


def blend_frames(collaborative: pl.DataFrame, content: pl.DataFrame, n: int, share: float) -> pl.DataFrame:
    """The same blend on recommendation rows (``user_key``, ``rank``, ``tmdb_id`` and any other
    columns, shared by both frames). Returns ``n`` rows per user of ``collaborative``, ranks
    renumbered from 1, a ``candidate`` column saying which list each row came from."""
    slots = content_slots(n, share)
    cf = collaborative.with_columns(candidate=pl.lit("collaborative")).sort("user_key", "rank")
    cb = content.select(cf.drop("candidate").columns).with_columns(candidate=pl.lit("content"))
    cb = cb.sort("user_key", "rank")
    cb_by_user = {key[0]: frame for key, frame in cb.partition_by("user_key", as_dict=True).items()}
    parts = []
    for key, frame in cf.partition_by("user_key", as_dict=True, maintain_order=True).items():
        other = cb_by_user.get(key[0], cb.clear())
        ids = _merge_ids(frame["tmdb_id"].to_numpy(), other["tmdb_id"].to_numpy(), slots)
        pool = pl.concat([frame, other.filter(~pl.col("tmdb_id").is_in(frame["tmdb_id"].implode()))])
        pool = pool.unique("tmdb_id", keep="first", maintain_order=True)
        order = pl.DataFrame({"tmdb_id": ids, "_new": np.arange(1, len(ids) + 1)})
        parts.append(order.join(pool, on="tmdb_id", how="left").drop("rank").rename({"_new": "rank"}))
    if not parts:
        return cf.clear()
    return pl.concat(parts).select(cf.columns)


def _merge_ids(cf: np.ndarray, cb: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """``_merge`` on raw ids (any int64, no -1 sentinel): positions stand in for the ids."""
    universe, inverse = np.unique(np.concatenate([cf, cb]).astype(np.int64), return_inverse=True)
    merged = _merge(inverse[: len(cf)], inverse[len(cf) :], slots)
    return universe[merged[merged >= 0]]


def recent_share(top: np.ndarray, is_recent: np.ndarray, k: int) -> float:
    """Share of the filled top-``k`` slots holding a film from the recent years."""
    slots = np.asarray(top)[:, :k]
    filled = slots[slots >= 0]
    return float(np.asarray(is_recent)[filled].mean()) if len(filled) else 0.0
