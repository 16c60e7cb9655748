"""Measuring the blend on the temporal protocol: what it costs in NDCG and what it buys in new films.

Same split as the main protocol (each user's latest share of films held out). The
collaborative model and the content model are fitted on the training part with the
hyperparameters their own protocols chose; each test user gets the collaborative top-N,
the content model's top-N among the films of the last ``recent_years`` years of the data
(up to the year by which 99% of the observations had been made) and their blend. Reported
for the collaborative list and the blend: NDCG@10, Recall@20 and the share of top-10 slots
holding a film from those years.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.split import temporal_split
from lbx_orchestration.core.recsys.evaluation.evaluate import relevance_matrix
from lbx_orchestration.core.recsys.evaluation.metrics import popular_items, ranking_metrics
from lbx_orchestration.core.recsys.evaluation.protocol import align_item_features
from lbx_orchestration.core.recsys.models import create_model
from lbx_orchestration.core.recsys.serving.blend import BlendWeights, fuse_lists, recent_share
from lbx_orchestration.core.recsys.topk import top_k
from lbx_orchestration.core.settings import RELEVANCE, SEED

LIST_LENGTH = 50


@dataclass
class BlendResult:
    collaborative: str
    content: str
    weights: BlendWeights
    recent_years: int
    #: the year by which 99% of the training observations had been made: the data's present
    present_year: int
    rows: list[dict[str, Any]]
    n_users: int

    def row(self, name: str) -> dict[str, Any]:
        return next(r for r in self.rows if r["list"] == name)

    @property
    def ndcg_ratio(self) -> float:
        return self.row("blend")["ndcg@10"] / self.row("collaborative")["ndcg@10"]

    @property
    def recent_ratio(self) -> float:
        base = self.row("collaborative")["recent_share@10"]
        return self.row("blend")["recent_share@10"] / base if base > 0 else float("inf")

    def to_markdown(self) -> str:
        cols = ["list", "ndcg@10", "recall@20", "recent_share@10", "coverage@10"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join([r["list"], *(f"{r[c]:.4f}" for c in cols[1:])]) + " |")
        return "\n".join(lines) + "\n"

    def protocol_text(self) -> str:
        w = self.weights
        return (
            f"Blend protocol. Temporal split as above; {self.collaborative} (the best collaborative model "
            f"of section 1, its tuned hyperparameters) and {self.content} (the served content model of the "
            "cold-film protocol, its tuned hyperparameters) were fitted on the training part. Each of the "
            f"{self.n_users} test users with a relevant film gets {self.collaborative}'s top {LIST_LENGTH}, "
            f"the content model's top {LIST_LENGTH} among films released in "
            f"{self.present_year - self.recent_years + 1} or later (the last {self.recent_years} years of the "
            f"data: {self.present_year} is the year by which 99% of the training observations had been made) "
            "and their blend: weighted reciprocal-rank "
            f"fusion, score = {w.collaborative:g} / (60 + collaborative rank) + {w.content:g} / (60 + content "
            "rank), a list that lacks the film adding nothing. Seen films are excluded everywhere. "
            "recent_share@10 = share of top-10 slots holding a film released in those years."
        )


def run_blend_protocol(
    df: pl.DataFrame,
    item_features: tuple[np.ndarray, sp.csr_matrix],
    film_years: dict[int, int],
    collaborative: tuple[str, dict[str, Any]],
    content: tuple[str, dict[str, Any]],
    weights: Sequence[BlendWeights],
    *,
    recent_years: int = 5,
    test_frac: float = 0.2,
    relevance: float | None = RELEVANCE,
    seed: int = SEED,
) -> list[BlendResult]:
    """One temporal split, both models fitted once, one result per blend weight."""
    parts = temporal_split(df, test_frac=test_frac)
    train = build_interactions(parts.train)
    features = align_item_features(train.item_ids, item_features)
    years = np.array([film_years.get(int(i)) or 0 for i in train.item_ids], dtype=np.int64)
    if not (years > 0).any():
        raise ValueError("no film has a release year: the blend protocol needs them")
    present = data_present(parts.train)
    is_recent = years > present - recent_years
    cf_model = create_model(collaborative[0], {k: v for k, v in collaborative[1].items() if k != "seed"}, seed)
    cf_model.fit(train.matrix, item_features=features)
    cb_model = create_model(content[0], {k: v for k, v in content[1].items() if k != "seed"}, seed)
    cb_model.fit(train.matrix, item_features=features)
    relevant, _ = relevance_matrix(parts.test, train, relevance)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    cf_top = np.full((len(users), LIST_LENGTH), -1, dtype=np.int64)
    cb_top = np.full((len(users), LIST_LENGTH), -1, dtype=np.int64)
    for start in range(0, len(users), 512):
        batch = users[start : start + 512]
        seen = train.matrix[batch]
        rows = slice(start, start + len(batch))
        cf_top[rows], _ = top_k(cf_model.score_users(batch, train.matrix), LIST_LENGTH, exclude=seen)
        cb_scores = np.array(cb_model.score_users(batch, train.matrix), dtype=np.float64)
        cb_scores[:, ~is_recent] = -np.inf
        cb_top[rows], _ = top_k(cb_scores, LIST_LENGTH, exclude=seen)
    popular = popular_items(train.matrix)

    def row(name: str, top: np.ndarray) -> dict[str, Any]:
        metrics = ranking_metrics(top, relevant[users], [10, 20], popular)
        return {
            "list": name,
            **{k: v for k, v in metrics.items() if "@" in k},
            "recent_share@10": recent_share(top, is_recent, 10),
        }

    base = [row("collaborative", cf_top), row("content", cb_top)]
    return [
        BlendResult(
            collaborative=collaborative[0],
            content=content[0],
            weights=w,
            recent_years=recent_years,
            present_year=present,
            n_users=len(users),
            rows=[*base, row("blend", fuse_lists(cf_top, cb_top, LIST_LENGTH, w))],
        )
        for w in weights
    ]


def data_present(train: pl.DataFrame, share: float = 0.99) -> int:
    """The year by which ``share`` of the training observations had been made. The bundled
    community stops in 2018 while a few members log films to this day: the max would call
    2014-2018 films old, though no rater of the community has had the chance to see 2020's."""
    return int(train["ts"].dt.year().quantile(share, interpolation="lower"))


BLEND_GRID = tuple(BlendWeights(1.0 - c, c) for c in (0.1, 0.2, 0.3, 0.4, 0.5))


def choose_blend(
    df: pl.DataFrame,
    item_features: tuple[np.ndarray, sp.csr_matrix],
    film_years: dict[int, int],
    collaborative: tuple[str, dict[str, Any]],
    content: tuple[str, dict[str, Any]],
    *,
    max_loss: float = 0.03,
    grid: Sequence[BlendWeights] = BLEND_GRID,
    recent_years: int = 5,
    test_frac: float = 0.2,
    relevance: float | None = RELEVANCE,
    seed: int = SEED,
) -> tuple[BlendWeights, list[BlendResult]]:
    """The largest content weight of ``grid`` whose blend keeps NDCG@10 within ``max_loss`` of
    the collaborative list on a validation split (each user's latest ``test_frac`` of their
    training films), never looking at the test films. Returns it and the validation results."""
    train = temporal_split(df, test_frac=test_frac).train
    results = run_blend_protocol(
        train,
        item_features,
        film_years,
        collaborative,
        content,
        grid,
        recent_years=recent_years,
        test_frac=test_frac,
        relevance=relevance,
        seed=seed,
    )
    ok = [r for r in results if r.ndcg_ratio >= 1.0 - max_loss]
    best = max(ok, key=lambda r: r.weights.content_share) if ok else min(results, key=lambda r: r.weights.content)
    return best.weights, results
