"""tmdb_movies against the live client, pointed at recorded TMDb responses on 127.0.0.1."""

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.warehouse import connect, replace_table
from lbx_orchestration.metadata.assets import tmdb_movies
from lbx_orchestration.resources import LiveTmdbResource, SnapshotTmdbResource
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tmdb"
SECRET = "k3y-that-must-never-leak"


def _json(path: str, status: int = 200) -> Response:
    return Response(status, FIXTURES / path, content_type="application/json;charset=utf-8")


def _catalog(db: Path, ids: list[int]) -> None:
    with connect(db) as con:
        replace_table(con, "metadata.film_catalog", pl.DataFrame({"tmdb_id": ids}, schema={"tmdb_id": pl.Int64}))


def test_live_fetch_caches_and_never_leaks_the_key(tmp_path: Path, caplog) -> None:
    db = tmp_path / "lbx.duckdb"
    _catalog(db, [550, 999999])
    routes = {
        "/3/configuration": _json("c-eg-themoviedbapi/configuration__details.json"),
        "/3/movie/550": _json("jdrouet-tmdb-api/movie-details.json"),
        "/3/movie/550/watch/providers": _json("jdrouet-tmdb-api/movie-watch-providers.json"),
        "/3/movie/999999": _json("jdrouet-tmdb-api/resource-not-found.json", 404),
    }
    with RecordedServer(routes) as server:
        resources = {
            "duckdb": DuckDBResource(database=str(db)),
            "tmdb": LiveTmdbResource(api_key=SECRET, base_url=server.base_url + "/3", rate_limit=50),
        }
        first = dg.materialize([tmdb_movies], resources=resources, instance=dg.DagsterInstance.ephemeral())
        assert first.success
        hits_after_first = server.hits("/3/movie/550") + server.hits("/3/movie/999999")
        second = dg.materialize([tmdb_movies], resources=resources, instance=dg.DagsterInstance.ephemeral())
        assert second.success
        assert server.hits("/3/movie/550") + server.hits("/3/movie/999999") == hits_after_first == 2
        # the key goes to TMDb (that is how v3 auth works) and nowhere else
        assert all(f"api_key={SECRET}" in path for _, path, _ in server.requests)
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert meta["source_kind"].value == "live"
    assert meta["films_with_metadata"].value == 1
    assert SECRET not in repr({k: v.value for k, v in meta.items()})
    assert SECRET not in caplog.text
    con = duckdb.connect(str(db), read_only=True)
    title, genres, directors = con.execute(
        "select title, genres, directors from metadata.tmdb_movies where tmdb_id = 550"
    ).fetchall()[0]
    assert title == "Fight Club" and "Drama" in genres
    assert con.execute("select status from tmdb.raw_responses where tmdb_id = 999999").fetchall() == [(404,)]
    con.close()


def test_snapshot_twin_says_which_source_ran(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    _catalog(db, [862, 1])
    result = dg.materialize(
        [tmdb_movies],
        resources={"duckdb": DuckDBResource(database=str(db)), "tmdb": SnapshotTmdbResource()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["source_kind"].value == "snapshot"
    assert meta["films_with_metadata"].value == 1 and meta["missing"].value == 1
    assert "snapshot" in meta["tmdb_source"].value
