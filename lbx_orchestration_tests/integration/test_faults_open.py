"""The faults the last red-team round left open (issue 26, points 5-9): a killed run and Dagster's
own CLI, damaged warehouses, undated older exports, odd TMDb fields and titles that are not words.
Every kill, lock and server here is a real process or a real socket on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from lbx_orchestration.cli import main
from lbx_orchestration_tests.support.lbx_cli import POOL_CONFIG, POOL_HOLDER, REPO, run_lbx
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response
from lbx_orchestration_tests.support.warehouse import Warehouse
from lbx_orchestration_tests.unit.export_builders import REAL_EXPORTS, minimal_files, write_folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tmdb"
_lbx = run_lbx


def _hold_the_pool(tmp_path: Path, home: Path) -> subprocess.Popen:
    marker, script = tmp_path / "marker", tmp_path / "holder.py"
    script.write_text(POOL_HOLDER)
    child = subprocess.Popen([sys.executable, str(script), str(marker)], env={**os.environ, "DAGSTER_HOME": str(home)})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the holder never reached its pool step"
        time.sleep(0.2)
    return child


def _dagster_env(home: Path, warehouse: Warehouse) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LBX_DUCKDB_PATH": str(warehouse.duckdb_path),
        "LBX_MODELS_DIR": str(warehouse.models_dir),
        "PYTHONPATH": str(REPO),
    }


DAGSTER_MATERIALIZE = [
    str(Path(sys.executable).parent / "dagster"),
    "asset",
    "materialize",
    "-m",
    "lbx_orchestration.definitions",
    "--select",
    "user_recommendations",
]


# --- 5: a killed run, then Dagster's own CLI ----------------------------------------------------


def test_the_plain_dagster_cli_frees_a_killed_runs_slot(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POOL_CONFIG)
    holder = _hold_the_pool(tmp_path, home)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    out = subprocess.run(
        DAGSTER_MATERIALIZE, capture_output=True, text=True, timeout=300, env=_dagster_env(home, warehouse_copy)
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"its process (pid {holder.pid}) is gone: slot freed" in out.stdout + out.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
        assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0


def test_a_cli_run_waiting_for_a_live_runs_slot_ends_on_sigterm(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POOL_CONFIG)
    holder = _hold_the_pool(tmp_path, home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        holder_runs = instance.event_log_storage.get_concurrency_info("duckdb").active_run_ids
    try:
        waiting = subprocess.Popen(
            DAGSTER_MATERIALIZE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_dagster_env(home, warehouse_copy),
        )
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 180
            while len(instance.event_log_storage.get_concurrency_info("duckdb").pending_steps) < 2:
                assert waiting.poll() is None and time.monotonic() < deadline, "the CLI run never asked for a slot"
                time.sleep(0.5)
            waiting.send_signal(signal.SIGTERM)
            started = time.monotonic()
            out, _ = waiting.communicate(timeout=60)
            assert time.monotonic() - started < 30 and waiting.returncode != 0
            assert "interrupted while waiting for a pool slot" in out
            info = instance.event_log_storage.get_concurrency_info("duckdb")
            assert info.active_run_ids == holder_runs and len(info.pending_steps) == 1  # only the holder's
            assert instance.get_runs(limit=1)[0].status == dg.DagsterRunStatus.FAILURE
    finally:
        holder.kill()
        holder.wait()


# --- 6: a damaged warehouse is named, never written --------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_truncated_warehouse_is_named_and_never_written(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    db = tmp_path / "half.duckdb"
    data = warehouse_copy.duckdb_path.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    before = _digest(db)
    for args in (
        ("recs", "patrickmjones"),
        ("unmatched", "patrickmjones"),
        ("import", str(REAL_EXPORTS["melvincarvalho"])),
        ("member", "key", "patrickmjones"),
        ("sql", "select 1"),
    ):
        out = _lbx(*args, "--db", str(db))
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert f"the warehouse {db} is damaged" in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    assert _digest(db) == before and not Path(f"{db}.wal").exists()


def test_random_bytes_are_named_by_unmatched(tmp_path: Path) -> None:
    db = tmp_path / "random.duckdb"
    db.write_bytes(os.urandom(300_000))
    out = _lbx("unmatched", "anyone", "--db", str(db))
    assert out.returncode == 1 and "is damaged" in out.stderr and "Traceback" not in out.stderr


def test_a_healthy_warehouse_after_deletes_is_not_called_damaged(tmp_path: Path) -> None:
    """DuckDB trims free blocks off the end of a file while its header still counts them."""
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table a as select range as i, repeat('x', 100) as s from range(300000)")
    con.execute("create table b as select range as i, repeat('y', 100) as s from range(300000)")
    con.execute("checkpoint")
    con.execute("drop table b")
    con.execute("checkpoint")
    con.close()
    from lbx_orchestration.core.warehouse import damage

    assert damage(db) is None
    out = _lbx("sql", "select count(*) from a", "--db", str(db))
    assert out.returncode == 0 and "300000" in out.stdout


# --- 7: an undated export of an older state ----------------------------------------------------


def _entries(db: Path, user: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        sql = "select count(*) from raw.letterboxd_export_entries where username = ?"
        return con.execute(sql, [user]).fetchall()[0][0]
    finally:
        con.close()


def test_an_undated_export_that_would_remove_entries_is_refused(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    db = warehouse_copy.duckdb_path
    full = REAL_EXPORTS["melvincarvalho"]
    stored = _entries(db, "melvincarvalho")
    older = shutil.copytree(full, tmp_path / "melvin-older")
    for name in ("ratings.csv", "watched.csv"):  # an older state: fewer films, the same newest diary day
        lines = (older / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (older / name).write_text("".join(lines[: 1 + (len(lines) - 1) // 3]), encoding="utf-8")
    out = _lbx("import", str(older), "--db", str(db))
    assert out.returncode == 1, out.stdout
    assert "melvin-older: this export of melvincarvalho is not newer than the one already imported" in out.stderr
    assert "melvincarvalho_2021-11" in out.stderr and "Importing it would remove them" in out.stderr
    assert _entries(db, "melvincarvalho") == stored
    # a fuller export of the same day is taken (it removes nothing)
    fuller = shutil.copytree(full, tmp_path / "melvin-fuller")
    with (fuller / "watchlist.csv").open("a", encoding="utf-8") as f:
        f.write("2021-11-01,Heat,1995,https://boxd.it/2aHi\n")
    out = _lbx("import", str(fuller), "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert _entries(db, "melvincarvalho") == stored + 1


# --- 8: one odd TMDb field never loses the film --------------------------------------------------


def test_an_odd_tmdb_field_is_dropped_with_a_note(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TMDB_API_KEY", "secret-key-123")
    details = json.loads((FIXTURES / "jdrouet-tmdb-api/movie-details.json").read_text(encoding="utf-8"))
    details.update({"belongs_to_collection": "Fight Club Collection", "genres": "Drama", "runtime": "139"})
    routes = {
        "/3/configuration": Response(
            200, FIXTURES / "c-eg-themoviedbapi/configuration__details.json", content_type="application/json"
        ),
        "/3/movie/550": Response(200, json.dumps(details), content_type="application/json"),
        "/3/movie/550/watch/providers": Response(200, '{"id": 550, "results": []}', content_type="application/json"),
    }
    with RecordedServer(routes) as server:
        assert main(["tmdb", "movie", "550", "--base-url", server.base_url + "/3"]) == 0
    captured = capsys.readouterr()
    parsed = json.loads(captured.out)
    assert parsed["title"] == "Fight Club" and parsed["year"] == 1999 and parsed["runtime"] == 139
    assert parsed["collection"] is None and parsed["genres"] is None and parsed["overview"]
    assert "belongs_to_collection: expected an object, got str 'Fight Club Collection'; dropped" in captured.err
    assert "genres: expected a list, got str 'Drama'; dropped" in captured.err


# --- 9: a title that is not a word --------------------------------------------------------------


def test_a_title_of_symbols_is_kept_unresolved_and_the_rest_imported(tmp_path: Path) -> None:
    ratings = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        "2020-11-02,Parasite,2019,https://boxd.it/hTha,5\n"
        "2020-11-03,★,2019,https://boxd.it/zzZ1,4\n"
        "2020-11-04,...,2011,https://boxd.it/zzZ2,3\n"
    )
    export = write_folder(tmp_path / "e", {**minimal_files(), "ratings.csv": ratings})
    db = tmp_path / "w.duckdb"
    out = _lbx("import", str(export), "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "tester_1: imported" in out.stdout and "Traceback" not in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "select film_title, tmdb_id, method, reason from metadata.film_resolution order by film_title"
    ).fetchall()
    con.close()
    by_title = {r[0]: r for r in rows}
    assert by_title["Parasite"][1] == 496243
    assert by_title["★"][1] is None and by_title["★"][2] == "unsearchable_title"
    assert "has no letters or digits" in by_title["★"][3] and by_title["..."][2] == "unsearchable_title"
    out = _lbx("unmatched", "tester_1", "--db", str(db))
    assert out.returncode == 0 and "★" in out.stdout and "Traceback" not in out.stderr


# --- one member per name, whatever its case ----------------------------------------------------


def test_a_case_variant_is_the_same_member_and_old_variants_merge(tmp_path: Path) -> None:
    from lbx_orchestration.core.importer import import_export

    db = tmp_path / "w.duckdb"
    export = write_folder(tmp_path / "e", minimal_files())
    con = duckdb.connect(str(db))
    try:
        assert import_export(con, export, username="Tester_1").username == "tester_1"
        # a warehouse written before names were folded: the same member under another case
        con.execute("update raw.letterboxd_export_entries set username = 'TESTER_1'")
        con.execute("update raw.letterboxd_imports set username = 'TESTER_1'")
        con.execute("update ingest.reviews set username = 'TESTER_1', user_key = 'letterboxd:TESTER_1'")
        fuller = write_folder(
            tmp_path / "f",
            {
                **minimal_files(),
                "watchlist.csv": "Date,Name,Year,Letterboxd URI\n2020-11-02,Heat,1995,https://boxd.it/2aHi\n",
            },
        )
        report = import_export(con, fuller, username="tEsTeR_1")
        assert report.username == "tester_1" and report.status == "updated"
        users = con.execute(
            "select distinct user_key from ingest.reviews where lower(user_key) like 'letterboxd:%'"
        ).fetchall()
        names = con.execute("select distinct username from raw.letterboxd_export_entries").fetchall()
        ledger = con.execute("select distinct username from raw.letterboxd_imports").fetchall()
    finally:
        con.close()
    assert users == [("letterboxd:tester_1",)] and names == [("tester_1",)] and ledger == [("tester_1",)]
