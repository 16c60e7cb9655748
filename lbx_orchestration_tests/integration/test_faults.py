"""Faults from the red team (issue 16): killed runs, lock collisions, damaged files, older exports
and look-alike usernames. Every kill and every lock here is a real second process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.core.recsys.models.pipeline import prune_versions
from lbx_orchestration.runs import free_dead_runs
from lbx_orchestration_tests.support.lbx_cli import POOL_CONFIG, POOL_HOLDER, run_lbx
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize
from lbx_orchestration_tests.unit.export_builders import REAL_EXPORTS, minimal_files, write_folder

REPO = Path(__file__).resolve().parents[2]
_lbx = run_lbx


def _hold(db: Path, seconds: float, read_only: bool = False) -> subprocess.Popen:
    """A second process that opens the warehouse and keeps it for ``seconds``."""
    code = (
        f"import duckdb, time, sys; c = duckdb.connect({str(db)!r}, read_only={read_only}); "
        f"print('holding', flush=True); time.sleep({seconds}); c.close()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


# --- a killed run must not block the ones after it --------------------------------------------

CHILD = POOL_HOLDER


def test_a_killed_run_frees_its_pool_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POOL_CONFIG)
    marker = tmp_path / "marker"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(marker)], env={**os.environ, "DAGSTER_HOME": str(home)})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the child never reached its pool step"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info("duckdb")
        assert info.active_slot_count == 1  # the leak: the dead run still holds the only slot
        [run_id] = info.active_run_ids
        freed = free_dead_runs(instance)
        assert [(f.run_id, f.pool) for f in freed] == [(run_id, "duckdb")]
        assert f"its process (pid {child.pid}) is gone" in str(freed[0])
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0
        assert free_dead_runs(instance) == []  # nothing left to free

        @dg.asset(pool="duckdb")
        def next_writer() -> int:
            return 1

        assert dg.materialize([next_writer], instance=instance).success  # the next run gets the slot


def test_a_live_run_keeps_its_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(POOL_CONFIG)
    seen: list[list] = []

    @dg.asset(pool="duckdb")
    def writer(context: dg.AssetExecutionContext) -> None:
        seen.append(free_dead_runs(context.instance))  # this very run is alive: not freed

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([writer], instance=instance).success
    assert seen == [[]]


# --- the DuckDB file lock: wait with a bound, then name the holder ------------------------------


def test_recs_waits_for_a_writer_then_names_it(warehouse_copy: Warehouse) -> None:
    db = warehouse_copy.duckdb_path
    holder = _hold(db, 60)
    try:
        out = _lbx("recs", "patrickmjones", "--db", str(db), "--wait", "1.5")
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1
    assert "waiting" in out.stderr
    assert f"is in use by pid {holder.pid}" in out.stderr and "stayed so for 1.5 s" in out.stderr
    assert "Traceback" not in out.stderr

    holder = _hold(db, 2)  # released after 2 s: the command waits and then answers
    out = _lbx("recs", "patrickmjones", "--db", str(db), "--wait", "30")
    holder.wait()
    assert out.returncode == 0, out.stderr
    assert "waiting" in out.stderr and "Recommendations for patrickmjones" in out.stdout


def test_import_parses_first_and_waits_for_the_lock(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    db = warehouse_copy.duckdb_path
    holder = _hold(db, 3, read_only=True)  # even a read-only SQL shell blocks a writer
    out = _lbx("import", str(REAL_EXPORTS["extratone"]), "--username", "waiter", "--db", str(db), "--wait", "60")
    holder.wait()
    assert out.returncode == 0, out.stderr
    assert "waiting" in out.stderr
    assert "waiter: imported" in out.stdout and "Top 10 of 50 for waiter" in out.stdout

    bad = write_folder(tmp_path / "bad", {**minimal_files(), "ratings.csv": "nonsense\n"})
    holder = _hold(db, 60)
    try:  # a bad export is refused before the lock is even asked for: no waiting
        out = _lbx("import", str(bad), "--db", str(db), "--wait", "60", timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1 and out.stderr.startswith("import refused: ratings.csv")
    assert "waiting" not in out.stderr


# --- damaged files name themselves --------------------------------------------------------------


def test_a_damaged_warehouse_is_named(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    db.write_bytes(b"this is not a database" * 100)
    out = _lbx("recs", "anyone", "--db", str(db))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"the warehouse {db} is damaged (it is 2,200 bytes, shorter than a DuckDB file's headers)" in out.stderr
    out = _lbx("import", str(REAL_EXPORTS["melvincarvalho"]), "--db", str(db))
    assert out.returncode == 1 and "is damaged" in out.stderr and "Traceback" not in out.stderr
    out = _lbx("unmatched", "anyone", "--db", str(db))
    assert out.returncode == 1 and "is damaged" in out.stderr and "Traceback" not in out.stderr
    assert db.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize("damage", ["card", "arrays"])
def test_a_damaged_model_file_is_named_and_the_import_is_kept(warehouse_copy: Warehouse, damage: str) -> None:
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    path = Path(con.execute("select path from serving.model_metrics where served and accepted").fetchall()[0][0])
    con.close()
    target = path / "card.json" if damage == "card" else next((path / "model").glob("*.npz"))
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    out = _lbx(
        "import", str(REAL_EXPORTS["extratone"]), "--username", "damaged", "--db", str(warehouse_copy.duckdb_path)
    )
    assert out.returncode == 2, out.stderr
    assert f"{target} is damaged" in out.stderr and "Traceback" not in out.stderr
    assert "damaged: imported" in out.stdout  # the import itself stands


# --- a newer export always wins -------------------------------------------------------------------


def test_an_older_export_is_refused_by_the_cli(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    import shutil

    db = str(warehouse_copy.duckdb_path)
    newer = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / "letterboxd-melvincarvalho-2026-11-29-20-00-utc")
    assert _lbx("import", str(newer), "--db", db).returncode == 0
    con = duckdb.connect(db, read_only=True)
    before = con.execute("select count(*) from ingest.reviews where user_key = 'letterboxd:melvincarvalho'").fetchall()
    con.close()
    older = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / "letterboxd-melvincarvalho-2026-01-01-20-00-utc")
    out = _lbx("import", str(older), "--db", db)
    assert (
        out.returncode == 1
        and "before the one already imported (letterboxd-melvincarvalho-2026-11-29-20-00-utc, made 2026-11-29 20:00"
        in out.stderr
    )
    # and a refresh of the bundled exports does not roll the member back either
    result = materialize(warehouse_copy, selection=["letterboxd_exports"])
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["outcome"].value["melvincarvalho"].startswith("skipped: a newer export")
    con = duckdb.connect(db, read_only=True)
    after = con.execute("select count(*) from ingest.reviews where user_key = 'letterboxd:melvincarvalho'").fetchall()
    ledger = con.execute("select count(*) from raw.letterboxd_imports where username = 'melvincarvalho'").fetchall()
    con.close()
    assert after == before and ledger[0][0] == 2  # the bundled import and the newer one: history kept


# --- TMDb key in the environment -----------------------------------------------------------------


def test_import_with_a_tmdb_key_uses_the_live_client_without_dagster(tmp_path: Path) -> None:
    empty = json.dumps({"page": 1, "results": [], "total_pages": 0, "total_results": 0})
    with RecordedServer({"/3/search/movie": Response(body=empty, content_type="application/json")}) as server:
        out = _lbx(
            "import",
            str(write_folder(tmp_path / "e", minimal_files())),
            "--db",
            str(tmp_path / "w.duckdb"),
            env={"TMDB_API_KEY": "k-secret-1234567890", "TMDB_BASE_URL": f"{server.base_url}/3"},
        )
        assert server.hits("/3/search/movie") >= 1
    assert out.returncode == 0, out.stderr
    assert "tester_1: imported" in out.stdout and "no accepted model yet" in out.stderr
    assert "k-secret" not in out.stdout + out.stderr


# --- the served model and the champion are never pruned ----------------------------------------


def test_pruning_keeps_protected_versions(tmp_path: Path) -> None:
    root = tmp_path / "ease"
    for stamp in ("20260101", "20260102", "20260103", "20260104", "20260105"):
        (root / stamp).mkdir(parents=True)
        (root / stamp / "card.json").write_text("{}")
    removed = prune_versions(root, keep=2, protect={root / "20260101"})
    assert sorted(p.name for p in removed) == ["20260102", "20260103"]
    assert sorted(p.name for p in root.iterdir()) == ["20260101", "20260104", "20260105"]


def test_retraining_never_deletes_the_served_model(warehouse_copy: Warehouse) -> None:
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    asset, path = con.execute("select asset, path from serving.model_metrics where served and accepted").fetchall()[0]
    con.close()
    card = json.loads((Path(path) / "card.json").read_text())
    pinned = {k: v for k, v in card["params"].items() if k not in ("seed", "num_threads")}
    run_config = {"ops": {asset: {"config": {"params": pinned}}}}  # pinned: a real refit, never skipped
    for _ in range(4):  # more retrains than versions kept, none of them evaluated or accepted
        assert materialize(warehouse_copy, selection=[asset], run_config=run_config).success
    assert (Path(path) / "card.json").exists()
    assert len([p for p in Path(path).parent.iterdir() if p.is_dir()]) == 4  # 3 newest + the served one


# --- one name, two communities -----------------------------------------------------------------


def test_recs_for_a_name_in_both_communities_shows_one_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "w.duckdb"
    rows = [
        {
            "username": "1",
            "source": source,
            "user_key": f"{source}:1",
            "rank": r,
            "tmdb_id": 100 + r,
            "title": f"{source} film {r}",
            "year": 2000,
            "score": 1.0 / r,
            "reason": "because",
            "model": "ease",
        }
        for source in ("letterboxd", "movielens")
        for r in range(1, 4)
    ]
    con = duckdb.connect(str(db))
    con.execute("create schema serving")
    con.register("f", pl.DataFrame(rows).to_arrow())
    con.execute("create table serving.user_recommendations as select * from f")
    con.close()
    assert main(["recs", "1", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Recommendations for 1 (letterboxd" in out and "movielens film" not in out
    assert [line.split()[0] for line in out.splitlines() if line[:1].isdigit()] == ["1", "2", "3"]
    assert "`lbx recs 1 --source movielens`" in out
    assert main(["recs", "1", "--db", str(db), "--source", "movielens"]) == 0
    assert "movielens film 1" in capsys.readouterr().out


def test_a_terminal_import_shows_in_the_dagster_instance(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POOL_CONFIG)
    out = _lbx(
        "import",
        str(write_folder(tmp_path / "e", minimal_files())),
        "--db",
        str(tmp_path / "w.duckdb"),
        env={"DAGSTER_HOME": str(home)},
    )
    assert out.returncode == 0, out.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("reviews"))
        day = event.asset_materialization.partition
        assert instance.get_dynamic_partitions("scrape_dates") == [day]
        assert event.asset_materialization.metadata["username"].value == "tester_1"
