"""The offline evaluation protocol: split, tune on validation, refit, score on test."""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.prepared import (  # noqa: F401 (sample_users: imported from here too)
    DEFAULT_TEST_FRAC,
    EVAL_USERS,
    EVAL_USERS_REASON,
    Prepared,
    prepare,
    sample_users,
)
from lbx_orchestration.core.recsys.data.split import validation_split
from lbx_orchestration.core.recsys.evaluation.evaluate import evaluate
from lbx_orchestration.core.recsys.evaluation.metrics import HEADLINE_METRICS, PRIMARY_METRIC
from lbx_orchestration.core.recsys.models import (
    MODEL_REGISTRY,
    NEEDS_ITEM_FEATURES,
    create_model,
)
from lbx_orchestration.core.recsys.models.tune import tune
from lbx_orchestration.core.settings import RELEVANCE, SEED

DEFAULT_MODELS = tuple(MODEL_REGISTRY)  # every registered model, in registry order
VAL_FRAC = 0.1
TUNE_METRIC = PRIMARY_METRIC
HEADLINE = HEADLINE_METRICS


def read_movielens_ratings(path: str | Path) -> pl.DataFrame:
    """MovieLens ``ratings.csv`` (or a directory holding it) as an observation frame.

    ``user_key`` = ``"movielens:{userId}"``, ``tmdb_id`` = ``movieId`` (the core never
    assumes ids are TMDb ids), ``ts`` = the unix ``timestamp`` as a naive UTC datetime.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "ratings.csv"
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens ratings file not found: {path}")
    raw = pl.read_csv(path)
    expected = {"userId", "movieId", "rating", "timestamp"}
    if not expected <= set(raw.columns):
        raise ValueError(f"{path} is not a MovieLens ratings file: needs columns {sorted(expected)}, got {raw.columns}")
    return raw.select(
        user_key=pl.concat_str(pl.lit("movielens:"), pl.col("userId").cast(pl.String)),
        tmdb_id=pl.col("movieId").cast(pl.Int64),
        rating=pl.col("rating").cast(pl.Float64),
        ts=pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit="s"),
    )


def align_item_features(item_ids: np.ndarray, features: tuple[np.ndarray, sp.csr_matrix]) -> sp.csr_matrix:
    """Rows of ``features`` reordered to follow ``item_ids``; unknown items get empty rows."""
    feat_ids, matrix = np.asarray(features[0], dtype=np.int64), sp.csr_matrix(features[1])
    if matrix.shape[0] != len(feat_ids):
        raise ValueError(f"item_features: {len(feat_ids)} item ids but the matrix has {matrix.shape[0]} rows")
    if len(np.unique(feat_ids)) != len(feat_ids):
        raise ValueError("item_features: item ids contain duplicates")
    order = np.argsort(feat_ids, kind="stable")
    sorted_ids = feat_ids[order]
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if len(sorted_ids) == 0:
        return sp.csr_matrix((len(item_ids), matrix.shape[1]), dtype=np.float32)
    pos = np.minimum(np.searchsorted(sorted_ids, item_ids), len(sorted_ids) - 1)
    found = sorted_ids[pos] == item_ids
    picker = sp.csr_matrix(
        (np.ones(int(found.sum()), dtype=np.float32), (np.flatnonzero(found), order[pos][found])),
        shape=(len(item_ids), matrix.shape[0]),
    )
    return sp.csr_matrix(picker @ matrix, dtype=np.float32)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


@dataclass
class EvalReport:
    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        cols = ["model", *HEADLINE, "fit_seconds", "params"]
        lines = [
            "| " + " | ".join(cols) + " |",
            "|" + "|".join("---" for _ in cols) + "|",
        ]
        for row in self.rows:
            cells = [_fmt(row.get(c, "")) for c in cols]
            cells[cols.index("fit_seconds")] = f"{row['fit_seconds']:.2f}"
            lines.append("| " + " | ".join(cells) + " |")
        parts = ["\n".join(lines), "", self.protocol_text()]
        if self.notes:
            parts += ["", "Notes:", *(f"- {note}" for note in self.notes)]
        return "\n".join(parts) + "\n"

    def to_json(self) -> str:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            if isinstance(value, np.generic):
                return clean(value.item())
            return value

        payload = {
            "protocol": self.protocol_text(),
            "settings": self.settings,
            "rows": self.rows,
            "notes": self.notes,
        }
        return json.dumps(clean(payload), indent=2, sort_keys=False)

    def protocol_text(self) -> str:
        s = self.settings
        pct = round(s["test_frac"] * 100)
        if s["split"] == "temporal":
            split = (
                f"a temporal split: for each user, the latest {pct}% of their films by "
                f"timestamp (floor(n x {s['test_frac']}), ties by film id)"
            )
        else:
            split = (
                f"a random split: for each user, a random {pct}% of their films "
                f"(floor(n x {s['test_frac']}), seed {s['seed']})"
            )
        if s["relevance"] is None:
            relevant = "every held-out film is relevant (rated or only watched)"
        else:
            relevant = (
                f"a held-out film is relevant when its rating is >= {s['relevance']} "
                "(unrated held-out films are not relevant)"
            )
        if s["tune"]:
            val_how = "latest" if s["validation"] == "temporal" else "a random"
            tuning = (
                f"Hyperparameters were chosen by grid search on {s['tune_metric']}: each "
                f"configuration was fitted on the first 90% of the training part and scored "
                f"on a validation part ({val_how} {round(s['val_frac'] * 100)}% of each "
                "user's training films, the same rule applied again); the best configuration "
                "was then refitted on the full training part and scored once on the test part."
            )
        elif s.get("fixed_params"):
            tuning = (
                "No tuning in this run: the model used fixed hyperparameters (pinned, or the values "
                "its last tuning chose; shown with the results), fitted once on the training part."
            )
        else:
            tuning = "No tuning: every model used its default hyperparameters."
        st = s["split_stats"]
        total, scored = s.get("n_test_users_total"), s.get("n_test_users_scored")
        if total is not None and scored is not None and scored < total:
            sample = (
                f" Scores cover a fixed sample of {scored} of the {total} users with held-out "
                f"films, drawn with seed {s['seed']} (the same users for every model; "
                f"validation during tuning uses a sample of the same size). {EVAL_USERS_REASON}"
            )
        else:
            sample = " Every user with held-out films was scored."
        errors = [
            f"{r['model']} {r['ndcg@10']:.4f} ± {1.96 * r['ndcg@10_se']:.4f}"
            for r in self.rows
            if isinstance(r.get("ndcg@10_se"), float) and r["ndcg@10_se"] == r["ndcg@10_se"]
        ]
        if errors:
            sample += f" NDCG@10 with its 95% interval from the users' spread: {', '.join(errors)}."
        return (
            f"Protocol. {s['n_observations']} observations were collapsed to one per "
            "(user, film) (latest timestamp, latest non-null rating), then held out with "
            f"{split}, keeping at least one film per user in training; users too small to "
            f"hold anything out stayed all-train. {st['n_test_dropped_cold_item']} held-out "
            "pairs whose film never appears in training were dropped, leaving "
            f"{st['n_train']} training and {st['n_test']} test pairs ({s['n_users']} users, "
            f"{s['n_items']} items). {tuning} Each test user is ranked against all "
            f"{s['n_items']} training items minus their own training films; {relevant}."
            f"{sample} Metrics (binary relevance) are averaged over test users with at least one "
            "relevant film; users without one are excluded: NDCG@k = DCG/IDCG with gain "
            "1/log2(rank+1) and IDCG over min(|rel|, k); Recall@k = hits/|rel|; "
            "Precision@k = hits/k; MAP@k = sum of P@i at hit ranks / min(|rel|, k); "
            "HR@k = 1 if any hit; coverage@k = distinct recommended items / catalogue; "
            "pop_share@k = share of recommendations among the 1% most-interacted training "
            f"items. Seed {s['seed']}."
        )


def _lightfm_available() -> str | None:
    try:
        importlib.import_module("lbx_orchestration.core.recsys.models.lightfm_model")
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def run_protocol(
    df: pl.DataFrame | Prepared,
    split: Literal["temporal", "random"] = "temporal",
    test_frac: float | None = None,
    relevance: float | None = RELEVANCE,
    models: Sequence[str] = DEFAULT_MODELS,
    item_features: tuple[np.ndarray, sp.csr_matrix] | None = None,
    seed: int = SEED,
    tune_models: bool = True,
    budget: int | None = None,
    k_values: Sequence[int] = (10, 20),
    eval_users: int | None = EVAL_USERS,
    fixed_params: dict[str, dict[str, Any]] | None = None,
) -> EvalReport:
    """Split ``df``, tune each model on validation, refit on train, score on test.

    ``df`` may be a ``Prepared`` split already (then ``split``, ``test_frac`` and
    ``eval_users`` are its own). A model named in ``fixed_params`` is not tuned: it is
    fitted once with those hyperparameters. Models that cannot run are skipped with a note
    rather than failing the run: lightfm models while their module is not importable, and
    content-based / hybrid lightfm without ``item_features`` (``(item_ids, csr rows)``,
    aligned here by id).
    """
    unknown = [m for m in models if m not in MODEL_REGISTRY]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {sorted(MODEL_REGISTRY)}")
    k_values = sorted({*k_values, 10, 20})
    fixed_params = fixed_params or {}
    if isinstance(df, Prepared):
        prepared = df
    else:
        prepared = prepare(df, split=split, test_frac=test_frac, seed=seed, eval_users=eval_users)
    split, test_frac = prepared.settings["split"], prepared.settings["test_frac"]
    train_i, test_df = prepared.train, prepared.test
    features = align_item_features(train_i.item_ids, item_features) if item_features else None
    tuned = tune_models and any(m not in fixed_params for m in models)

    settings: dict[str, Any] = {
        "split": split,
        "test_frac": test_frac,
        "relevance": relevance,
        "seed": seed,
        "tune": tuned,
        "fixed_params": bool(fixed_params),
        "tune_metric": TUNE_METRIC,
        "val_frac": VAL_FRAC,
        "validation": split,
        "k_values": k_values,
        "n_observations": prepared.n_observations,
        "n_users": train_i.n_users,
        "n_items": train_i.n_items,
        "split_stats": prepared.split_stats,
        "eval_users": prepared.settings["eval_users"],
        "n_test_users_total": prepared.n_test_users,
        "n_test_users_scored": test_df["user_key"].n_unique(),
    }
    fit_i = val_df = fit_features = None
    if tuned:
        if prepared.train_frame is None:
            raise ValueError("tuning needs the training part as a frame: pass the observations, not a cached split")
        val_parts = validation_split(prepared.train_frame, val_frac=VAL_FRAC, method=split, seed=seed)
        fit_i = build_interactions(val_parts.train)
        val_df, _ = sample_users(val_parts.test, prepared.settings["eval_users"], seed)
        settings["validation_stats"] = val_parts.stats
        if item_features:
            fit_features = align_item_features(fit_i.item_ids, item_features)

    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    lightfm_error = _lightfm_available() if any(m.startswith("lightfm") for m in models) else None
    for name in models:
        if name.startswith("lightfm") and lightfm_error:
            notes.append(f"{name} skipped: the LightFM model is not importable ({lightfm_error}).")
            continue
        if name in NEEDS_ITEM_FEATURES and item_features is None:
            notes.append(f"{name} skipped: it needs item_features and none were given.")
            continue
        tune_seconds = 0.0
        trials: list[dict[str, Any]] = []
        params: dict[str, Any] = dict(fixed_params.get(name, {}))
        if tuned and name not in fixed_params:
            started = time.perf_counter()
            params, _, trials = tune(
                name,
                fit_i,
                val_df,
                item_features=fit_features,
                budget=budget,
                seed=seed,
                metric=TUNE_METRIC,
                relevance=relevance,
            )
            tune_seconds = time.perf_counter() - started
        model = create_model(name, params, seed=seed)
        started = time.perf_counter()
        model.fit(train_i.matrix, item_features=features)
        fit_seconds = time.perf_counter() - started
        metrics = evaluate(model, train_i, test_df, k_values=k_values, relevance=relevance)
        rows.append(
            {
                "model": name,
                "split": split,
                "test_frac": test_frac,
                "relevance": relevance,
                **{k: v for k, v in metrics.items() if "@" in k},
                "params": dict(model.params),
                "validation_score": max((t["score"] for t in trials), default=float("nan")),
                "n_trials": len(trials),
                "fit_seconds": fit_seconds,
                "tune_seconds": tune_seconds,
                "n_users": train_i.n_users,
                "n_items": train_i.n_items,
                "n_train": int(train_i.matrix.nnz),
                "n_test": test_df.height,
                "n_users_evaluated": int(metrics["n_users_evaluated"]),
                "n_users_no_relevant": int(metrics["n_users_no_relevant"]),
            }
        )
    return EvalReport(rows=rows, settings=settings, notes=notes)
