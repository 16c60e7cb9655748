"""The guest flow: `POST /api/guest` on a real server on 127.0.0.1 over a copy of the session
warehouse, then the page's guest form in headless Chromium."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from lbx_orchestration.core.tmdb.normalize import match_key
from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration.web.ratelimit import TokenBuckets
from lbx_orchestration_tests.support.web import copy_warehouse, query, serve_in_thread

UNKNOWN = "Qwzxv Plorth Unfilmed"


@pytest.fixture(scope="module")
def site(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("web-guest")
    db = copy_warehouse(materialized_warehouse.duckdb_path, root / "wh")
    app = create_app(
        WebSettings(
            db=db,
            state_dir=root / "state",
            background_refresh=False,
            settle_seconds=0,
            warm_imports=False,
            guests_burst=50,
        )
    )
    with serve_in_thread(app) as url:
        yield url, db, app


def loved_films(db: Path) -> list[tuple[int, str, int]]:
    """Five of the most-rated films the served model knows: (tmdb_id, title, year)."""
    return query(
        db,
        """
        select i.tmdb_id, m.title, m.year from features.user_item_interactions i
        join metadata.tmdb_movies m using (tmdb_id)
        where m.year is not null and length(m.title) > 3
        group by all order by count(*) desc, i.tmdb_id limit 5""",
    )


def row_counts(db: Path) -> dict[str, int]:
    tables = query(db, "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'")
    return {f"{s}.{t}": query(db, f'select count(*) from "{s}"."{t}"')[0][0] for s, t in tables}


def test_five_typed_films_give_a_list_without_them_and_nothing_is_kept(site, caplog) -> None:
    url, db, _ = site
    films = loved_films(db)
    typed = [f"{films[0][1]} ({films[0][2]}) 5", f"{films[1][1]} 4.5", *(f[1] for f in films[2:]), UNKNOWN]
    before = row_counts(db)
    with caplog.at_level(logging.DEBUG):
        r = httpx.post(f"{url}/api/guest", json={"films": typed}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    by_input = {m["input"]: m for m in body["matches"]}
    assert [by_input[t]["tmdb_id"] for t in typed[:5]] == [f[0] for f in films]
    assert by_input[typed[0]]["year"] == films[0][2] and by_input[typed[0]]["rating"] == 5.0
    assert by_input[typed[1]]["rating"] == 4.5 and all(0 < by_input[t]["confidence"] <= 1 for t in typed[:5])
    assert body["not_found"] == [UNKNOWN] and by_input[UNKNOWN]["tmdb_id"] is None
    assert body["count"] >= 20 and len(body["recommendations"]) == body["count"] and body["counted"] == 5
    recs = body["recommendations"]
    assert all(r["reason"] for r in recs) and [r["rank"] for r in recs] == list(range(1, len(recs) + 1))
    given_ids, given_keys = {f[0] for f in films}, {(match_key(f[1]), f[2]) for f in films}
    assert not given_ids & {r["tmdb_id"] for r in recs}
    assert not [r for r in recs if any((match_key(r["title"]), r["year"] + d) in given_keys for d in (-1, 0, 1))]
    assert row_counts(db) == before  # nothing about the guest written to the warehouse
    assert not [rec.getMessage() for rec in caplog.records if films[1][1] in rec.getMessage()]  # nor logged

    # basis: only the 5-star film counts; an unrated list cannot ask for 4 stars and up
    five = httpx.post(f"{url}/api/guest", json={"films": typed, "basis": "five", "limit": 20}, timeout=120).json()
    assert five["counted"] == 1 and five["count"] == 20 and [m["counted"] for m in five["matches"]][:2] == [True, False]
    bad = httpx.post(f"{url}/api/guest", json={"films": [films[2][1]], "basis": "four_up"}, timeout=60)
    assert bad.status_code == 422 and "rating" in bad.json()["error"]


def test_a_guest_of_recent_films_gets_recent_films_the_community_has_not_rated(site) -> None:
    """The content model's new films are blended into a guest's list as into a member's: a guest
    who types only recent films gets mostly recent films, some of them the content model's picks
    (its reasons read "like <a film you typed>")."""
    url, db, _ = site
    recent = query(  # well-known recent films: what a guest would type
        db,
        "select m.tmdb_id, m.title, m.year from metadata.tmdb_movies m "
        "where m.year >= 2019 and length(m.title) > 3 "
        "and m.tmdb_id in (select tmdb_id from features.user_item_interactions) "
        "order by m.vote_count desc, m.tmdb_id limit 6",
    )
    typed = [f"{title} ({year}) 5" for _, title, year in recent]
    body = httpx.post(f"{url}/api/guest", json={"films": typed, "limit": 20}, timeout=120).json()
    recs = body["recommendations"]
    assert body["count"] == 20 and all(r["reason"] for r in recs), body
    assert [r["rank"] for r in recs] == list(range(1, 21))
    assert not {r["tmdb_id"] for r in recs} & {f[0] for f in recent}
    new = [r for r in recs if r["year"] >= 2018]
    assert len(new) >= 14, [(r["title"], r["year"]) for r in recs]  # their share: every film typed is recent
    typed_titles = {title for _, title, _ in recent}
    picks = [r for r in new if r["reason"].startswith("like ")]
    assert picks and all(r["reason"].split(",")[0].removeprefix("like ") in typed_titles for r in picks), recs


def test_bad_requests_are_refused_with_their_cause(site) -> None:
    url, _, app = site
    post = lambda **kw: httpx.post(f"{url}/api/guest", timeout=60, **kw)  # noqa: E731
    cases = [
        (post(content=b"films: Heat", headers={"Content-Type": "application/json"}), 400, "not JSON"),
        (post(json={"films": []}), 422, "empty"),
        (post(json={"titles": ["Heat"]}), 422, '"films"'),
        (post(json={"films": ["Heat"] * 101}), 413, "over the limit of 100"),
        (post(json={"films": ["Heat"], "basis": "best"}), 422, "unknown basis"),
        (post(json={"films": [{"title": "Heat", "rating": 7}]}), 422, "scale"),
        (post(content=b'{"films": ["' + b"x" * 70_000 + b'"]}'), 413, "at most 65,536 bytes"),
        (post(json={"films": ["Heat"]}, headers={"Origin": "https://elsewhere.example"}), 403, "cross-origin"),
    ]
    for response, status, words in cases:
        assert (response.status_code, words in response.json()["error"]) == (status, True), response.text
    buckets = app.state.lbx.guest_buckets
    app.state.lbx.guest_buckets = TokenBuckets(2, 1 / 60)  # two at once, then one a minute
    try:
        statuses = [post(json={"films": []}) for _ in range(3)]
    finally:
        app.state.lbx.guest_buckets = buckets
    assert [s.status_code for s in statuses] == [422, 422, 429]
    assert "too many guest lists" in statuses[2].json()["error"] and int(statuses[2].headers["Retry-After"]) > 0


CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def test_the_guest_form_in_a_real_browser(site) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: run `make test` (it installs Debian's chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    url, db, _ = site
    films = loved_films(db)
    lines = [f"{films[0][1]} ({films[0][2]}) 5", *(f[1] for f in films[1:]), UNKNOWN]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.get_by_label("Films, one a line").fill("\n".join(lines))
            page.get_by_role("button", name="Recommend from these films").click()
            page.wait_for_selector("#guest-list > li", timeout=60_000)
            cards = page.locator("#guest-list > li").all_inner_texts()
            matches = page.locator("#guest-matches > li").all_inner_texts()
            reasons = page.locator("#guest-list .reason").count()
            assert not errors, errors
        finally:
            browser.close()
    assert len(cards) >= 20 and reasons == len(cards)
    assert not [c for c in cards if any(f"{f[1]} ({f[2]})" in c for f in films)]
    assert len(matches) == 6 and f"→ {films[0][1]} ({films[0][2]})" in matches[0]
    assert "not found" in matches[5]
