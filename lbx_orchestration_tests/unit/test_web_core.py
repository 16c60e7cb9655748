"""Pure parts of the members' side: BM25, LSA, reciprocal rank fusion, item vectors, list files,
the token bucket."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lbx_orchestration.core.film_search import FilmSearch
from lbx_orchestration.core.letterboxd.errors import ExportError
from lbx_orchestration.core.letterboxd.lists import parse_list, read_lists
from lbx_orchestration.core.search import (
    Bm25,
    item_vectors,
    most_similar,
    reciprocal_rank_fusion,
    tokenize,
)
from lbx_orchestration.web.ratelimit import TokenBuckets

SAMPLE = Path(__file__).resolve().parents[2] / "lbx_orchestration/sample_data/letterboxd_exports"

FILMS = pl.DataFrame(
    {
        "tmdb_id": [1, 2, 3, 4],
        "title": ["Alien", "Aliens", "Amélie", "Heat"],
        "original_title": ["Alien", "Aliens", "Le Fabuleux Destin d'Amélie Poulain", "Heat"],
        "overview": [
            "A crew in deep space meets a deadly creature.",
            "Marines fight creatures on a colony.",
            "A shy waitress in Paris decides to change lives.",
            "A thief and a detective in Los Angeles.",
        ],
        "directors": [["Ridley Scott"], ["James Cameron"], ["Jean-Pierre Jeunet"], ["Michael Mann"]],
        "cast_top": [["Sigourney Weaver"], ["Sigourney Weaver"], ["Audrey Tautou"], ["Al Pacino", "Robert De Niro"]],
        "keywords": [["space", "monster"], ["space", "marine"], ["paris"], ["heist", "bank robbery"]],
    }
)


def test_tokenize_folds_accents_and_case() -> None:
    assert tokenize("Amélie — LE Fabuleux!") == ["amelie", "le", "fabuleux"]
    assert tokenize(None) == []


def test_bm25_matches_the_textbook_formula() -> None:
    docs = [["a", "b", "a"], ["b", "c"], ["c"]]
    scores = Bm25(docs, k1=1.2, b=0.75).scores(["a", "c"])
    avg = 2.0

    def idf(df: int) -> float:
        return math.log(1 + (3 - df + 0.5) / (df + 0.5))

    def part(tf: int, dl: int, df: int) -> float:
        return idf(df) * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avg))

    assert scores == pytest.approx([part(2, 3, 1), part(1, 2, 2), part(1, 1, 2)])
    assert Bm25(docs).scores(["zzz"]).tolist() == [0.0, 0.0, 0.0]


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    fused = reciprocal_rank_fusion([np.array([7, 3]), np.array([3, 9])], k=60)
    assert [i for i, _, _ in fused] == [3, 7, 9]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61) and fused[0][2] == [2, 1]
    assert fused[2][2] == [None, 2]


def test_film_search_finds_by_every_field() -> None:
    search = FilmSearch(FILMS, dims=3)

    def top(q: str) -> int:
        return FILMS["tmdb_id"][search.search(q, 1)[0].index]

    assert top("aliens") == 2
    assert top("amelie poulain") == 3  # original title, accents folded
    assert top("michael mann") == 4  # director
    assert top("pacino") == 4  # cast
    assert top("bank robbery") == 4  # keywords
    assert top("waitress") == 3  # overview
    hits = search.search("sigourney weaver", 4)
    assert {FILMS["tmdb_id"][h.index] for h in hits[:2]} == {1, 2}
    assert search.search("   ", 5) == [] and search.search("xyzzy", 5) == []


def test_item_vectors_blend_collaborative_and_content() -> None:
    content = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    cf = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.float32)
    has = np.array([True, True, True, False])
    vectors = item_vectors(content, cf, has, collaborative_weight=0.5)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(4))
    # 0 is as close to 1 (same content) as to 2 (same audience); 3 has content alone
    assert vectors[0] @ vectors[1] == pytest.approx(vectors[0] @ vectors[2]) == pytest.approx(0.5)
    nearest = most_similar(vectors, 3, 3)
    assert nearest[0][0] == 2 and nearest[0][1] == pytest.approx(math.sqrt(0.5))


LIST_TEXT = (
    "Letterboxd list export v7\nDate,Name,Tags,URL,Description\n"
    "2021-01-01,Night Films,,https://boxd.it/abc,\n\n"
    'Position,Name,Year,URL,Description\n1,Heat,1995,https://boxd.it/2aHi,\n2,"Alien, Director\'s Cut",,https://boxd.it/2b0k,\n'
)


def test_parse_list_reads_the_title_block_and_the_films() -> None:
    rows = parse_list(LIST_TEXT, "lists/night-films.csv")
    assert rows == [
        {
            "list_slug": "night-films",
            "list_name": "Night Films",
            "position": 1,
            "film_name": "Heat",
            "film_year": 1995,
            "film_key": "2aHi",
        },
        {
            "list_slug": "night-films",
            "list_name": "Night Films",
            "position": 2,
            "film_name": "Alien, Director's Cut",
            "film_year": None,
            "film_key": "2b0k",
        },
    ]
    with pytest.raises(ExportError, match="lists/x.csv: not a Letterboxd list"):
        parse_list("Name,Year\nHeat,1995\n", "lists/x.csv")


def test_read_lists_from_a_zip_skips_deleted_and_refuses_hostile(tmp_path: Path) -> None:
    lists = read_lists(SAMPLE / "extratone_2024-04")
    assert sorted(lists["list_slug"].unique().to_list()) == [
        "parables-bizarrely-profound-youth-films-in",
        "software-history",
    ]  # deleted/lists/ left out
    assert lists.filter(pl.col("list_slug") == "software-history")["film_name"].to_list() == [
        "BBS: The Documentary",
        "Silicon Cowboys",
    ]
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("letterboxd-x/lists/night-films.csv", LIST_TEXT)
        zf.writestr("letterboxd-x/watched.csv", "Date,Name,Year,Letterboxd URI\n")
    assert read_lists(good).height == 2
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../lists/evil.csv", LIST_TEXT)
    with pytest.raises(ExportError, match="outside the archive"):
        read_lists(bad)


def test_token_bucket_refills_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(capacity=2, rate=0.5, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(2.0)  # one token needs 2 s at 0.5/s
    assert buckets.take("b") == 0.0  # another client has its own bucket
    now[0] = 2.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_the_web_package_does_not_import_dagster() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lbx_orchestration.web.app; "
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"


def test_a_warehouse_without_serving_tables_gets_a_clear_503(tmp_path: Path) -> None:
    import duckdb
    from fastapi.testclient import TestClient

    from lbx_orchestration.web.app import WebSettings, create_app

    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).execute("create table t as select 1 as x").close()
    app = create_app(
        WebSettings(db=db, state_dir=tmp_path / "state", background_refresh=False, settle_seconds=0, warm_imports=False)
    )
    with TestClient(app) as client:
        r = client.get("/api/users/anyone/recommendations")
        assert r.status_code == 503 and "nothing to serve yet" in r.json()["error"]
        assert str(tmp_path) not in r.text and r.headers["retry-after"] == "60"  # the why is in the server log
        assert "no serving.user_recommendations yet" in app.state.lbx.manager.last_error
        assert client.get("/").status_code == 200  # the page itself still loads
    missing = create_app(
        WebSettings(
            db=tmp_path / "none.duckdb", state_dir=tmp_path / "s2", background_refresh=False, warm_imports=False
        )
    )
    with TestClient(missing) as client:
        r = client.get("/api/health")
        assert r.status_code == 503 and "has not been built" in r.json()["error"] and str(tmp_path) not in r.text
