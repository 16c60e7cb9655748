"""`lbx sql`: read-only SQL on a real DuckDB file, as a one-shot query, from stdin and as a shell."""

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.sql_shell import shell

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lbx.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema serving")
    con.execute(
        "create table serving.user_recommendations (username varchar, rank integer, title varchar, year integer)"
    )
    con.execute(
        "insert into serving.user_recommendations values "
        "('ana', 1, 'Stalker', 1979), ('ana', 2, 'Solaris', 1972), ('bo', 1, 'Alien', 1979)"
    )
    con.close()
    return path


def test_one_query_prints_its_result_table(db: Path, capsys) -> None:
    query = "select rank, title, year from serving.user_recommendations where username = 'ana' order by rank"
    assert main(["sql", query, "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("│")[1:4] for line in lines if "Stalker" in line or "Solaris" in line] == [
        ["     1 ", " Stalker ", "  1979 "],
        ["     2 ", " Solaris ", "  1972 "],
    ]
    assert any("title" in line and "year" in line for line in lines)


def test_csv_output(db: Path, capsys) -> None:
    assert (
        main(
            [
                "sql",
                "--csv",
                "--db",
                str(db),
                "select username, count(*) as films from serving.user_recommendations group by 1 order by 1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "username,films\nana,2\nbo,1\n"


def test_writes_are_refused_and_nothing_changes(db: Path, capsys) -> None:
    assert main(["sql", "delete from serving.user_recommendations", "--db", str(db)]) == 1
    assert "read-only" in capsys.readouterr().err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from serving.user_recommendations").fetchall() == [(3,)]


def test_statements_from_stdin_run_in_turn_and_an_error_does_not_stop_them(db: Path) -> None:
    script = (
        "select count(*) as n\n  from serving.user_recommendations;\nselect nonsense;\n.tables\nselect 42 as answer;\n"
    )
    out, err = io.StringIO(), io.StringIO()
    assert shell(db, io.StringIO(script), out, err, max_rows=100, interactive=False) == 1
    text = out.getvalue()
    assert "│     3 │" in text and "serving.user_recommendations" in text and "│     42 │" in text
    assert err.getvalue().startswith("error: ") and "nonsense" in err.getvalue()


def test_interactive_shell_prompts_continues_statements_and_quits(db: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("select title\nfrom serving.user_recommendations where username = 'bo';\n.quit\nselect 1;\n")
    assert shell(db, stdin, out, err, max_rows=100, interactive=True) == 0
    text = out.getvalue()
    assert text.startswith(f"Read-only SQL on {db}")
    assert "lbx> ...> " in text and "Alien" in text
    assert text.count("lbx> ") == 2  # nothing read after .quit
    assert err.getvalue() == ""


def _hold(db: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_writer_holding_the_file_is_waited_for_then_named(db: Path, capsys) -> None:
    holder = _hold(db, 60)
    try:
        assert main(["sql", "select 1", "--db", str(db), "--wait", "1"]) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.startswith("lbx: the warehouse is in use by")  # the wait was reported
    assert f"error: the warehouse {db} is in use by pid {holder.pid} " in err


def test_the_query_runs_once_the_writer_lets_go(db: Path, capsys) -> None:
    holder = _hold(db, 2)
    try:
        assert main(["sql", "--csv", "select count(*) as n from serving.user_recommendations", "--db", str(db)]) == 0
        assert holder.wait(timeout=5) == 0  # it finished by itself: lbx sql waited for it
    finally:
        holder.kill()
        holder.wait()
    captured = capsys.readouterr()
    assert captured.out == "n\n3\n" and f"in use by pid {holder.pid} " in captured.err


def test_missing_warehouse_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert main(["sql", "select 1", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "make demo" in capsys.readouterr().err
