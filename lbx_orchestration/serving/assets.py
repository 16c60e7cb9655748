"""Evaluation, the champion/challenger gate, and the per-user recommendation tables."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.recsys.pipeline import TrainedModel, latest_path, load_trained
from lbx_orchestration.core.recsys.serve import ServingPolicy
from lbx_orchestration.core.warehouse import (
    markdown_preview,
    read_frame,
    replace_rows,
    replace_table,
    table_exists,
)
from lbx_orchestration.models.assets import MODEL_ASSETS
from lbx_orchestration.models.data import INTERACTIONS
from lbx_orchestration.resources import LbxSettings
from lbx_orchestration.serving.gate import decide
from lbx_orchestration.serving.new_for_you import blend_main_list
from lbx_orchestration.serving.recommend import load_serving_inputs, recommend_everyone

MODEL_METRICS = "serving.model_metrics"
RECOMMENDATIONS = "serving.user_recommendations"
GENRE_PICKS = "serving.genre_picks"
METRIC_COLUMNS = ("ndcg@10", "recall@20", "precision@10", "map@10", "hr@10", "coverage@10", "pop_share@10")


class EvaluationConfig(dg.Config):
    candidates: list[str] = ["als", "lightfm", "ease", "itemknn"]
    popularity_factor: float = 1.3
    champion_tolerance: float = 0.02


def _cards(settings: LbxSettings) -> dict[str, TrainedModel]:
    return {alias: load_trained(latest_path(Path(settings.models_dir), alias)) for alias in MODEL_ASSETS}


def _metric_rows(cards: dict[str, TrainedModel], run_id: str, served: str) -> pl.DataFrame:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for alias, card in cards.items():
        for ev in card.evaluations:
            rows.append({
                "run_id": run_id,
                "evaluated_at": now,
                "model": ev["model"],
                "asset": f"{alias}_model",
                "version": card.version,
                "path": str(card.path),
                "data_fingerprint": f"{card.interactions.n_users}x{card.interactions.n_items}"
                                    f":{card.interactions.matrix.nnz}",
                "split": "temporal",
                **{m.replace("@", "_at_"): float(ev.get(m, float("nan"))) for m in METRIC_COLUMNS},
                "params": json.dumps(ev.get("params", {}), sort_keys=True, default=str),
                "protocol": card.protocol,
                "served": ev["model"] == cards[served].name and alias == served,
                "accepted": False,
            })
    return pl.DataFrame(rows)


@dg.asset(
    group_name="models",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=list(MODEL_ASSETS.values()),
    description="Held-out metrics of every model (NDCG@10, Recall@20, Precision@10, MAP@10, HR@10, "
    "coverage@10, popular share), appended to serving.model_metrics with the run id; picks the "
    "challenger to serve and gates it against popularity and the last accepted champion.",
    check_specs=[
        dg.AssetCheckSpec(
            "served_model_gate", asset="model_evaluation", blocking=True,
            description="The served model reaches 1.3x popularity's NDCG@10 and stays within 2% of "
            "the last accepted champion: otherwise user_recommendations keeps its last accepted rows.",
        )
    ],
)
def model_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, duckdb: DuckDBResource,
                     settings: LbxSettings) -> dg.MaterializeResult:
    cards = _cards(settings)
    unknown = [c for c in config.candidates if c not in cards or c == "popularity"]
    if unknown:
        raise ValueError(f"candidates {unknown} are not servable models; choose from "
                         f"{[a for a in cards if a != 'popularity']}")
    served = max(config.candidates, key=lambda a: cards[a].metrics.get("ndcg@10", 0.0))
    frame = _metric_rows(cards, context.run_id, served)
    champion = None
    with duckdb.get_connection() as con:
        if table_exists(con, MODEL_METRICS):
            champion_rows = read_frame(
                con, f"select * from {MODEL_METRICS} where served and accepted order by evaluated_at desc limit 1")
            champion = champion_rows.row(0, named=True) if champion_rows.height else None
        replace_rows(con, MODEL_METRICS, frame, {"run_id": [context.run_id]})
    served_row = frame.filter(pl.col("served")).row(0, named=True)
    decision = decide(
        challenger=served_row["model"],
        challenger_ndcg=served_row["ndcg_at_10"],
        popularity_ndcg=cards["popularity"].metrics["ndcg@10"],
        champion=champion["model"] if champion else None,
        champion_ndcg=champion["ndcg_at_10"] if champion else None,
        same_data=bool(champion and champion["data_fingerprint"] == served_row["data_fingerprint"]),
        popularity_factor=config.popularity_factor,
        tolerance=config.champion_tolerance,
    )
    table = frame.select("model", *[m.replace("@", "_at_") for m in METRIC_COLUMNS]).sort(
        "ndcg_at_10", descending=True)
    metadata: dict[str, Any] = {
        "served_model": served_row["model"],
        "served_version": served_row["version"],
        "metrics": dg.MetadataValue.md(markdown_preview(table.with_columns(pl.all().exclude("model").round(4)), 20)),
        "protocol": dg.MetadataValue.md(cards[served].protocol),
    }
    for row in frame.iter_rows(named=True):
        metadata[f"{row['model']}_ndcg_at_10"] = round(row["ndcg_at_10"], 5)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="served_model_gate",
                passed=decision.passed,
                metadata={
                    "challenger": decision.challenger,
                    "challenger_ndcg_at_10": decision.challenger_ndcg,
                    "popularity_ndcg_at_10": decision.popularity_ndcg,
                    "champion": decision.champion or "none yet",
                    "champion_ndcg_at_10": decision.champion_ndcg if decision.champion_ndcg is not None else 0.0,
                    "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
                },
            )
        ],
    )


@dg.asset(
    group_name="serving",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=[model_evaluation, "film_catalog", "tmdb_movies", "user_item_interactions", "content_model"],
    description="Top 50 films per user from the served model (serving.user_recommendations): never a "
    "film the user rated, logged or watched; watchlist excluded by default; MMR-diversified; each "
    "with the reason it was picked. Also the view serving.genre_picks (top 10 per user and genre).",
    check_specs=[
        dg.AssetCheckSpec("no_seen_films", asset="user_recommendations",
                          description="No recommendation is a film its user has seen"),
        dg.AssetCheckSpec("full_lists", asset="user_recommendations",
                          description="Every user has 50 recommendations"),
    ],
)
def user_recommendations(context: dg.AssetExecutionContext, duckdb: DuckDBResource,
                         settings: LbxSettings) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        served = read_frame(con, f"select * from {MODEL_METRICS} where served order by evaluated_at desc limit 1")
        if served.height == 0:
            raise RuntimeError("no served model in serving.model_metrics: materialize model_evaluation first")
        served_row = served.row(0, named=True)
        trained = load_trained(Path(served_row["path"]))
        policy = ServingPolicy(top_n=settings.top_n, mmr_lambda=settings.mmr_lambda, watchlist=settings.watchlist)
        inputs = load_serving_inputs(con, trained, policy, settings.min_vote_count)
    out = recommend_everyone(inputs)
    with duckdb.get_connection() as con:
        out = blend_main_list(con, out, settings)  # new films from the content model (serving/new_for_you.py)
    users_table = pl.DataFrame({"user_key": trained.interactions.user_ids.astype(str)})
    with duckdb.get_connection() as con:
        replace_table(con, RECOMMENDATIONS, out)
        con.execute(
            f"""
            create or replace view {GENRE_PICKS} as
            select username, source, genre, rank() over (partition by user_key, genre order by rank) as genre_rank,
                   rank as overall_rank, tmdb_id, title, year, score, reason
            from (select *, unnest(genres) as genre from {RECOMMENDATIONS})
            qualify genre_rank <= 10
            """
        )
        con.execute(f"update {MODEL_METRICS} set accepted = true where run_id = ? and served",
                    [served_row["run_id"]])
        seen_hits = con.execute(
            f"select count(*) from {RECOMMENDATIONS} r join {INTERACTIONS} i "
            "on r.user_key = i.user_key and r.tmdb_id = i.tmdb_id where i.seen"
        ).fetchall()[0][0]
    per_user = out.group_by("user_key").len()
    short = per_user.filter(pl.col("len") < settings.top_n).height
    missing_users = users_table.join(per_user, on="user_key", how="anti").height
    letterboxd = out.filter(pl.col("source") == "letterboxd")
    return dg.MaterializeResult(
        metadata={
            "rows": out.height,
            "users": per_user.height,
            "model": served_row["model"],
            "model_version": served_row["version"],
            "distinct_films": out["tmdb_id"].n_unique(),
            "letterboxd_preview": dg.MetadataValue.md(markdown_preview(
                letterboxd.select("username", "rank", "title", "year", "reason"), 15)),
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_seen_films", passed=seen_hits == 0,
                                metadata={"seen_recommendations": int(seen_hits)}),
            dg.AssetCheckResult(check_name="full_lists", passed=short == 0 and missing_users == 0,
                                metadata={"users_short": short, "users_without_recommendations": missing_users}),
        ],
    )
