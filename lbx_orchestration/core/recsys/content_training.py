"""Fitting the content model: the cold-film protocol measures it and chooses its LightFM mode
and hyperparameters (``fit_content_model``: the model served is the one the protocol scored,
fitted on the test fold's training films); the nightly refit reuses the last card's and fits
every observation (``refit_content_model``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.cold import (
    BASELINES,
    COLD_MODELS,
    DEFAULT_CONTENT_MODEL,
    ColdReport,
    run_cold_protocol_on,
)
from lbx_orchestration.core.recsys.content_features import FeatureSpace
from lbx_orchestration.core.recsys.models import create_model
from lbx_orchestration.core.recsys.pipeline import TrainedModel
from lbx_orchestration.core.recsys.protocol import align_item_features


def refit_content_model(
    full: Interactions, movies: pl.DataFrame, last_card: dict[str, Any], seed: int
) -> tuple[TrainedModel, FeatureSpace]:
    """The last card's mode and hyperparameters fitted on every observation (``full``)."""
    space = _space(movies)
    features = (movies["tmdb_id"].to_numpy().astype(np.int64), space.transform(movies))
    params = {k: v for k, v in last_card["params"].items() if k not in ("seed", "mode")}
    model = create_model(last_card["name"], params, seed=seed)
    model.fit(full.matrix, item_features=align_item_features(full.item_ids, features))
    trained = _trained(
        last_card["name"],
        model,
        full,
        metrics=last_card["metrics"],
        protocol=f"Hyperparameters and metrics reused from version {last_card['version']}: " + last_card["protocol"],
        evaluations=last_card.get("evaluations", []),
    )
    return trained, space


def _trained(name: str, model: Any, interactions: Interactions, **card: Any) -> TrainedModel:
    """A new version of ``model`` (fitted on ``interactions``) with ``card``'s metrics,
    protocol and evaluations."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return TrainedModel(
        name=name,
        version=f"{stamp}-{interactions.matrix.nnz}",
        model=model,
        interactions=interactions,
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
) -> tuple[TrainedModel, FeatureSpace, ColdReport]:
    """Cold-film protocol on ``full`` (every observation, ``build_interactions``' output) with
    features from ``movies`` (flat TMDb rows); the chosen LightFM mode is served as the protocol
    fitted and scored it, on the test fold's training films (a refit on everything would cost a
    second LightFM fit on the whole community for the 20% of films held out, which the model
    scores from their features anyway; the nightly refit fits everything). Without ``tune``
    every model keeps its defaults, no validation hold-out is fitted and only the default mode
    is measured and served."""
    space = FeatureSpace.fit(movies)
    ids = movies["tmdb_id"].to_numpy().astype(np.int64)
    features = (ids, space.transform(movies))  # the protocol adds the vote-count block itself
    votes = {int(t): float(v) for t, v in movies.select("tmdb_id", "vote_count").drop_nulls().iter_rows()}
    report = run_cold_protocol_on(
        full,
        features,
        votes,
        # untuned, nothing is chosen: the default mode is measured (with the baselines its check
        # needs), not the other one, a LightFM fit on the whole community saved
        models=COLD_MODELS if tune else (DEFAULT_CONTENT_MODEL, *BASELINES),
        seed=seed,
        relevance=relevance,
        budget=budget,
        tune_models=tune,
        n_observations=full.matrix.nnz,
    )
    served = report.served
    if served is None:
        raise RuntimeError(f"no content model could be evaluated: {'; '.join(report.notes)}")
    row = report.row(served)
    assert row is not None
    assert report.trained_on is not None
    trained = _trained(
        served,
        report.fitted[served],
        report.trained_on,
        metrics={k: float(v) for k, v in row.items() if "@" in k and isinstance(v, float)},
        protocol=report.protocol_text()
        + f" The served {served} is the fit scored above (on the {report.trained_on.matrix.nnz} training pairs); "
        "the nightly refit fits every pair with its hyperparameters.",
        evaluations=[
            {"model": r["model"], **{k: v for k, v in r.items() if "@" in k}, "params": r["params"]}
            for r in report.rows
        ],
    )
    # serving builds the rows the served model was fitted on: with the vote-count block when
    # the protocol had vote counts
    return trained, space.with_votes() if votes else space, report


def _space(movies: pl.DataFrame) -> FeatureSpace:
    """The feature space of ``movies``, with the vote-count block when any film has a count
    (as ``fit_content_model`` measures and serves it)."""
    space = FeatureSpace.fit(movies)
    return space.with_votes() if movies["vote_count"].drop_nulls().len() else space
