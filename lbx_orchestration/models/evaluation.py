"""model_evaluation: every model's held-out metrics over time, and the champion/challenger gate."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.recsys.evaluation.gate import decide
from lbx_orchestration.core.recsys.evaluation.metrics import HEADLINE_METRICS as METRIC_COLUMNS
from lbx_orchestration.core.recsys.evaluation.metrics import PRIMARY_METRIC
from lbx_orchestration.core.recsys.models.pipeline import TrainedModel, latest_path, load_trained
from lbx_orchestration.core.settings import GATE_CHAMPION_TOLERANCE, GATE_POPULARITY_FACTOR
from lbx_orchestration.core.tables import MODEL_METRICS, accepted_model
from lbx_orchestration.core.warehouse import read_frame, replace_rows, table_exists
from lbx_orchestration.models.assets import MODEL_ASSETS
from lbx_orchestration.models.metric_history import column, comparison_markdown, recent_evaluations, served_series
from lbx_orchestration.resources import LbxSettings


class EvaluationConfig(dg.Config):
    candidates: list[str] = ["als", "lightfm", "ease", "itemknn"]
    popularity_factor: float = GATE_POPULARITY_FACTOR
    champion_tolerance: float = GATE_CHAMPION_TOLERANCE


def _cards(settings: LbxSettings) -> dict[str, TrainedModel]:
    return {alias: load_trained(latest_path(Path(settings.models_dir), alias)) for alias in MODEL_ASSETS}


def _metric_rows(cards: dict[str, TrainedModel], run_id: str, served: str) -> pl.DataFrame:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for alias, card in cards.items():
        for ev in card.evaluations:
            rows.append(
                {
                    "run_id": run_id,
                    "evaluated_at": now,
                    "model": ev["model"],
                    "asset": f"{alias}_model",
                    "version": card.version,
                    "path": str(card.path),
                    "data_fingerprint": f"{card.interactions.n_users}x{card.interactions.n_items}"
                    f":{card.interactions.matrix.nnz}",
                    "split": "temporal",
                    **{column(m): float(ev.get(m, float("nan"))) for m in METRIC_COLUMNS},
                    "params": json.dumps(ev.get("params", {}), sort_keys=True, default=str),
                    "protocol": card.protocol,
                    "served": ev["model"] == cards[served].name and alias == served,
                    "accepted": False,
                }
            )
    return pl.DataFrame(rows)


def metrics_table(frame: pl.DataFrame) -> dg.MetadataValue:
    """Every model x every metric as a typed table (the UI shows it whole, unlike Markdown)."""
    columns = ["model", *[column(m) for m in METRIC_COLUMNS]]
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("model", "string", description="model (ablations included)"),
            *[dg.TableColumn(column(m), "float", description=f"{m} on the held-out split") for m in METRIC_COLUMNS],
        ]
    )
    records = [
        dg.TableRecord({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
        for row in frame.select(columns).sort("ndcg_at_10", descending=True).iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records, schema=schema)


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
            "served_model_gate",
            asset="model_evaluation",
            blocking=True,
            description=f"The served model reaches {GATE_POPULARITY_FACTOR:g}x popularity's NDCG@10 and stays "
            f"within {GATE_CHAMPION_TOLERANCE:.0%} of the last accepted champion: otherwise "
            "user_recommendations keeps its last accepted rows.",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    cards = _cards(settings)
    unknown = [c for c in config.candidates if c not in cards or c == "popularity"]
    if unknown:
        raise ValueError(
            f"candidates {unknown} are not servable models; choose from {[a for a in cards if a != 'popularity']}"
        )
    served = max(config.candidates, key=lambda a: cards[a].metrics.get(PRIMARY_METRIC, 0.0))
    frame = _metric_rows(cards, context.run_id, served)
    with duckdb.get_connection() as con:
        champion = accepted_model(con)
        champion_row = (
            read_frame(con, f"select * from {MODEL_METRICS} where run_id = ? and served", [champion.run_id]).row(
                0, named=True
            )
            if champion is not None and table_exists(con, MODEL_METRICS)
            else None
        )
        replace_rows(con, MODEL_METRICS, frame, {"run_id": [context.run_id]})
        history = recent_evaluations(con)
    served_row = frame.filter(pl.col("served")).row(0, named=True)
    decision = decide(
        challenger=served_row["model"],
        challenger_ndcg=served_row[column(PRIMARY_METRIC)],
        popularity_ndcg=cards["popularity"].metrics[PRIMARY_METRIC],
        champion=champion_row["model"] if champion_row else None,
        champion_ndcg=champion_row[column(PRIMARY_METRIC)] if champion_row else None,
        same_data=bool(champion_row and champion_row["data_fingerprint"] == served_row["data_fingerprint"]),
        popularity_factor=config.popularity_factor,
        tolerance=config.champion_tolerance,
    )
    metadata: dict[str, Any] = {
        "served_model": served_row["model"],
        "served_version": served_row["version"],
        "metrics": metrics_table(frame),
        "comparison": dg.MetadataValue.md(comparison_markdown(history, METRIC_COLUMNS)),
        "protocol": dg.MetadataValue.md(cards[served].protocol),
        **served_series(served_row, METRIC_COLUMNS),
    }
    gate: dict[str, Any] = {
        "challenger": decision.challenger,
        "challenger_ndcg_at_10": round(decision.challenger_ndcg, 4),
        "popularity_ndcg_at_10": round(decision.popularity_ndcg, 4),
        "required_ndcg_at_10": round(decision.popularity_ndcg * config.popularity_factor, 4),
        "champion": decision.champion or "none yet",
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
    }
    if decision.champion_ndcg is not None:  # no fake zero when there is no champion yet
        gate["champion_ndcg_at_10"] = round(decision.champion_ndcg, 4)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(check_name="served_model_gate", passed=decision.passed, metadata=gate)],
    )
