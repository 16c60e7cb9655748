"""The whole graph into a DuckLake warehouse (SQLite catalogue, Parquet files in a folder), and the
CLI and the web snapshot reading it: the same code as the DuckDB file, through LBX_WAREHOUSE."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lbx_orchestration.core import lake
from lbx_orchestration.core.settings import REPO_ROOT
from lbx_orchestration.core.tables import INTERACTIONS, RECOMMENDATIONS, REVIEWS, STG_REVIEWS
from lbx_orchestration.web.snapshot import export_serving_tables
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize

pytestmark = pytest.mark.slow

LBX = str(Path(sys.executable).parent / "lbx")
COUNTED = (REVIEWS, STG_REVIEWS, INTERACTIONS)


@pytest.fixture(scope="module")
def lake_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root = tmp_path_factory.mktemp("lake")
    warehouse = Warehouse(root, Path(f"ducklake:sqlite:{root}/catalog.sqlite"), root / "models")
    warehouse.result = materialize(warehouse)
    return warehouse


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {table: con.execute(f"select count(*) from {table}").fetchall()[0][0] for table in COUNTED}


def test_the_graph_fills_the_lake_as_it_fills_the_file(lake_warehouse: Warehouse, materialized_warehouse) -> None:
    result = lake_warehouse.result
    assert result is not None and result.success
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed == []
    root = lake_warehouse.root
    # the catalogue is SQLite and the tables are Parquet files beside it
    tables = sqlite3.connect(root / "catalog.sqlite").execute("select table_name from ducklake_table").fetchall()
    assert {"user_recommendations", "reviews", "user_item_interactions"} <= {t for (t,) in tables}
    assert len(list((root / "catalog.sqlite.files").rglob("*.parquet"))) >= 10
    con = lake.open_lake(lake_warehouse.duckdb_path, read_only=True)
    with duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True) as file_con:
        try:
            assert _counts(con) == _counts(file_con)
            users = f"select count(distinct username), count(*) from {RECOMMENDATIONS}"
            assert con.execute(users).fetchall() == file_con.execute(users).fetchall()
        finally:
            con.close()


def test_cli_and_the_web_snapshot_read_the_lake(lake_warehouse: Warehouse, tmp_path: Path) -> None:
    env = {**os.environ, "LBX_WAREHOUSE": str(lake_warehouse.duckdb_path), "LBX_DATA_DIR": str(tmp_path)}
    recs = subprocess.run([LBX, "recs", "patrickmjones", "--limit", "5"], env=env, capture_output=True, text=True)
    assert recs.returncode == 0, recs.stderr
    assert [line.split()[0] for line in recs.stdout.splitlines() if line[:1].isdigit()] == ["1", "2", "3", "4", "5"]
    sql = subprocess.run(
        [LBX, "sql", "--csv", f"select count(distinct username) as members from {RECOMMENDATIONS}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert sql.returncode == 0, sql.stderr
    assert sql.stdout.split() == ["members", str(lake_count(lake_warehouse))]
    written = export_serving_tables(lake_warehouse.duckdb_path, tmp_path / "serving.duckdb")
    assert {"recommendations", "films", "member_seen"} <= set(written)
    # DuckDB's extensions were installed from their wheels into the project, not the home folder
    assert (REPO_ROOT / ".duckdb" / "extensions").is_dir()


def lake_count(warehouse: Warehouse) -> int:
    con = lake.open_lake(warehouse.duckdb_path, read_only=True)
    try:
        return con.execute(f"select count(distinct username) from {RECOMMENDATIONS}").fetchall()[0][0]
    finally:
        con.close()


def test_a_postgres_lake_without_data_path_or_keys_is_refused_by_name(monkeypatch) -> None:
    monkeypatch.delenv("LBX_WAREHOUSE_DATA", raising=False)
    with pytest.raises(lake.LakeError, match="LBX_WAREHOUSE_DATA"):
        lake.data_path("ducklake:postgres:dbname=nowhere host=127.0.0.1")
    monkeypatch.setenv("LBX_WAREHOUSE_DATA", "s3://lbx/lake")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    con = duckdb.connect()
    try:
        with pytest.raises(lake.LakeError, match="AWS_ACCESS_KEY_ID"):
            lake.attach(con, "ducklake:sqlite:/nonexistent/catalog.sqlite", read_only=True)
    finally:
        con.close()
    # the target travels in logs and dbt's vars: a password in it is refused, it belongs in PGPASSWORD
    with pytest.raises(lake.LakeError, match="PGPASSWORD"):
        lake.catalogue_kind("ducklake:postgres:host=127.0.0.1 password=hunter2 dbname=x")
    with pytest.raises(lake.LakeError, match="PGPASSWORD"):
        lake.catalogue_kind("ducklake:postgres:postgresql://lbx:hunter2@127.0.0.1/x")
    assert lake.scrub("could not connect to postgresql://lbx:hunter2@127.0.0.1/x") == (
        "could not connect to postgresql://lbx:***@127.0.0.1/x"
    )
    assert lake.describe("ducklake:postgres:host=127.0.0.1 password=hunter2 dbname=x") == (
        "ducklake:postgres:host=127.0.0.1 password=*** dbname=x"
    )
    assert json.dumps(lake.describe("ducklake:sqlite:/a/b.sqlite")) == '"ducklake:sqlite:/a/b.sqlite"'


def test_duckdb_cli_opens_the_warehouse_file(materialized_warehouse: Warehouse) -> None:
    """PyPI's duckdb-cli (1.5.6, a dev dependency) reads the file lbx's DuckDB 1.5.5 writes."""
    cli = Path(sys.executable).parent / "duckdb"
    query = f"select count(distinct username) as members from {RECOMMENDATIONS}"
    done = subprocess.run(
        [str(cli), "-readonly", "-csv", str(materialized_warehouse.duckdb_path), "-c", query],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True) as con:
        expected = con.execute(query).fetchall()[0][0]
    assert done.stdout.split() == ["members", str(expected)]
