"""Grid search of a registry model on a validation part."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.evaluation.evaluate import evaluate
from lbx_orchestration.core.recsys.evaluation.metrics import METRIC_NAMES, PRIMARY_METRIC
from lbx_orchestration.core.recsys.models import SEARCH_SPACES, create_model
from lbx_orchestration.core.settings import RELEVANCE, SEED


def tune(
    name: str,
    train_i: Interactions,
    val_df: pl.DataFrame,
    item_features: sp.csr_matrix | None = None,
    budget: int | None = None,
    seed: int = SEED,
    metric: str = PRIMARY_METRIC,
    relevance: float | None = RELEVANCE,
) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """Fit every config of ``SEARCH_SPACES[name]`` (the first ``budget`` of them) on
    ``train_i`` and score it on ``val_df``; return ``(best_params, best_score, trials)``.

    ``best_params`` is the winning model's full ``.params``; ties go to the earlier config.
    Each trial is ``{"params", "score", "fit_seconds", "metrics"}``. ``item_features`` rows
    must follow ``train_i.item_ids``.
    """
    if name not in SEARCH_SPACES:
        raise KeyError(f"no search space for model {name!r}; known: {sorted(SEARCH_SPACES)}")
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be >= 1 or None, got {budget}")
    grid = SEARCH_SPACES[name][:budget] if budget is not None else SEARCH_SPACES[name]
    base, _, k_text = metric.partition("@")
    if base not in METRIC_NAMES or not k_text.isdigit() or int(k_text) < 1:
        raise ValueError(f"metric must look like 'ndcg@10' with one of {METRIC_NAMES}, got {metric!r}")
    k = int(k_text)
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for config in grid:
        model = create_model(name, config, seed=seed)
        started = time.perf_counter()
        model.fit(train_i.matrix, item_features=item_features)
        fit_seconds = time.perf_counter() - started
        metrics = evaluate(model, train_i, val_df, k_values=sorted({k, 10}), relevance=relevance)
        trial = {
            "params": dict(model.params),
            "score": float(metrics[metric]),
            "fit_seconds": fit_seconds,
            "metrics": metrics,
        }
        trials.append(trial)
        if best is None or trial["score"] > best["score"]:
            best = trial
    assert best is not None
    return dict(best["params"]), float(best["score"]), trials
