"""Fitting the content model: the cold-film protocol chooses its LightFM mode and
hyperparameters (``fit_content_model``), the nightly refit reuses the last card's
(``refit_content_model``); either way it is refitted on every observation, given as the
matrices of ``build_interactions`` (at ML-32M size a 32M-row frame, split and collapsed again,
cost minutes and gigabytes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.data.content_features import DEFAULT_OVERVIEW, FeatureSpace
from lbx_orchestration.core.recsys.evaluation.cold import (
    BASELINES,
    COLD_MODELS,
    DEFAULT_CONTENT_MODEL,
    ColdReport,
    run_cold_protocol_on,
)
from lbx_orchestration.core.recsys.evaluation.protocol import align_item_features
from lbx_orchestration.core.recsys.models import create_model
from lbx_orchestration.core.recsys.models.pipeline import TrainedModel


def content_features(
    movies: pl.DataFrame, overview: str = DEFAULT_OVERVIEW
) -> tuple[FeatureSpace, tuple[np.ndarray, sp.csr_matrix]]:
    """The feature space of ``movies`` (flat TMDb rows) and their rows in it, keyed by TMDb id:
    what the content model is measured, fitted and served with."""
    space = FeatureSpace.fit(movies, overview=overview)
    return space, (movies["tmdb_id"].to_numpy().astype(np.int64), space.transform(movies))


def refit_content_model(
    full: Interactions,
    movies: pl.DataFrame,
    last_card: dict[str, Any],
    seed: int,
    overview: str = DEFAULT_OVERVIEW,
) -> tuple[TrainedModel, FeatureSpace]:
    space, features = content_features(movies, overview)
    trained = _fit_on_everything(
        last_card["name"],
        last_card["params"],
        full,
        features,
        seed,
        metrics=last_card["metrics"],
        protocol=f"Hyperparameters and metrics reused from version {last_card['version']}: " + last_card["protocol"],
        evaluations=last_card.get("evaluations", []),
    )
    return trained, space


def _fit_on_everything(
    name: str,
    params: dict[str, Any],
    full: Interactions,
    features: tuple[np.ndarray, Any],
    seed: int,
    **card: Any,
) -> TrainedModel:
    """``name`` with ``params`` fitted on every observation, as a new version with ``card``'s
    metrics, protocol and evaluations."""
    model = create_model(name, {k: v for k, v in params.items() if k not in ("seed", "mode", "num_threads")}, seed=seed)
    model.fit(full.matrix, item_features=align_item_features(full.item_ids, features))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return TrainedModel(
        name=name,
        version=f"{stamp}-{full.matrix.nnz}",
        model=model,
        interactions=full,
        params=dict(model.params),
        **card,
    )


def fit_content_model(
    full: Interactions,
    movies: pl.DataFrame,
    seed: int,
    relevance: float | None,
    budget: int | None,
    tune: bool = True,
    overview: str = DEFAULT_OVERVIEW,
) -> tuple[TrainedModel, FeatureSpace, ColdReport]:
    """Cold-film protocol on ``full`` (every observation) with features from ``movies`` (flat
    TMDb rows), then the validation winner (a LightFM mode or the content baseline) refitted on
    everything, on the same features it was measured with. Without ``tune`` every model keeps its
    defaults and only the default mode and the content baseline compete."""
    space, features = content_features(movies, overview)
    votes = {int(t): float(v) for t, v in movies.select("tmdb_id", "vote_count").drop_nulls().iter_rows()}
    report = run_cold_protocol_on(
        full,
        features,
        votes,
        # untuned, the default mode and the content baseline are each validated with their default
        # configuration (one LightFM fit more), so the baseline is served whenever it wins; the
        # other mode is not measured, a LightFM fit on the whole community saved
        models=COLD_MODELS if tune else (DEFAULT_CONTENT_MODEL, *BASELINES),
        seed=seed,
        relevance=relevance,
        budget=budget if tune else 1,
        tune_models=True,
        n_observations=full.matrix.nnz,
    )
    served = report.served
    if served is None:
        raise RuntimeError(f"no content model could be evaluated: {'; '.join(report.notes)}")
    row = report.row(served)
    assert row is not None
    trained = _fit_on_everything(
        served,
        row["params"],
        full,
        features,
        seed,
        metrics={k: float(v) for k, v in row.items() if "@" in k and isinstance(v, float)},
        protocol=report.protocol_text(),
        evaluations=[
            {"model": r["model"], **{k: v for k, v in r.items() if "@" in k}, "params": r["params"]}
            for r in report.rows
        ],
    )
    return trained, space, report
