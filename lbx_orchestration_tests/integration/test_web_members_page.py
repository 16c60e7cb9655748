"""The members' page answers what people ask (issue 24): filters ranked among every unseen film,
the watchlist choice, lists from the warehouse, the film panel and the view in the URL. Against
a real `lbx serve` process on 127.0.0.1 over a copy of the session warehouse, and in Chromium."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration_tests.support.web import (
    SAMPLE_EXPORTS,
    copy_warehouse,
    lbx_serve_child,
    member_films,
    query,
    zip_folder,
)

MEMBER = "patrickmjones"
LIST_NAME = "Official Top 250 Narrative Feature Films by Women Directors"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture(scope="module")
def server(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory):
    with lbx_serve_child(materialized_warehouse.duckdb_path, tmp_path_factory.mktemp("members-page")) as site:
        yield site


def recs(url: str, user: str = MEMBER, **params) -> httpx.Response:
    return httpx.get(f"{url}/api/users/{user}/recommendations", params=params, timeout=60)


def test_the_list_can_be_based_on_the_latest_films_or_the_best_rated(server) -> None:
    url, db = server
    seen, watch = member_films(db, MEMBER, False), member_films(db, MEMBER, True)
    every = recs(url, basis="all", genre="drama", limit=30).json()
    lists = {basis: recs(url, basis=basis, genre="drama", limit=30).json() for basis in ("five", "latest50")}
    for basis, body in lists.items():
        ids = [x["tmdb_id"] for x in body["recommendations"]]
        assert body["filters"]["basis"] == basis and body["count"] == 30, basis
        assert not set(ids) & (seen | watch), basis  # films outside the basis are still seen
        assert ids != [x["tmdb_id"] for x in every["recommendations"]], basis  # another basis, another list
    bad = recs(url, basis="sometimes")
    assert bad.status_code == 422 and "basis" in bad.json()["error"]


def test_filters_watchlist_lists_and_film_details_over_http(server) -> None:
    url, db = server
    seen, watch = member_films(db, MEMBER, False), member_films(db, MEMBER, True)
    # "Horror, 1970s" gives as many films as asked, none seen, none on the watchlist
    started = time.perf_counter()
    body = recs(url, genre="horror", decade="1970s", limit=20).json()
    elapsed = time.perf_counter() - started
    got = body["recommendations"]
    assert body["count"] == 20 and body["filters"]["genre"] == "Horror" and body["filters"]["watchlist"] == "exclude"
    assert all("Horror" in x["genres"] and x["decade"] == "1970s" for x in got)
    assert not {x["tmdb_id"] for x in got} & (seen | watch) and all(x["reason"] for x in got)
    assert elapsed < 5, elapsed  # the member folded in on request, not a refit
    stored = recs(url, limit=50).json()["recommendations"]
    assert sum("Horror" in x["genres"] and x["decade"] == "1970s" for x in stored) < 20  # what filtering it gave

    only = recs(url, watchlist="only", limit=50).json()
    assert only["count"] > 0 and {x["tmdb_id"] for x in only["recommendations"]} <= watch - seen
    assert [x["rank"] for x in only["recommendations"]] == list(range(1, only["count"] + 1))
    include = recs(url, watchlist="include", limit=50).json()
    assert include["count"] == 50 and {x["tmdb_id"] for x in include["recommendations"]} & watch
    bad = recs(url, watchlist="sometimes")
    assert bad.status_code == 422 and "watchlist" in bad.json()["error"]

    # the export's list, stored with the import in the warehouse, by name
    stored_lists = query(
        db, "select list_name, count(*) from raw.letterboxd_lists where username = ? group by 1", [MEMBER]
    )
    assert stored_lists == [(LIST_NAME, 250)]
    lists = httpx.get(f"{url}/api/users/{MEMBER.upper()}/lists").json()["lists"]
    assert [(x["name"], x["films"]) for x in lists] == [(LIST_NAME, 250)] and lists[0]["films_known"] > 20
    on_list = recs(url, list=LIST_NAME, limit=20).json()
    assert on_list["count"] == 20 and not {x["tmdb_id"] for x in on_list["recommendations"]} & seen

    film = httpx.get(f"{url}/api/films/694").json()
    assert film["title"] == "The Shining" and film["directors"] == ["Stanley Kubrick"] and film["runtime"] > 100
    assert "Jack Nicholson" in film["cast"] and film["overview"] and "Horror" in film["genres"]
    assert film["tmdb_url"] == "https://www.themoviedb.org/movie/694" and film["providers"] is None  # offline
    similar = httpx.get(f"{url}/api/films/694/similar", params={"username": MEMBER, "limit": 20}).json()
    assert similar["count"] == 20 and not {x["tmdb_id"] for x in similar["results"]} & seen


def test_an_upload_stores_its_lists_counts_distinct_films_and_filters_at_once(server, tmp_path: Path) -> None:
    url, db = server
    export = zip_folder(SAMPLE_EXPORTS / "extratone_2024-04", tmp_path / "export.zip")
    with export.open("rb") as f:
        r = httpx.post(
            f"{url}/api/imports",
            files={"file": ("export.zip", f, "application/zip")},
            data={"username": "lister"},
            timeout=180,
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["distinct_matched"] <= body["distinct_films"] < body["films"]  # diary and ratings: one film each
    stored = query(db, "select distinct list_name from raw.letterboxd_lists where username = 'lister' order by 1")
    assert len(stored) == 2
    lists = httpx.get(f"{url}/api/users/lister/lists").json()["lists"]
    assert sorted(x["name"] for x in lists) == [s[0] for s in stored]
    drama = recs(url, "lister", genre="Drama", limit=30).json()
    assert drama["count"] == 30 and all("Drama" in x["genres"] for x in drama["recommendations"])


def test_an_older_warehouse_without_the_lists_table_still_answers(materialized_warehouse, tmp_path: Path) -> None:
    db = copy_warehouse(materialized_warehouse.duckdb_path, tmp_path / "wh")
    with duckdb.connect(str(db)) as con:
        con.execute("drop table raw.letterboxd_lists")
    settings = WebSettings(
        db=db, state_dir=tmp_path / "state", background_refresh=False, settle_seconds=0, warm_imports=False
    )
    with TestClient(create_app(settings)) as client:
        r = client.get(f"/api/users/{MEMBER}/lists")
        # the bundled export's list, read from LBX_EXPORT_DIRS as before lists were stored
        assert r.status_code == 200 and [x["name"] for x in r.json()["lists"]] == [LIST_NAME]
        assert client.get("/api/users/melvincarvalho/lists").json()["lists"] == []
        assert client.get(f"/api/users/{MEMBER}/recommendations", params={"list": "x"}).status_code == 404
        assert client.get(f"/api/users/{MEMBER}/recommendations", params={"genre": "Drama"}).json()["count"] == 20


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: run `make test` (it installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def titles(pg) -> list[str]:
    return pg.locator("#rec-list h3").all_inner_texts()


def wait_for_list(pg, count: int) -> None:
    pg.wait_for_function(f"document.querySelectorAll('#rec-list > li').length === {count}")


def test_page_filters_watchlist_list_film_panel_and_the_view_in_the_url(page, server) -> None:
    url, db = server
    page.goto(url)
    page.get_by_label("Letterboxd username").fill(MEMBER)
    page.keyboard.press("Enter")
    wait_for_list(page, 20)
    page.get_by_label("Genre").select_option("Horror")
    page.get_by_label("Decade").select_option("1970s")
    page.get_by_label("How many").fill("15")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "document.querySelectorAll('#rec-list > li').length === 15 && "
        "[...document.querySelectorAll('#rec-list > li')].every(li => li.innerText.includes('Horror'))"
    )
    horror = titles(page)
    state = parse_qs(urlsplit(page.url).query)
    assert state == {"user": [MEMBER], "genre": ["Horror"], "decade": ["1970s"], "limit": ["15"]}
    page.reload()  # the view survives a reload: the same films under the same filters
    wait_for_list(page, 15)
    assert titles(page) == horror
    assert page.get_by_label("Genre").input_value() == "Horror" and page.get_by_label("Decade").input_value() == "1970s"

    # only my watchlist: ranked, every film on it
    page.get_by_role("button", name="Clear").click()
    wait_for_list(page, 20)
    page.get_by_label("My watchlist").select_option("only")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("location.search.includes('watchlist=only')")
    expected = recs(url, watchlist="only", limit=20).json()["recommendations"]
    wait_for_list(page, len(expected))
    assert [t.split(".", 1)[1] for t in titles(page)] == [f"{x['title']} ({x['year']})" for x in expected]

    # a list from the export
    page.get_by_label("My watchlist").select_option("exclude")
    page.get_by_label("Only from my list").select_option(label=f"{LIST_NAME} (250)")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("location.search.includes('list=official-top-250')")
    on_list = recs(url, list=LIST_NAME, limit=20).json()["recommendations"]
    wait_for_list(page, 20)
    assert [t.split(".", 1)[1] for t in titles(page)] == [f"{x['title']} ({x['year']})" for x in on_list]

    # the film panel, with "more like this" none of which the member has seen
    first = on_list[0]
    page.locator("#rec-list > li").first.get_by_role("button", name=f"About {first['title']}").click()
    page.wait_for_selector("#film:not([hidden]) #film-similar > li")
    assert page.locator("#film-heading").inner_text() == f"{first['title']} ({first['year']})"
    film = httpx.get(f"{url}/api/films/{first['tmdb_id']}").json()
    assert page.locator("#film-overview").inner_text() == (film["overview"] or "No overview in lbx's TMDb metadata.")
    assert "needs TMDb online" in page.locator("#film-where").inner_text()
    assert page.locator("#film-tmdb").get_attribute("href") == f"https://www.themoviedb.org/movie/{first['tmdb_id']}"
    shown = {int(x) for x in page.locator("#film-similar > li").evaluate_all("l => l.map(e => e.dataset.tmdbId)")}
    assert len(shown) == 8 and not shown & member_films(db, MEMBER, False)
    assert parse_qs(urlsplit(page.url).query)["film"] == [str(first["tmdb_id"])]
    page.reload()  # the open film comes back too
    page.wait_for_selector("#film:not([hidden]) #film-similar > li")
    assert page.locator("#film-heading").inner_text() == f"{first['title']} ({first['year']})"
    assert page.get_by_label("Only from my list").input_value() == "official-top-250-narrative-feature-films"
