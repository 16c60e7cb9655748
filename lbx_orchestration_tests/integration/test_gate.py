"""Champion/challenger: a worse model never reaches serving.user_recommendations."""

import duckdb
import pytest

from lbx_orchestration_tests.support.warehouse import Warehouse, materialize_with_config

pytestmark = pytest.mark.slow

DEGRADED_ALS = {"factors": 2, "iterations": 1, "regularization": 1000.0, "alpha": 1.0}


def _recs(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "select user_key, rank, tmdb_id, model, model_version, generated_at "
        "from serving.user_recommendations order by all"
    ).fetchall()
    con.close()
    return rows


def test_a_degraded_model_is_blocked_and_the_old_recommendations_stay(warehouse_copy: Warehouse) -> None:
    before = _recs(warehouse_copy.duckdb_path)
    result = materialize_with_config(
        warehouse_copy,
        ["als_model", "model_evaluation", "user_recommendations"],
        {
            "ops": {
                "als_model": {"config": {"params": DEGRADED_ALS}},
                "model_evaluation": {"config": {"candidates": ["als"]}},
            }
        },
    )
    gate = [c for c in result.get_asset_check_evaluations() if c.check_name == "served_model_gate"]
    assert len(gate) == 1 and not gate[0].passed
    assert "popularity" in gate[0].metadata["reasons"].value
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "model_evaluation" in materialized and "user_recommendations" not in materialized
    assert _recs(warehouse_copy.duckdb_path) == before
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    latest = con.execute(
        "select model, served, accepted, ndcg_at_10 from serving.model_metrics "
        "where served order by evaluated_at desc limit 1"
    ).fetchall()[0]
    champion = con.execute("select ndcg_at_10 from serving.model_metrics where served and accepted").fetchall()
    con.close()
    assert latest[0] == "als" and latest[2] is False
    assert len(champion) == 1 and latest[3] < champion[0][0]


def test_a_nightly_refit_reuses_the_last_tuned_hyperparameters(warehouse_copy: Warehouse) -> None:
    import json

    from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, latest_path

    before = json.loads((latest_path(warehouse_copy.models_dir, "als") / CARD_FILE).read_text())
    result = materialize_with_config(warehouse_copy, ["als_model"], {"ops": {"als_model": {"config": {"tune": False}}}})
    assert result.success
    after = json.loads((latest_path(warehouse_copy.models_dir, "als") / CARD_FILE).read_text())
    strip = ("seed", "num_threads")
    assert {k: v for k, v in after["params"].items() if k not in strip} == {
        k: v for k, v in before["params"].items() if k not in strip
    }
    assert after["version"] != before["version"] or after["metrics"] == before["metrics"]
