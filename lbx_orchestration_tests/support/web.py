"""Helpers for the web tests: a private copy of the session warehouse, export zips, a real
uvicorn server on 127.0.0.1 in a thread, and a second process that holds the DuckDB file."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

SAMPLE_EXPORTS = Path(__file__).resolve().parents[2] / "lbx_orchestration/sample_data/letterboxd_exports"


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` on ``db``, read-only, the connection closed at once."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def copy_warehouse(source_db: Path, target_dir: Path) -> Path:
    """The DuckDB file alone: the served model's path in serving.model_metrics still points at
    the session's model folder, which nothing here writes."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "lbx.duckdb"
    shutil.copyfile(source_db, target)
    return target


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lbx_serve(
    db: Path, port: int, state_dir: Path, env: dict[str, str], extra: list[str] | None = None, **popen: Any
) -> subprocess.Popen:
    """`lbx serve` on 127.0.0.1:``port`` in a child process, logging warnings only."""
    command = [sys.executable, "-m", "lbx_orchestration.cli", "serve", "--db", str(db), "--port", str(port)]
    command += ["--state-dir", str(state_dir), "--log-level", "warning", *(extra or [])]
    return subprocess.Popen(command, env=env, **popen)


def wait_until_up(
    proc: subprocess.Popen, url: str, timeout: float = 180, ready: Callable[[dict], bool] = lambda health: True
) -> None:
    """Poll ``url``'s /api/health until it answers 200 (and ``ready`` holds for its body); fails
    when the child exits or ``timeout`` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            health = httpx.get(f"{url}/api/health", timeout=2)
            if health.status_code == 200 and ready(health.json()):
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "lbx serve did not come up"
        time.sleep(0.5)


@contextlib.contextmanager
def serve_in_thread(app, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


WRITER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create or replace table main.lbx_writer_probe as select 1 as x")
print("locked", flush=True)
sys.stdin.readline()
con.execute(sys.argv[2])
con.close()
print("released", flush=True)
"""


class Writer:
    """A second process with a write connection to ``db`` until ``release`` (which runs
    ``statement`` first): DuckDB's one-writer lock, held for real."""

    def __init__(self, db: Path, statement: str = "select 1") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), statement], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().strip()
        if line != "locked":
            self.proc.kill()
            raise RuntimeError(f"the writer did not take the lock: {line!r}")

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        if self.proc.poll() is None:
            self.proc.kill()


@contextlib.contextmanager
def lbx_serve_child(warehouse: Path, root: Path, timeout: float = 240) -> Iterator[tuple[str, Path]]:
    """`lbx serve` in a child process on a copy of ``warehouse`` under ``root``: (its URL, the copy)."""
    import os

    db = copy_warehouse(warehouse, root / "wh")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = start_lbx_serve(db, port, root / "state", env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, url, timeout=timeout)
        yield url, db
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def member_films(db: Path, username: str, watchlist: bool) -> set[int]:
    """TMDb ids of a Letterboxd member's watchlist, or (``watchlist`` False) of the rest of their export."""
    kind = "=" if watchlist else "<>"
    sql = f"""
        select coalesce(r.tmdb_id, res.tmdb_id) from ingest.reviews r
        left join metadata.film_resolution res using (film_key)
        where r.user_key = ? and r.kind {kind} 'watchlist'"""
    return {row[0] for row in query(db, sql, [f"letterboxd:{username}"])} - {None}
