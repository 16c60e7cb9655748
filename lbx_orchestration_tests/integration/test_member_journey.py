"""A member's journey from the terminal: `lbx import` gives a list at once, `lbx recs` finds it
whatever the case of the name, and the next full refresh trains the member in and keeps them."""

from pathlib import Path

import duckdb
import pytest

from lbx_orchestration.cli import main
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize
from lbx_orchestration_tests.unit.export_builders import REAL_EXPORTS

pytestmark = pytest.mark.slow


def _rows(db: Path, user_key: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select rank, tmdb_id, model from serving.user_recommendations where user_key = ? order by rank", [user_key]
        ).fetchall()
    finally:
        con.close()


def test_import_then_recs_then_a_refresh_keeps_the_member(
    warehouse_copy: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import shutil

    export = shutil.copytree(REAL_EXPORTS["extratone"], tmp_path / "letterboxd-Aguitov-2026-11-20-09-41-utc")
    (export / "profile.csv").unlink()  # the username comes from Letterboxd's file name
    db = str(warehouse_copy.duckdb_path)

    assert main(["import", str(export), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "aguitov: imported" in out and "Top 10 of 50 for aguitov" in out  # names are folded to lower case
    first = _rows(warehouse_copy.duckdb_path, "letterboxd:aguitov")
    assert [r[0] for r in first] == list(range(1, 51))
    listed = [line.split("  ")[0].strip() for line in out.splitlines()[out.splitlines().index("") + 1 :]]
    assert "1" in listed  # the first ten are printed

    assert main(["recs", "aguitov", "--db", db, "--limit", "5"]) == 0  # names match without regard to case
    assert "Recommendations for aguitov (letterboxd" in capsys.readouterr().out

    # the nightly refresh (the whole graph) trains the member into the new model and keeps their list
    result = materialize(warehouse_copy)
    assert result.success
    after = _rows(warehouse_copy.duckdb_path, "letterboxd:aguitov")
    assert [r[0] for r in after] == list(range(1, 51))
    [mat] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "user_recommendations"]
    meta = mat.materialization.metadata
    assert meta["members"].value == 4 and meta["members_trained"].value == 4 and meta["members_folded_in"].value == 0
    con = duckdb.connect(db, read_only=True)
    trained = con.execute(
        "select count(*) from features.user_item_interactions where user_key = 'letterboxd:aguitov'"
    ).fetchall()[0][0]
    con.close()
    assert trained > 100
