"""The `lbx` terminal commands, on real files and a loopback TMDb."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.core.settings import BUNDLED_MOVIELENS_DIR
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response
from lbx_orchestration_tests.support.warehouse import Warehouse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tmdb"


@pytest.mark.slow
def test_recs_prints_a_letterboxd_users_table(materialized_warehouse: Warehouse, capsys) -> None:
    assert main(["recs", "melvincarvalho", "--limit", "5", "--db", str(materialized_warehouse.duckdb_path)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line[:1].isdigit()]
    assert [int(line.split()[0]) for line in lines] == [1, 2, 3, 4, 5]
    assert "Because you" in out and "melvincarvalho" in out


@pytest.mark.slow
def test_recs_unknown_user_exits_1(materialized_warehouse: Warehouse, capsys) -> None:
    assert main(["recs", "nobody_here", "--db", str(materialized_warehouse.duckdb_path)]) == 1
    assert "unknown user 'nobody_here'" in capsys.readouterr().err


def test_recs_without_a_warehouse_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert main(["recs", "someone", "--db", str(tmp_path / "missing.duckdb")]) == 1
    assert "make demo" in capsys.readouterr().err


def test_tmdb_movie_prints_parsed_json(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TMDB_API_KEY", "secret-key-123")
    routes = {
        "/3/configuration": Response(
            200, FIXTURES / "c-eg-themoviedbapi/configuration__details.json", content_type="application/json"
        ),
        "/3/movie/550": Response(
            200, FIXTURES / "jdrouet-tmdb-api/movie-details.json", content_type="application/json"
        ),
        "/3/movie/550/watch/providers": Response(
            200, FIXTURES / "jdrouet-tmdb-api/movie-watch-providers.json", content_type="application/json"
        ),
    }
    with RecordedServer(routes) as server:
        assert main(["tmdb", "movie", "550", "--base-url", server.base_url + "/3"]) == 0
    out = capsys.readouterr().out
    parsed = json.loads(out)
    assert parsed["tmdb_id"] == 550 and parsed["title"] == "Fight Club" and "Drama" in parsed["genres"]
    assert "secret-key-123" not in out


def test_tmdb_movie_401_names_the_variable(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TMDB_API_KEY", "bad-key")
    routes = {
        "/3/movie/550": Response(
            401, FIXTURES / "jdrouet-tmdb-api/invalid-api-key.json", content_type="application/json"
        )
    }
    with RecordedServer(routes) as server:
        assert main(["tmdb", "movie", "550", "--base-url", server.base_url + "/3"]) == 2
    err = capsys.readouterr().err
    assert "TMDB_API_KEY" in err and "bad-key" not in err


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (
            Response(429, "{}", headers={"Retry-After": "86400"}, content_type="application/json"),
            "asked to wait 86400 s, longer than lbx waits (120 s): try again after ",
        ),
        (
            Response(200, "null", content_type="application/json"),
            "TMDb /movie/550 answered HTTP 200 with JSON of the wrong shape: null",
        ),
        (
            Response(301, "", headers={"Location": "https://elsewhere.example/3/movie/550"}),
            "a redirect to another host: https://elsewhere.example/3/movie/550;",
        ),
    ],
    ids=["day-long-retry-after", "null-body", "redirect"],
)
def test_tmdb_movie_faults_exit_1_with_the_cause(monkeypatch, capsys, response: Response, said: str) -> None:
    monkeypatch.setenv("TMDB_API_KEY", "secret-key-123")
    with RecordedServer({"/3/movie/550": response}) as server:
        assert main(["tmdb", "movie", "550", "--base-url", server.base_url + "/3"]) == 1
        assert server.hits("/3/movie/550") == 1  # no retry loop, no redirect followed
    err = capsys.readouterr().err
    assert err.startswith("TMDb error: ") and said in err
    assert "Traceback" not in err and "secret-key-123" not in err


def _eval_report(capsys: pytest.CaptureFixture, *args: str) -> dict:
    """`lbx eval ARGS --budget 1 --json`, which must succeed, and its report."""
    assert main(["eval", *args, "--budget", "1", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_on_a_movielens_format_file(tmp_path: Path, capsys) -> None:
    ratings = pl.read_csv(BUNDLED_MOVIELENS_DIR / "ratings.csv")
    small = ratings.filter(pl.col("userId") <= 60)
    path = tmp_path / "ratings.csv"
    small.write_csv(path)
    args = f"--ratings {path} --split random --test-frac 0.25 --relevance all --models popularity,itemknn,als"
    report = _eval_report(capsys, *args.split())
    assert [r["model"] for r in report["rows"]] == ["popularity", "itemknn", "als"]
    assert report["settings"]["split"] == "random" and report["settings"]["relevance"] is None
    for row in report["rows"]:
        assert 0.0 <= row["ndcg@10"] <= 1.0 and 0.0 <= row["recall@20"] <= 1.0
    assert "random split" in report["protocol"]


def test_import_twice_then_a_broken_zip(tmp_path: Path, capsys) -> None:
    from lbx_orchestration.core.settings import BUNDLED_EXPORTS_DIR

    db = tmp_path / "lbx.duckdb"
    export = BUNDLED_EXPORTS_DIR / "melvincarvalho_2021-11"
    assert main(["import", str(export), "--db", str(db)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("melvincarvalho: imported")
    rated = sum(1 for _ in (export / "ratings.csv").open(encoding="utf-8")) - 1
    assert f"rated {rated}," in first
    assert main(["import", str(export), "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("melvincarvalho: unchanged")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert main(["import", str(broken), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("import refused:") and "broken.zip" in err


def test_eval_cold_films_with_movielens_items(tmp_path: Path, capsys) -> None:
    ratings = pl.read_csv(BUNDLED_MOVIELENS_DIR / "ratings.csv").filter(pl.col("userId") <= 60)
    ratings.write_csv(tmp_path / "ratings.csv")
    shutil.copy(BUNDLED_MOVIELENS_DIR / "movies.csv", tmp_path / "movies.csv")
    shutil.copy(BUNDLED_MOVIELENS_DIR / "links.csv", tmp_path / "links.csv")
    films, ratings_csv = tmp_path / "movies.csv", tmp_path / "ratings.csv"
    models = "lightfm_cb,content,tmdb_popularity,random"
    args = f"--split cold-films --ratings {ratings_csv} --items {films} --models {models}"
    report = _eval_report(capsys, *args.split())
    by = {r["model"]: r for r in report["rows"]}
    assert list(by) == ["lightfm_cb", "content", "tmdb_popularity", "random"]
    assert report["served"] == "lightfm_cb" and report["settings"]["split"] == "cold-films"
    assert by["tmdb_popularity"]["ndcg@10"] > by["random"]["ndcg@10"]  # vote counts came through links.csv
    assert "Cold-film protocol" in report["protocol"] and "vote count" in report["protocol"]
    # cold films need features: the ratings alone are refused with the way out named
    assert main(["eval", "--split", "cold-films", "--ratings", str(tmp_path / "ratings.csv")]) == 1
    assert "--items movies.csv" in capsys.readouterr().err
    assert main(["eval", "--ratings", str(tmp_path / "ratings.csv"), "--items", str(tmp_path / "movies.csv")]) == 2
    assert "only used by --split cold-films" in capsys.readouterr().err
