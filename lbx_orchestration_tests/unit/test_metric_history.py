"""model_evaluation's comparison: every model on each headline metric, over the last runs, on one
shared scale; and only the served model's metrics as numeric (plotted) keys."""

import datetime as dt

import duckdb
import polars as pl

from lbx_orchestration.core.tables import MODEL_METRICS
from lbx_orchestration.models.metric_history import bar, comparison_markdown, recent_evaluations, served_series

METRICS = ("ndcg@10", "recall@20")


def _warehouse(runs: int) -> duckdb.DuckDBPyConnection:
    start = dt.datetime(2026, 1, 1)
    rows = [
        {
            "run_id": f"run{i}",
            "evaluated_at": start + dt.timedelta(days=i),
            "model": model,
            "ndcg_at_10": value - 0.0002 * i,
            "recall_at_20": float("nan") if model == "popularity" else 0.2,
            "served": model == "ease",
        }
        for i in range(runs)
        for model, value in (("ease", 0.1083), ("als", 0.1000), ("popularity", 0.05))
    ]
    con = duckdb.connect()
    con.execute(f"create schema {MODEL_METRICS.split('.')[0]}")
    con.register("metric_rows", pl.DataFrame(rows))
    con.execute(f"create table {MODEL_METRICS} as select * from metric_rows")
    return con


def test_the_last_runs_of_every_model_on_a_shared_scale() -> None:
    history = recent_evaluations(_warehouse(7), runs=5)
    assert history["run_id"].n_unique() == 5 and "run0" not in history["run_id"].to_list()
    text = comparison_markdown(history, METRICS)
    ndcg = text.split("**recall@20**")[0]
    assert "scale 0–0.1079" in ndcg  # the highest value of any model in these runs: ease in run2
    rows = [line for line in ndcg.splitlines() if line.startswith("| ") and "model" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| ease (served)", "| als", "| popularity"]
    assert rows[0].split(" | ")[1:6] == ["0.1079", "0.1077", "0.1075", "0.1073", "0.1071"]
    # a change in the fourth decimal is a change in the fourth decimal, not a fall off the chart
    assert rows[0].rstrip(" |").endswith(bar(0.1071, 0.1079)) and len(bar(0.1071, 0.1079)) == 20
    assert "| popularity | – | – | – | – | – |" in text.split("**recall@20**")[1]


def test_bar_is_proportional_from_zero() -> None:
    assert bar(1.0, 1.0) == "█" * 20 and bar(0.5, 1.0) == "█" * 10 and bar(0.0, 1.0) == ""
    assert bar(float("nan"), 1.0) == "" and bar(None, 1.0) == "" and bar(0.5, 0.0) == ""


def test_only_the_served_model_is_plotted() -> None:
    row = {"model": "ease", "ndcg_at_10": 0.10834, "recall_at_20": float("nan")}
    assert served_series(row, METRICS) == {"served_ndcg_at_10": 0.1083}


def test_no_evaluation_yet() -> None:
    assert comparison_markdown(pl.DataFrame(), METRICS) == "No evaluation yet."
