"""dbt and the warehouse file: it waits for another process's lock, fails naming the holder after
the bound, finds the warehouse without os.environ, and dies with a killed parent.

Every case uses real processes: a second Python holding the DuckDB file, a real dbt build, a
parent killed with SIGKILL.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lbx_orchestration.core.settings import dbt_executable
from lbx_orchestration_tests.support.processes import alive, children_of, outlives
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize

pytestmark = pytest.mark.slow

#: the assets dbt's sources read (ingest.reviews, metadata.film_resolution, metadata.tmdb_movies)
UPSTREAM = ["movielens_ratings", "letterboxd_exports", "reviews", "film_catalog", "tmdb_movies"]

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "read")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _resources(path: Path, **settings) -> dict:
    from dagster_duckdb import DuckDBResource

    from lbx_orchestration.resources import LbxSettings, build_resources

    return build_resources(
        {
            "duckdb": DuckDBResource(database=str(path)),
            "settings": LbxSettings(models_dir=str(path.parent / "models"), **settings),
        }
    )


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with the tables dbt reads, built by the real upstream assets."""
    root = tmp_path_factory.mktemp("dbt-lock")
    result = materialize(Warehouse(root, root / "lbx.duckdb", root / "models"), selection=UPSTREAM)
    assert result.success
    return root / "lbx.duckdb"


@pytest.fixture
def warehouse(upstream: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "lbx.duckdb"
    shutil.copy(upstream, copy)
    return copy


@contextmanager
def held(path: Path, seconds: float, mode: str) -> Iterator[subprocess.Popen]:
    """A second process with the DuckDB file open (``read`` or ``write``) for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _build_dbt(path: Path, **settings) -> tuple[dg.ExecuteInProcessResult, list[str], float]:
    from lbx_orchestration.features.assets import dbt_features

    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = dg.materialize(
        [dbt_features], resources=_resources(path, **settings), instance=instance, raise_on_error=False
    )
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, logs, time.monotonic() - started


def _tables(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('staging', 'features') order by 1"
        ).fetchall()
        return {n: con.execute(f"select count(*) from {n}").fetchall()[0][0] for (n,) in names}


def test_dbt_waits_for_a_reader_then_builds(warehouse: Path) -> None:
    env_before = os.environ.get("LBX_DUCKDB_PATH")
    assert env_before != str(warehouse)
    with held(warehouse, 4, "read") as holder:
        result, logs, elapsed = _build_dbt(warehouse, lock_timeout=60)
        holder_exit = holder.wait(timeout=5)
    assert result.success, logs
    assert holder_exit == 0  # the holder let go by itself: dbt waited for it
    assert elapsed >= 4
    waits = [m for m in logs if m.startswith("dbt: the warehouse is in use by")]
    assert waits and f"pid {holder.pid} " in waits[0] and "waiting" in waits[0]
    assert any("dbt: the warehouse" in m and "is free after" in m for m in logs)
    tables = _tables(warehouse)
    assert tables["features.user_item_interactions"] > 100_000 and tables["features.movie_features"] > 9_000
    # dbt found the warehouse through --vars: nothing wrote the environment
    assert os.environ.get("LBX_DUCKDB_PATH") == env_before


def test_dbt_gives_up_after_the_bound_naming_the_holder(warehouse: Path) -> None:
    with held(warehouse, 120, "write") as holder:
        result, logs, elapsed = _build_dbt(warehouse, lock_timeout=3)
        assert holder.poll() is None  # still holding: dbt gave up, it was not let in
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    message = failure.message
    assert "could not take the write lock" in message and str(warehouse) in message
    assert f"pid {holder.pid} " in message and "for 3 s" in message
    assert elapsed < 60
    assert sum(m.startswith("dbt: the warehouse is in use by") for m in logs) >= 2  # each wait reported
    assert _tables(warehouse) == {}  # dbt never started: nothing half-built


#: a writer that has imported duckdb, takes the file the moment it reads a line and lets go at the next
HOLD_ON_CUE = """
import sys, duckdb
sys.stdin.readline()
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def test_dbt_retries_when_another_process_takes_the_file_as_it_starts(warehouse: Path) -> None:
    """The lock is free at the probe; a writer takes it while dbt imports; dbt starts again after."""
    import threading

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_ON_CUE, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    took_it: list[str] = []

    def grab_when_dbt_starts() -> None:
        # dbt's process exists, so the probe found the file free; dbt needs seconds of imports
        # before it connects, and the waiting writer needs milliseconds
        deadline = time.monotonic() + 120
        children: list[int] = []
        while time.monotonic() < deadline and not children:
            children = children_of(os.getpid(), "build")
            time.sleep(0.01)
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        took_it.append(holder.stdout.readline().strip())
        # hold until that dbt has met the lock and ended, and the asset is waiting again
        while children and alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        holder.stdin.write("release\n")
        holder.stdin.flush()

    thread = threading.Thread(target=grab_when_dbt_starts)
    thread.start()
    try:
        result, logs, _ = _build_dbt(warehouse, lock_timeout=60)
    finally:
        thread.join()
        holder.kill()
        holder.wait()
    assert took_it == ["holding"]
    assert result.success, logs
    assert any("as dbt started; waiting again" in m and f"pid {holder.pid} " in m for m in logs), logs
    assert _tables(warehouse)["features.user_item_interactions"] > 100_000


#: a dbt project whose one macro runs a query for minutes without printing a line: a parent killed
#: meanwhile leaves dbt nothing that would fail on the closed pipe, so only the death signal stops it
SPIN_PROJECT = {
    "dbt_project.yml": "name: spin\nversion: '1.0.0'\nconfig-version: 2\nprofile: spin\nmacro-paths: [macros]\n",
    "profiles.yml": "spin:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: spin.duckdb, threads: 1}\n",
    "macros/spin.sql": "{% macro spin() %}{% do run_query('select sum(range) from range(1000000000000)') %}"
    "{% endmacro %}\n",
}

PARENT = """
import sys
from dagster_dbt import DbtCliResource
from lbx_orchestration.core.settings import dbt_executable
DbtCliResource(project_dir=sys.argv[1], dbt_executable=dbt_executable()).cli(["run-operation", "spin"]).wait()
"""


def test_dbt_dies_with_its_killed_parent(tmp_path: Path) -> None:
    assert Path(dbt_executable()).name == "lbx-dbt", (
        f"lbx-dbt is not installed beside {sys.executable}: `make install` (pip install -e .) adds it"
    )
    for name, text in SPIN_PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    # started with SIGTERM ignored, as a shell's background job or a supervisor may leave it: dbt
    # inherits that through exec, and must still die with its parent
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT), str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    child = None
    try:
        deadline = time.monotonic() + 120
        while child is None and time.monotonic() < deadline and parent.poll() is None:
            found = children_of(parent.pid, "run-operation")
            child = found[0] if found else None
            time.sleep(0.05)
        assert child is not None, "dbt never started"
        assert b"lbx-dbt" in Path(f"/proc/{child}/cmdline").read_bytes()
        while not (tmp_path / "spin.duckdb").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # dbt opens the file just before its query
        time.sleep(1.5)  # now it is in its long query, silent
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert not outlives(child, 10), "dbt kept running after its parent was killed"
    finally:
        for pid in (parent.pid, child):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
    # and the file is free for the rerun once the kernel has closed the dead process's files
    deadline = time.monotonic() + 10
    while True:
        try:
            duckdb.connect(str(tmp_path / "spin.duckdb")).close()
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
