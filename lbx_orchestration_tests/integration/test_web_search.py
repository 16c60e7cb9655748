"""Search against a real `lbx serve` on 127.0.0.1 over a copy of the session warehouse: a title
first, a misspelling, a director, fewer hits than asked when the rest is noise, language intent."""

from __future__ import annotations

import httpx
import pytest

from lbx_orchestration_tests.support.web import lbx_serve_child


@pytest.fixture(scope="module")
def server(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory):
    with lbx_serve_child(materialized_warehouse.duckdb_path, tmp_path_factory.mktemp("web-search")) as (url, _):
        yield url


def search(url: str, q: str, **params) -> list[dict]:
    r = httpx.get(f"{url}/api/films/search", params={"q": q, **params}, timeout=30)
    assert r.status_code == 200
    return r.json()["results"]


def test_the_title_comes_first_and_the_noise_is_left_out(server: str) -> None:
    hits = search(server, "godfather", limit=20)
    assert hits[0]["title"] == "The Godfather" and hits[0]["match"] == "title"
    assert {"The Godfather: Part II", "The Godfather: Part III"} <= {h["title"] for h in hits[1:4]}
    assert len(hits) < 12
    assert not {"Parasyte", "Leonard Part 6"} & {h["title"] for h in hits}


def test_a_misspelling_and_an_original_title_find_the_film(server: str) -> None:
    assert search(server, "shawshank redemtion")[0]["title"] == "The Shawshank Redemption"
    assert search(server, "godfater")[0]["title"] == "The Godfather"
    assert search(server, "Le fabuleux destin d'Amélie Poulain")[0]["title"] == "Amélie"


def test_a_directors_name_finds_their_films(server: str) -> None:
    hits = search(server, "christopher nolan", limit=20)
    assert {"Inception", "The Prestige", "Interstellar"} <= {h["title"] for h in hits}
    assert all("Christopher Nolan" in h["directors"] for h in hits[:5])


def test_a_language_intent_puts_that_language_first(server: str) -> None:
    hits = search(server, "korean thriller", limit=10)
    assert hits and all(h["original_language"] == "ko" for h in hits)
    french = search(server, "un film français", limit=5)
    assert len(french) == 5 and all(h["original_language"] == "fr" for h in french)
