"""The content model: scores films nobody has rated, for new_for_you and the blended main list.

Its features come from flat TMDb rows (``core.recsys.data.content_features``), so a catalogue
film that only exists in ``metadata.tmdb_catalog`` gets the same columns as the films the
community logged. It is chosen and measured with the cold-film protocol, refitted on every
interaction and saved under ``data/models/content/<version>/`` with a card that also holds
the blend weights serving uses.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.recsys.data.content_features import DEFAULT_OVERVIEW, FEATURES_VERSION
from lbx_orchestration.core.recsys.data.training_data import (
    CONTENT_MOVIES_SQL,
    inputs_fingerprint,
)
from lbx_orchestration.core.recsys.models.content_training import fit_content_model, refit_content_model
from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, latest_path, save_trained
from lbx_orchestration.core.recsys.models.retrain import content_keep_reason
from lbx_orchestration.core.recsys.serving.content_serving import CONTENT_ALIAS, FEATURE_SPACE_FILE
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration.models.assets import applies_retrain_policy, shared_preparation
from lbx_orchestration.resources import LbxSettings

MOVIES_SQL = CONTENT_MOVIES_SQL


def blend_settings(settings: LbxSettings) -> dict[str, Any]:
    return {
        "collaborative_weight": settings.blend_collaborative_weight,
        "content_weight": settings.blend_content_weight,
        "recent_years": settings.blend_recent_years,
    }


class ContentModelConfig(dg.Config):
    """``tune=False`` (the default, as for the other models: the nightly refresh) refits the last
    card's mode and hyperparameters on the new data without running the cold-film protocol again
    (its card keeps the last measurements); the first run measures the default mode with its
    defaults on the cold-film protocol and serves it, ``tune=True`` runs the protocol's
    hyperparameter search and chooses the mode on validation."""

    tune: bool = False


def _last_card(models_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The latest content version's folder and card, or None before the first fit."""
    try:
        path = latest_path(models_dir, CONTENT_ALIAS)
        return path, json.loads((path / CARD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dg.asset(
    group_name="models",
    kinds={"python", "lightfm"},
    deps=["user_item_interactions", "tmdb_movies"],
    description="A model over TMDb content (genres, directors, cast, keywords, language, decade, runtime, "
    "collection, companies, TMDb's vote count and rating, and the overview's meaning as a WordLlama "
    "embedding), chosen among LightFM's CB and hybrid modes and the content baseline with the cold-film "
    "protocol (films held out with all their ratings) and gated against TMDb popularity; the card holds "
    "the blend weights of the main list. Scores catalogue films nobody has rated.",
    check_specs=[
        dg.AssetCheckSpec(
            "beats_content_baselines",
            asset="content_model",
            description="On unseen films the served content model (the validation winner among the "
            "LightFM modes and the content baseline) beats the other of them and TMDb popularity (NDCG@10)",
        ),
    ],
)
def content_model(
    context: dg.AssetExecutionContext, config: ContentModelConfig, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        fingerprint = _fingerprint(con, settings)
    last = _last_card(Path(settings.models_dir)) if not config.tune else None
    if last is not None and last[1].get("input_fingerprint") == fingerprint:
        # fitted on exactly these inputs: the nightly refresh keeps it instead of refitting
        path, card = last
        return _result(card, path, skipped=True, cold_films=card.get("protocol", ""), fingerprint=fingerprint)
    if last is not None and not _same_features(last[1]):
        # its metrics were measured on other features: measure again, as a first fit does
        last = None
    if last is not None and applies_retrain_policy(context):
        why = content_keep_reason(last[1], settings.content_refit_days)
        if why is not None:
            path, card = last
            return _result(
                card, path, skipped=True, cold_films=card.get("protocol", ""), fingerprint=fingerprint, reason=why
            )
    with duckdb.get_connection() as con:
        movies = read_frame(con, f"select * from {MOVIES_SQL}")
        interactions_key = inputs_fingerprint(con)
    # the matrices the other models share: the 32M observations are collapsed once per input, by
    # whichever model asset runs first, not again here
    prepared, _ = shared_preparation(duckdb, settings, interactions_key, ratings=True)
    full = prepared.full
    del prepared
    if last is not None:
        trained, space = refit_content_model(full, movies, last[1], settings.seed)
        report = None
    else:
        # a first fit without tune (a fresh warehouse's nightly refresh) measures the default mode
        # with its defaults and serves it, as the other models use their defaults: the search and
        # the validation cost a LightFM fit per configuration and mode on the whole community
        trained, space, report = fit_content_model(
            full, movies, settings.seed, settings.relevance, settings.tune_budget or None, tune=config.tune
        )
    path = save_trained(trained, Path(settings.models_dir), alias=CONTENT_ALIAS)
    space.save(path / FEATURE_SPACE_FILE)
    card = json.loads((path / CARD_FILE).read_text())
    card["blend"] = blend_settings(settings)
    card["features"] = {
        "source": "flat TMDb rows",
        "columns": len(space.names),
        "overview": space.overview,
        "version": FEATURES_VERSION,
    }
    card["input_fingerprint"] = fingerprint
    (path / CARD_FILE).write_text(json.dumps(card, indent=2, default=str))
    return _result(
        card,
        path,
        skipped=False,
        cold_films=report.to_markdown() if report else trained.protocol,
        fingerprint=fingerprint,
    )


def _same_features(card: dict[str, Any]) -> bool:
    """Whether ``card`` was measured on the features a fit would use now."""
    features = card.get("features") or {}
    return features.get("version") == FEATURES_VERSION and features.get("overview") == DEFAULT_OVERVIEW


def _fingerprint(con: Any, settings: LbxSettings) -> str:
    """What a fit depends on: the seen interactions, the films' TMDb rows, the protocol and
    blend settings (computed in DuckDB, without reading the rows)."""
    movies = con.execute(f"select count(*), sum(hash(columns(*))) from {MOVIES_SQL}").fetchall()[0]
    spec = [
        inputs_fingerprint(con),
        repr(movies),
        settings.seed,
        settings.relevance,
        blend_settings(settings),
        FEATURES_VERSION,
        DEFAULT_OVERVIEW,
    ]
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _result(
    card: dict[str, Any], path: Path, skipped: bool, cold_films: str, fingerprint: str, reason: str | None = None
) -> dg.MaterializeResult:
    by = {r["model"]: r["ndcg@10"] for r in card.get("evaluations", [])}
    served = by[card["name"]]
    # the content baseline may be what is served (it won validation): then TMDb popularity is the bar
    baselines = {m: by[m] for m in ("content", "tmdb_popularity") if m in by and m != card["name"]}
    return dg.MaterializeResult(
        metadata={
            "served_mode": card["name"],
            "version": card["version"],
            "path": str(path),
            "skipped": skipped,
            **(
                {
                    "reason": reason
                    or "inputs unchanged since this version was fitted (same interactions, films and settings)"
                }
                if skipped
                else {}
            ),
            "input_fingerprint": fingerprint,
            "feature_columns": card.get("features", {}).get("columns", 0),
            **{f"{m}_ndcg_at_10": round(float(v), 5) for m, v in by.items()},
            "blend": dg.MetadataValue.json(card.get("blend", {})),
            "cold_films": dg.MetadataValue.md(cold_films),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="beats_content_baselines",
                passed=all(served > v for v in baselines.values()),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "served_ndcg_at_10": float(served),
                    **{f"{m}_ndcg_at_10": float(v) for m, v in baselines.items()},
                },
            )
        ],
    )
