"""The models group: one asset per recommender, each measured with the protocol and refitted
on everything for serving. Artifacts go to ``data/models/<name>/<version>/``."""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lbx_orchestration.core.recsys.data.prepared import Prepared, cached_prepare
from lbx_orchestration.core.recsys.data.training_data import inputs_fingerprint, item_features, training_observations
from lbx_orchestration.core.recsys.evaluation.metrics import PRIMARY_METRIC
from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, latest_path, save_trained, train_for_serving
from lbx_orchestration.core.recsys.models.retrain import RetrainPolicy, trailing_reason
from lbx_orchestration.core.tables import protected_model_paths
from lbx_orchestration.resources import LbxSettings

FEATURE_DEPS = ["user_item_interactions", "movie_features", "keyword_tfidf"]


class ModelConfig(dg.Config):
    """What the schedule, "Materialize all" and the demo all run: a refit that reuses the last
    tuned hyperparameters (the defaults the first time). Tuning is most of a model's cost."""

    tune: bool = Field(
        default=False,
        description="Search the hyperparameters again on a validation split (and, for LightFM, "
        "measure its CF-only and CB-only ablations). Off by default: the nightly refresh and a "
        "launch from the UI reuse the last tuned values; set true to tune.",
    )
    params: dict[str, Any] | None = Field(default=None, description="Pin these hyperparameters")


def _last_params(models_dir: Path, alias: str) -> dict[str, Any] | None:
    try:
        card = json.loads((latest_path(models_dir, alias) / CARD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return {k: v for k, v in card["params"].items() if k not in ("seed", "num_threads")}


def _fingerprint(data: str, registry_name: str, params: dict[str, Any] | None, settings: LbxSettings) -> str:
    """The warehouse inputs (``data``) plus everything else a fit depends on."""
    spec = {
        "model": registry_name,
        "params": params,
        "relevance": settings.relevance,
        "test_frac": settings.test_frac,
        "seed": settings.seed,
        "data": data,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unchanged(models_dir: Path, alias: str, fingerprint: str) -> dg.MaterializeResult | None:
    """The last saved version's result when it was fitted on exactly these inputs, else None."""
    try:
        path = latest_path(models_dir, alias)
        card = json.loads((path / CARD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if card.get("input_fingerprint") != fingerprint:
        return None
    reason = (
        "inputs unchanged since this version was fitted (same interactions, features, "
        "hyperparameters and protocol settings): kept it instead of refitting"
    )
    return _kept(path, card, reason, fingerprint)


def _kept(path: Path, card: dict[str, Any], reason: str, fingerprint: str) -> dg.MaterializeResult:
    """The result of a step that keeps the last saved version (``path``, ``card``) for ``reason``."""
    metadata: dict[str, Any] = {
        "version": card["version"],
        "path": str(path),
        "skipped": True,
        "reason": reason,
        "input_fingerprint": fingerprint,
        "fit_seconds": 0.0,
        "users": card.get("n_users", 0),
        "films": card.get("n_items", 0),
        "interactions": card.get("n_interactions", 0),
    }
    if card.get("memory_bound"):
        metadata["memory_bound"] = card["memory_bound"]
    metadata.update(
        {
            k: round(float(v), 5)
            for k, v in card.get("metrics", {}).items()
            if k.split("@")[0] in ("ndcg", "recall", "precision", "map", "hr", "coverage")
        }
    )
    return dg.MaterializeResult(metadata=metadata)


def shared_preparation(
    duckdb: DuckDBResource, settings: LbxSettings, interactions_key: str, ratings: bool = False
) -> tuple[Prepared, bool]:
    """The split and matrices every model shares, made once per input by whichever model asset
    runs first (``core.recsys.data.prepared``), and whether they came from the cache."""

    def read_observations() -> pl.DataFrame:
        with duckdb.get_connection() as con:
            return training_observations(con)

    return cached_prepare(
        Path(settings.models_dir),
        interactions_key,
        read_observations,
        test_frac=settings.test_frac,
        seed=settings.seed,
        ratings=ratings,
    )


MODEL_ALIASES = ("popularity", "itemknn", "ease", "als", "lightfm")
#: a run tagged with it applies the weekly retrain policy (schedules.full_refresh_job carries it)
RETRAIN_POLICY_TAG = "lbx/retrain_policy"
#: the weekly retrain's runs apply the retrain policy (core/recsys/models/retrain.py): a challenger
#: far behind, and the content model, keep their versions; any other run (make demo, "Materialize
#: all") refits every model
WEEKLY_TAGS = {RETRAIN_POLICY_TAG: "weekly"}


def applies_retrain_policy(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(RETRAIN_POLICY_TAG) == WEEKLY_TAGS[RETRAIN_POLICY_TAG]


def _model_asset(
    alias: str,
    registry_name: str,
    description: str,
    evaluate_also: Sequence[str] = (),
    needs_features: bool = False,
) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{alias}_model",
        group_name="models",
        kinds={"python", "implicit" if registry_name == "als" else "numpy"}
        if not registry_name.startswith("lightfm")
        else {"python", "lightfm"},
        deps=FEATURE_DEPS,
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext, config: ModelConfig, duckdb: DuckDBResource, settings: LbxSettings
    ) -> dg.MaterializeResult:
        params = config.params
        if params is None and not config.tune:
            params = _last_params(Path(settings.models_dir), alias)
        with duckdb.get_connection() as con:
            interactions_key = inputs_fingerprint(con)
            data = inputs_fingerprint(con, with_features=True) if needs_features else interactions_key
        # pinned hyperparameters only: reused ones are by definition the last version's
        fingerprint = _fingerprint(data, registry_name, config.params, settings)
        if not config.tune and config.params is None:
            unchanged = _unchanged(Path(settings.models_dir), alias, fingerprint)
            if unchanged is not None:
                return unchanged
        if not config.tune and config.params is None and applies_retrain_policy(context):
            with duckdb.get_connection() as con:
                protected = protected_model_paths(con)
            policy = RetrainPolicy(settings.retrain_trailing_share, settings.retrain_trailing_days)
            why = trailing_reason(Path(settings.models_dir), alias, list(MODEL_ALIASES), protected, policy)
            if why is not None:
                path = latest_path(Path(settings.models_dir), alias)
                return _kept(path, json.loads((path / CARD_FILE).read_text()), why, fingerprint)

        if config.tune:  # tuning splits the training part again: it needs the frame itself
            with duckdb.get_connection() as con:
                prepared, from_cache = training_observations(con), False
        else:
            prepared, from_cache = shared_preparation(duckdb, settings, interactions_key)
        with duckdb.get_connection() as con:
            features = item_features(con) if needs_features else None
        trained = train_for_serving(
            registry_name,
            prepared,
            features,
            evaluate_also=tuple(evaluate_also) if config.tune else (),
            relevance=settings.relevance,
            test_frac=settings.test_frac,
            seed=settings.seed,
            tune=config.tune,
            budget=settings.tune_budget or None,
            params_override=params,
            input_fingerprint=fingerprint,
        )
        with duckdb.get_connection() as con:
            protect = protected_model_paths(con)  # the served model and the champion are never pruned
        path = save_trained(trained, Path(settings.models_dir), alias=alias, protect=protect)
        metadata: dict[str, Any] = {
            "version": trained.version,
            "path": str(path),
            "params": dg.MetadataValue.json(trained.params),
            "fit_seconds": round(trained.fit_seconds, 3),
            "users": trained.interactions.n_users,
            "films": trained.interactions.n_items,
            "interactions": int(trained.interactions.matrix.nnz),
            "protocol": dg.MetadataValue.md(trained.protocol),
            "memory_bound": trained.card()["memory_bound"],
            "input_fingerprint": fingerprint,
            "skipped": False,
            "split_from_cache": from_cache,
        }
        metadata.update(
            {
                k: round(v, 5)
                for k, v in trained.metrics.items()
                if k.split("@")[0] in ("ndcg", "recall", "precision", "map", "hr", "coverage")
            }
        )
        if len(trained.evaluations) > 1:
            metadata["ablations"] = dg.MetadataValue.json(
                {e["model"]: round(e.get(PRIMARY_METRIC, 0.0), 5) for e in trained.evaluations}
            )
        return dg.MaterializeResult(metadata=metadata)

    return _asset


popularity_model = _model_asset(
    "popularity",
    "popularity",
    "Most-watched films first: the honest baseline every other model must beat.",
)
itemknn_model = _model_asset(
    "itemknn",
    "itemknn",
    "Item-item cosine kNN with shrinkage, tuned on validation; stored as sparse "
    "top-k neighbours per film, computed in bounded row blocks (the bound is in its card).",
)
ease_model = _model_asset(
    "ease",
    "ease",
    "EASE (dense closed-form item model; above 10k films restricted to the 10k most rated).",
)
als_model = _model_asset(
    "als",
    "als",
    "Implicit ALS (implicit library) with confidence from the rating, tuned on validation; "
    "new users are folded in with recalculate_user, no retraining.",
)
lightfm_model = _model_asset(
    "lightfm",
    "lightfm_hybrid",
    "LightFM WARP hybrid over identity + movie features + keyword TF-IDF; when tuning, its "
    "CF-only and CB-only ablations are measured beside it. Trained on every core "
    "(LBX_THREADS): with several threads LightFM is not bit-reproducible. Budget: at most 1M "
    "(user, film) pairs per fit, a seeded sample in which every user keeps 5 (stated in its card).",
    evaluate_also=("lightfm_cf", "lightfm_cb"),
    needs_features=True,
)

MODEL_ASSETS = {
    "popularity": popularity_model,
    "itemknn": itemknn_model,
    "ease": ease_model,
    "als": als_model,
    "lightfm": lightfm_model,
}
