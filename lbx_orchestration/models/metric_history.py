"""The models side by side over their last evaluations, for model_evaluation's metadata.

The UI plots every numeric metadata key on its own auto-scaled axis, so one key per metric and
model made a 0.1083 -> 0.1081 change look like a fall and never put two models on one chart. Here
each headline metric is one table: the models as rows, the last runs as columns, and a bar of the
latest value on a scale shared by every model and run, starting at zero.
"""

from collections.abc import Sequence

import polars as pl

from lbx_orchestration.core.tables import MODEL_METRICS
from lbx_orchestration.core.warehouse import read_frame

HISTORY_RUNS = 5
BAR_WIDTH = 20
_EIGHTHS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")


def column(metric: str) -> str:
    return metric.replace("@", "_at_")


def recent_evaluations(con, runs: int = HISTORY_RUNS) -> pl.DataFrame:
    """Every model's row of the last ``runs`` evaluations in serving.model_metrics."""
    return read_frame(
        con,
        f"""
        with recent as (
            select run_id, max(evaluated_at) as run_at from {MODEL_METRICS}
            group by run_id order by run_at desc limit ?
        )
        select m.*, recent.run_at from {MODEL_METRICS} m join recent using (run_id)
        order by recent.run_at, m.model
        """,
        [runs],
    )


def bar(value: float | None, top: float, width: int = BAR_WIDTH) -> str:
    if value is None or value != value or top <= 0:
        return ""
    eighths = max(0, round(value / top * width * 8))
    return "█" * (eighths // 8) + _EIGHTHS[eighths % 8]


def _number(value: float | None) -> float:
    return float("-inf") if value is None or value != value else value


def _cell(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.4f}"


def comparison_markdown(history: pl.DataFrame, metrics: Sequence[str]) -> str:
    if history.is_empty():
        return "No evaluation yet."
    runs = history.group_by("run_id").agg(pl.col("run_at").max()).sort("run_at")
    run_ids = runs["run_id"].to_list()
    labels = [f"{at:%Y-%m-%d %H:%M}" for at in runs["run_at"]]
    latest = run_ids[-1]
    served = set(history.filter((pl.col("run_id") == latest) & pl.col("served"))["model"].to_list())
    sections = [
        f"Each headline metric of every model over the last {len(run_ids)} evaluations (oldest first); "
        "the bar is the latest value on a scale shared by every model and run, from 0."
    ]
    for metric in metrics:
        name = column(metric)
        values = {(r["model"], r["run_id"]): r[name] for r in history.select("model", "run_id", name).to_dicts()}
        known = [v for v in values.values() if v is not None and v == v]
        top = max(known, default=0.0)
        models = sorted({m for m, _ in values}, key=lambda m: (-_number(values.get((m, latest))), m))
        lines = [
            f"**{metric}** (scale 0–{top:.4f})",
            "",
            "| model | " + " | ".join(labels) + " | latest |",
            "|---|" + "---:|" * len(labels) + "---|",
        ]
        for model in models:
            label = f"{model} (served)" if model in served else model
            cells = " | ".join(_cell(values.get((model, run))) for run in run_ids)
            lines.append(f"| {label} | {cells} | {bar(values.get((model, latest)), top)} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def served_series(served_row: dict, metrics: Sequence[str]) -> dict[str, float]:
    """The served model's headline metrics: the few numeric keys the UI plots over runs."""
    out = {}
    for metric in metrics:
        value = served_row.get(column(metric))
        if value is not None and value == value:
            out[f"served_{column(metric)}"] = round(float(value), 4)
    return out
