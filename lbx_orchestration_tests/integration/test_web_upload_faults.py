"""Uploads while TMDb fails: JSON errors that say what to do, nothing written, no folder left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from lbx_orchestration.core.tmdb.client import TmdbClient
from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response
from lbx_orchestration_tests.support.web import copy_warehouse
from lbx_orchestration_tests.unit.export_builders import minimal_files, write_zip

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tmdb"
RATE_LIMITED = FIXTURES / "issue-logs" / "radarr-2017-429-rate-limit.json"
UNKNOWN = "2020-11-02,Zzyzx Unknown Picture,2019,https://boxd.it/zQ9x"


@pytest.fixture(scope="module")
def app_and_db(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("upload-faults")
    db = copy_warehouse(materialized_warehouse.duckdb_path, root / "db")
    state = root / "state"
    stale = state / f"upload-{2**22 + 12345}-deadbeef"  # left by a server killed mid-upload
    stale.mkdir(parents=True)
    (stale / "upload-x.zip").write_bytes(b"half an upload")
    settings = WebSettings(
        db=db, state_dir=state, background_refresh=False, settle_seconds=0, warm_imports=False, imports_burst=50
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert not stale.exists()  # removed at start-up
        yield client, db, state


def _imports(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select count(*) from raw.letterboxd_imports").fetchall()[0][0]
    finally:
        con.close()


def _export(tmp_path: Path, name: str) -> bytes:
    files = {
        **minimal_files(),
        "profile.csv": minimal_files()["profile.csv"].replace("tester_1", name),
        "ratings.csv": f"Date,Name,Year,Letterboxd URI,Rating\n{UNKNOWN},4\n",
        "watched.csv": f"Date,Name,Year,Letterboxd URI\n{UNKNOWN}\n",
    }
    return write_zip(tmp_path / f"{name}.zip", files).read_bytes()


@pytest.mark.parametrize(
    ("response", "status", "said"),
    [
        (
            Response(429, RATE_LIMITED, headers={"Retry-After": "86400"}, content_type="application/json"),
            503,
            "rate limiting this server: nothing was imported, try again in",
        ),
        (
            Response(301, "", headers={"Location": "https://elsewhere.example/3/search/movie"}),
            502,
            "did not answer usably",
        ),
        (Response(500, "<html>oops</html>"), 502, "did not answer usably"),
    ],
)
def test_a_failing_tmdb_gives_a_json_error_and_changes_nothing(
    app_and_db, tmp_path: Path, response: Response, status: int, said: str
) -> None:
    client, db, state = app_and_db
    before = _imports(db)
    with RecordedServer({"/3/search/movie": response}) as server:
        client.app.state.lbx._tmdb = TmdbClient(
            api_key="k-secret-42", base_url=f"{server.base_url}/3", max_retries=0, backoff_base=0.01
        )
        r = client.post(
            "/api/imports", files={"file": ("e.zip", _export(tmp_path, f"tmdb_{status}"), "application/zip")}
        )
        assert server.hits("/3/search/movie") >= 1
    assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
    body = r.json()
    assert said in body["error"] and "k-secret-42" not in r.text and "elsewhere" not in r.text
    if status == 503:
        assert 86000 < int(r.headers["retry-after"]) <= 86401
    assert _imports(db) == before
    assert not [p for p in state.iterdir() if p.name.startswith("upload-")]


def test_an_unexpected_error_is_json_without_details(app_and_db, tmp_path: Path) -> None:
    client, db, _ = app_and_db

    class Broken:
        kind = "live"

        def search_movie(self, title, year=None):
            raise KeyError(os.fspath(db))  # a bug in a source: its text must not reach the client

    client.app.state.lbx._tmdb = Broken()
    r = client.post("/api/imports", files={"file": ("e.zip", _export(tmp_path, "bug_case"), "application/zip")})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert "nothing was changed" in r.json()["error"] and str(db) not in r.text
    assert json.loads(r.text).keys() == {"error"}
