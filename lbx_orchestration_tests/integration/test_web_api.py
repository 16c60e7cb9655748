"""The members' API (FastAPI TestClient) on a copy of the session warehouse."""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pytest
from fastapi.testclient import TestClient

from lbx_orchestration.core.letterboxd.lists import LIST_SCHEMA
from lbx_orchestration.core.recsys.serving.content_serving import known_films
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.tables import EXPORT_LISTS
from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration.web.ratelimit import TokenBuckets
from lbx_orchestration_tests.support.web import (
    SAMPLE_EXPORTS,
    Writer,
    copy_warehouse,
    member_films,
    query,
    zip_folder,
)

MEMBER = "patrickmjones"


def settings(db: Path, state: Path, **kw) -> WebSettings:
    return WebSettings(db=db, state_dir=state, background_refresh=False, settle_seconds=0, warm_imports=False, **kw)


@pytest.fixture(scope="module")
def web_db(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_warehouse(materialized_warehouse.duckdb_path, tmp_path_factory.mktemp("web-db"))


@pytest.fixture(scope="module")
def client(web_db: Path, tmp_path_factory: pytest.TempPathFactory):
    app = create_app(settings(web_db, tmp_path_factory.mktemp("web-state"), write_wait_seconds=1))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def fresh_buckets(client: TestClient) -> None:
    client.app.state.lbx.buckets = TokenBuckets(3, 2 / 60)


def warehouse_list(db: Path, user: str) -> list[tuple]:
    return query(
        db,
        "select rank, tmdb_id, title, year, reason, genres, decade from serving.user_recommendations "
        "where username = ? order by rank",
        [user],
    )


def test_recommendations_match_the_warehouse_and_ignore_case(client: TestClient, web_db: Path) -> None:
    expected = warehouse_list(web_db, MEMBER)
    r = client.get("/api/users/PatrickMJones/recommendations", params={"limit": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == MEMBER and body["source"] == "letterboxd" and body["count"] == 10
    got = [(x["rank"], x["tmdb_id"], x["title"], x["year"], x["reason"]) for x in body["recommendations"]]
    assert got == [row[:5] for row in expected[:10]]
    first = body["recommendations"][0]
    assert first["letterboxd_url"] == f"https://letterboxd.com/tmdb/{first['tmdb_id']}/"
    assert first["poster_url"] is None and body["tmdb_online"] is False  # offline: the page shows a text card
    assert any("provider filtering needs live TMDb" in n for n in body["notes"])


def new_for_you(db: Path, user: str) -> list[int]:
    return [r[0] for r in query(db, "select tmdb_id from serving.new_for_you where username = ? order by rank", [user])]


def test_new_films_match_the_warehouse_and_open_like_any_film(client: TestClient, web_db: Path) -> None:
    expected = new_for_you(web_db, MEMBER)
    assert expected, "the session warehouse has new films for every member"
    body = client.get("/api/users/PATRICKMJONES/new").json()
    assert body["username"] == MEMBER and body["count"] == len(expected)
    assert [f["tmdb_id"] for f in body["films"]] == expected
    assert all(f["reason"] and f["release_date"] for f in body["films"])
    assert not {f["tmdb_id"] for f in body["films"]} & member_films(web_db, MEMBER, watchlist=False)
    # a catalogue film nobody logged is still a film of the page: details and "more like this"
    first = body["films"][0]["tmdb_id"]
    assert client.get(f"/api/films/{first}").status_code == 200
    assert client.get(f"/api/films/{first}/similar", params={"limit": 3}).status_code == 200
    assert client.get("/api/users/nobody-here/new").status_code == 404


def test_filters_rank_every_unseen_film_and_give_the_count_asked(client: TestClient, web_db: Path) -> None:
    rows = warehouse_list(web_db, MEMBER)
    genre = rows[0][5][0]
    seen = member_films(web_db, MEMBER, watchlist=False)
    watch = member_films(web_db, MEMBER, watchlist=True)
    # the 2020s may hold fewer than 50 films lbx would propose to this member: its own test below
    decade = Counter(r[6] for r in rows if r[6] != "2020s").most_common(1)[0][0]
    cases = {
        (("genre", genre.upper()),): lambda x: genre in x["genres"],
        (("decade", decade),): lambda x: x["decade"] == decade,
        (("min_year", 1990), ("max_year", 1999)): lambda x: 1990 <= x["year"] <= 1999,
    }
    for params, passes in cases.items():
        body = client.get(f"/api/users/{MEMBER}/recommendations", params={**dict(params), "limit": 50}).json()
        got = body["recommendations"]
        assert body["count"] == 50 and all(passes(x) for x in got), params  # more than the stored top 50 holds
        assert not {x["tmdb_id"] for x in got} & (seen | watch), params
        assert [x["rank"] for x in got] == list(range(1, 51)) and all(x["reason"] for x in got), params


def test_a_recent_decade_is_filled_with_the_new_films_nobody_has_rated_yet(client: TestClient, web_db: Path) -> None:
    """The community has rated few 2020s films (23 of them for this member once): the content
    model's new films fill the list, up to every unseen one lbx would propose at all."""
    seen = member_films(web_db, MEMBER, watchlist=False) | member_films(web_db, MEMBER, watchlist=True)
    policy = ServingPolicy()
    with duckdb.connect(str(web_db), read_only=True) as con:
        films = known_films(con)
    proposable = set(
        films.filter(
            pl.col("year").is_between(2020, 2029),
            pl.col("vote_count") >= policy.new_film_min_votes,
            pl.col("vote_average") >= policy.new_film_min_rating,
            ~pl.col("tmdb_id").is_in(list(seen)),
        )["tmdb_id"].to_list()
    )
    body = client.get(f"/api/users/{MEMBER}/recommendations", params={"decade": "2020s", "limit": 50}).json()
    got = {x["tmdb_id"] for x in body["recommendations"]}
    # the collaborative model's own 2020s films count too, whatever their TMDb votes
    assert body["count"] >= min(50, len(proposable)) >= 40, (body["count"], len(proposable))
    assert all(x["decade"] == "2020s" and x["reason"] for x in body["recommendations"])
    assert not got & seen and len(got) == body["count"]
    assert body["count"] == 50 or proposable <= got  # short of 50: every film it could propose


def test_exclude_watchlist_and_list_filters(client: TestClient, web_db: Path) -> None:
    watch = member_films(web_db, "davidblue", watchlist=True)
    everything = client.get("/api/users/davidblue/recommendations", params={"limit": 50}).json()
    kept = client.get("/api/users/davidblue/recommendations", params={"limit": 50, "exclude_watchlist": True}).json()
    assert {x["tmdb_id"] for x in kept["recommendations"]} == {
        x["tmdb_id"] for x in everything["recommendations"]
    } - watch

    lists = client.get(f"/api/users/{MEMBER}/lists").json()["lists"]
    assert [x["slug"] for x in lists] == ["official-top-250-narrative-feature-films"] and lists[0]["films"] == 250
    body = client.get(
        f"/api/users/{MEMBER}/recommendations",
        params={"list": "Official Top 250 Narrative Feature Films by Women Directors", "limit": 50},
    ).json()
    assert body["filters"]["list"] == "official-top-250-narrative-feature-films"
    text = (SAMPLE_EXPORTS / "patrickmjones_2022-08/lists/official-top-250-narrative-feature-films.csv").read_text()
    on_list = {(row[1], int(row[2])) for row in csv.reader(text.splitlines()[5:]) if row}
    assert {(x["title"], x["year"]) for x in body["recommendations"]} <= on_list


def test_list_filter_keeps_the_lists_films_in_rank_order(client: TestClient, web_db: Path) -> None:
    rows = warehouse_list(web_db, "davidblue")
    picked = [rows[i] for i in (1, 4, 9)]
    films = [
        {
            "list_slug": "to-try",
            "list_name": "To try",
            "position": n,
            "film_name": r[2],
            "film_year": r[3],
            "film_key": None,
        }
        for n, r in enumerate(picked, start=1)
    ]
    films.append(
        {
            "list_slug": "to-try",
            "list_name": "To try",
            "position": 9,
            "film_name": "No Such Film",
            "film_year": 1901,
            "film_key": None,
        }
    )
    state = client.app.state.lbx
    stored = pl.DataFrame(films, schema=LIST_SCHEMA).with_columns(pl.lit("davidblue").alias("username"))
    with duckdb.connect(str(web_db)) as con:  # where an import writes its lists
        con.register("new_list", stored.to_arrow())
        con.execute(f"insert into {EXPORT_LISTS} by name select * from new_list")
    try:
        assert state.manager.refresh(force=True)
        lists = client.get("/api/users/davidblue/lists").json()["lists"]
        assert {"slug": "to-try", "name": "To try", "films": 4, "films_known": 3} in lists
        body = client.get("/api/users/DAVIDBLUE/recommendations", params={"list": "TO-TRY", "limit": 50}).json()
        assert {x["tmdb_id"] for x in body["recommendations"]} == {r[1] for r in picked}  # ranked on request
    finally:
        with duckdb.connect(str(web_db)) as con:
            con.execute(f"delete from {EXPORT_LISTS} where list_slug = 'to-try'")
        state.manager.refresh(force=True)


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/api/users/nobody_here/recommendations", 404, "unknown user 'nobody_here'"),
        (f"/api/users/{MEMBER}/recommendations?limit=0", 422, "limit"),
        (f"/api/users/{MEMBER}/recommendations?limit=51", 422, "less than or equal to 50"),
        (
            f"/api/users/{MEMBER}/recommendations?min_year=2000&max_year=1990",
            422,
            "min_year 2000 is after max_year 1990",
        ),
        (f"/api/users/{MEMBER}/recommendations?decade=1870s", 422, "unknown decade '1870s'"),
        (f"/api/users/{MEMBER}/recommendations?genre=Cowpunk", 422, "unknown genre 'Cowpunk'"),
        (f"/api/users/{MEMBER}/recommendations?list=nope", 404, "has no list 'nope'"),
        (f"/api/users/{MEMBER}/recommendations?provider=Netflix", 422, "provider filtering needs live TMDb"),
        (f"/api/users/{MEMBER}/recommendations?min_year=abc", 422, "min_year"),
        ("/api/films/search?q=", 422, "q"),
        ("/api/films/999999999/similar", 404, "no film with TMDb id 999999999"),
    ],
)
def test_bad_input_gets_a_clear_json_error(client: TestClient, path: str, status: int, needle: str) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert needle in r.json()["error"]


def test_search_fuses_bm25_and_the_title_trigrams(client: TestClient) -> None:
    body = client.get("/api/films/search", params={"q": "kubrick", "limit": 10}).json()
    titles = [x["title"] for x in body["results"]]
    assert "The Shining" in titles  # found by its director
    assert all(x["lexical_rank"] or x["title_rank"] for x in body["results"])
    assert "trigrams" in body["retrievers"]["titles"]
    scores = [x["score"] for x in body["results"]]
    assert scores == sorted(scores, reverse=True)
    star = client.get("/api/films/search", params={"q": "star wars"}).json()["results"]
    assert "Star Wars" in star[0]["title"]
    assert client.get("/api/films/search", params={"q": "qqzzxxv"}).json()["count"] == 0


def test_similar_films_come_from_item_vectors(client: TestClient) -> None:
    body = client.get("/api/films/11/similar", params={"limit": 5}).json()
    ids = [x["tmdb_id"] for x in body["results"]]
    assert body["film"]["title"] == "Star Wars" and 11 not in ids
    assert {1891, 1892} & set(ids)  # The Empire Strikes Back, Return of the Jedi
    sims = [x["similarity"] for x in body["results"]]
    assert sims == sorted(sims, reverse=True)
    film = client.get("/api/films/11").json()
    assert film["title"] == "Star Wars" and "George Lucas" in film["directors"] and film["cast"]


def test_models_show_the_served_model_its_card_and_history(client: TestClient, web_db: Path) -> None:
    served = query(
        web_db,
        "select model, version, ndcg_at_10 from serving.model_metrics where served and accepted "
        "order by evaluated_at desc limit 1",
    )[0]
    total = query(web_db, "select count(*) from serving.model_metrics")[0][0]
    body = client.get("/api/models").json()
    assert (body["served"]["model"], body["served"]["version"]) == served[:2]
    assert body["served"]["ndcg_at_10"] == pytest.approx(served[2])
    assert body["card"]["version"] == served[1] and "ndcg@10" in body["card"]["metrics"]
    assert len(body["history"]) == total


def test_csv_download_and_docs_and_page(client: TestClient) -> None:
    r = client.get(f"/api/users/{MEMBER}/recommendations.csv", params={"limit": 5, "decade": "1990s"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0] == "rank,tmdb_id,title,year,genres,reason,letterboxd_url" and 1 < len(lines) <= 6
    assert all(",199" in line for line in lines[1:])
    assert client.get("/docs").status_code == 404  # Swagger UI would load its scripts from a CDN
    assert "/api/imports" in client.get("/openapi.json").json()["paths"]
    page = client.get("/").text
    assert 'src="http' not in page and 'href="http' not in page.split("<footer>")[0]  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_upload_folds_the_member_in(client: TestClient, web_db: Path, tmp_path: Path, fresh_buckets) -> None:
    export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "export.zip")
    started = time.perf_counter()
    r = client.post(
        "/api/imports",
        files={"file": ("export.zip", export.read_bytes(), "application/zip")},
        data={"username": "Web_Tester"},
    )
    assert r.status_code == 200, r.text
    assert time.perf_counter() - started < 30
    body = r.json()
    assert body["username"] == "web_tester" and body["status"] == "imported"  # one spelling per member
    assert body["member_key"].startswith("lbxk_") and "lbx_key_web_tester" in r.headers["set-cookie"]
    assert len(body["recommendations"]) == 50 and body["resolved"] > 0
    seen = member_films(web_db, "web_tester", watchlist=False)
    assert seen and not seen & {x["tmdb_id"] for x in body["recommendations"]}
    stored = warehouse_list(web_db, "web_tester")
    assert [row[1] for row in stored] == [x["tmdb_id"] for x in body["recommendations"]]
    # their new films were written and are served at once too
    new = new_for_you(web_db, "web_tester")
    assert new and [f["tmdb_id"] for f in body["new_films"]] == new
    assert [f["tmdb_id"] for f in client.get("/api/users/web_tester/new").json()["films"]] == new
    # served at once, under any case
    listed = client.get("/api/users/web_tester/recommendations", params={"limit": 3}).json()
    assert [x["tmdb_id"] for x in listed["recommendations"]] == [row[1] for row in stored[:3]]
    # and still after the next snapshot, which keeps the search index (no film changed)
    index = client.app.state.lbx.manager.current.search_index
    assert client.app.state.lbx.manager.refresh(force=True)
    assert client.app.state.lbx.manager.current.search_index is index
    assert client.get("/api/users/WEB_TESTER/recommendations").status_code == 200


def _counts(db: Path) -> tuple:
    return query(
        db,
        "select (select count(*) from raw.letterboxd_export_entries), "
        "(select count(*) from ingest.reviews), (select count(*) from serving.user_recommendations)",
    )[0]


@pytest.mark.parametrize("kind", ["climbing", "not_a_zip", "bad_username", "empty"])
def test_hostile_or_broken_uploads_change_nothing(
    client: TestClient, web_db: Path, tmp_path: Path, fresh_buckets, kind: str
) -> None:
    before = _counts(web_db)
    data = {}
    if kind == "climbing":
        payload = zip_folder(
            SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "x.zip", extra={"../../evil.csv": b"x"}
        ).read_bytes()
        needle = "points outside the archive"
    elif kind == "not_a_zip":
        payload, needle = b"this is not a zip" * 10, "not a zip"
    elif kind == "bad_username":
        payload = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "x.zip").read_bytes()
        data, needle = {"username": "../../etc"}, "username"
    else:
        payload, needle = b"", "empty"
    r = client.post("/api/imports", files={"file": ("x.zip", payload, "application/zip")}, data=data)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"].lower()
    assert _counts(web_db) == before


def test_uploads_over_the_limit_and_too_many_are_refused(client: TestClient, web_db: Path, fresh_buckets) -> None:
    state = client.app.state.lbx
    before = _counts(web_db)
    limit = state.settings.max_upload_bytes
    state.settings.max_upload_bytes = 10_000
    try:
        r = client.post("/api/imports", files={"file": ("big.zip", b"0" * 200_000, "application/zip")})
    finally:
        state.settings.max_upload_bytes = limit
    assert r.status_code == 413 and "over the limit of 10,000 bytes" in r.json()["error"]
    statuses = [
        client.post("/api/imports", files={"file": ("x.zip", b"nope", "application/zip")}).status_code for _ in range(3)
    ]
    assert statuses == [422, 422, 422]  # refused by its size, the big one took no token
    r = client.post("/api/imports", files={"file": ("x.zip", b"nope", "application/zip")})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "too many imports" in r.json()["error"]
    assert _counts(web_db) == before


def test_providers_and_posters_when_tmdb_data_is_live(
    client: TestClient, web_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [row[1] for row in warehouse_list(web_db, MEMBER)[:10:2]]
    con = duckdb.connect(str(web_db))
    con.execute(
        f"update metadata.tmdb_movies set providers = ['Netflix'], poster_path = '/p' || tmdb_id || '.jpg' "
        f"where tmdb_id in ({','.join(map(str, ids))})"
    )
    con.close()
    state = client.app.state.lbx
    try:
        assert state.manager.refresh(force=True)
        body = client.get(f"/api/users/{MEMBER}/recommendations", params={"provider": "netflix", "limit": 50}).json()
        # ranked on request by the served model: films it knows (the stored list's blended new films are not)
        assert body["count"] >= 3 and {x["tmdb_id"] for x in body["recommendations"]} <= set(ids)
        assert body["filters"]["provider"] == "Netflix" and body["filters"]["country"] == "US"
        assert body["recommendations"][0]["poster_url"] is None  # no key: no TMDb images
        monkeypatch.setenv("TMDB_API_KEY", "test-key-not-used")
        body = client.get(f"/api/users/{MEMBER}/recommendations", params={"provider": "Netflix"}).json()
        first = body["recommendations"][0]["tmdb_id"]
        assert body["recommendations"][0]["poster_url"] == f"https://image.tmdb.org/t/p/w342/p{first}.jpg"
        r = client.get(f"/api/users/{MEMBER}/recommendations", params={"provider": "Netflix", "country": "GB"})
        assert r.status_code == 422 and "US only" in r.json()["error"]
        r = client.get(f"/api/users/{MEMBER}/recommendations", params={"provider": "Blockbuster"})
        assert r.status_code == 422 and r.json()["known"] == ["Netflix"]
    finally:
        con = duckdb.connect(str(web_db))
        con.execute("update metadata.tmdb_movies set providers = null, poster_path = null")
        con.close()
        state.manager.refresh(force=True)


def test_reads_keep_answering_while_another_process_writes(materialized_warehouse, tmp_path: Path) -> None:
    db = copy_warehouse(materialized_warehouse.duckdb_path, tmp_path / "wh")
    app = create_app(settings(db, tmp_path / "state", write_wait_seconds=1))
    change = (
        f"update serving.user_recommendations set reason = 'changed by the writer' "
        f"where username = '{MEMBER}' and rank = 1"
    )
    with TestClient(app) as c:
        before = c.get(f"/api/users/{MEMBER}/recommendations").json()
        manager = app.state.lbx.manager
        with Writer(db, change) as writer:
            with pytest.raises(duckdb.IOException):  # the lock is real: another reader cannot open the file
                duckdb.connect(str(db), read_only=True)
            for _ in range(20):
                r = c.get(f"/api/users/{MEMBER}/recommendations")
                assert r.status_code == 200 and r.json()["recommendations"] == before["recommendations"]
            assert manager.refresh(force=True) is False
            status = c.get("/api/health").json()["snapshot"]
            assert status["warehouse_busy_since"] and status["state"] == "busy"
            assert "being written" in manager.last_error and str(db) not in str(status)  # the log has it
            # an import waits a bounded time for the writer, then says so and changes nothing
            export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "e.zip")
            r = c.post(
                "/api/imports",
                files={"file": ("e.zip", export.read_bytes(), "application/zip")},
                data={"username": "locked_out"},
            )
            assert r.status_code == 503 and "being written" in r.json()["error"]
            assert "pid" not in r.text and str(db) not in r.text and r.headers["retry-after"] == "60"
            # a server (re)started during the write serves the last snapshot
            with TestClient(create_app(settings(db, tmp_path / "state"))) as second:
                assert (
                    second.get(f"/api/users/{MEMBER}/recommendations").json()["recommendations"]
                    == before["recommendations"]
                )
            writer.release()
        assert manager.refresh() is True
        after = c.get(f"/api/users/{MEMBER}/recommendations").json()
        assert after["recommendations"][0]["reason"] == "changed by the writer"
        assert c.get("/api/users/locked_out/recommendations").status_code == 404


def test_lbx_serve_binds_loopback_and_serves_page_and_api(web_db: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import httpx

    from lbx_orchestration_tests.support.web import free_port, start_lbx_serve, wait_until_up

    missing = subprocess.run(
        [sys.executable, "-m", "lbx_orchestration.cli", "serve", "--db", str(tmp_path / "no.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no warehouse at" in missing.stderr
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    server = start_lbx_serve(
        web_db, port, tmp_path / "state", env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_until_up(server, f"http://127.0.0.1:{port}")
        assert "<title>lbx" in httpx.get(f"http://127.0.0.1:{port}/").text
        body = httpx.get(f"http://127.0.0.1:{port}/api/users/{MEMBER}/recommendations", params={"limit": 3}).json()
        assert [x["tmdb_id"] for x in body["recommendations"]] == [r[1] for r in warehouse_list(web_db, MEMBER)[:3]]
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}/" in out  # loopback by default


def test_more_like_this_and_search_know_what_the_member_has_seen(client: TestClient, web_db: Path) -> None:
    seen = member_films(web_db, MEMBER, watchlist=False) - {None}
    films = client.app.state.lbx.manager.current.film_index
    anchor = next(i for i in sorted(seen) if i in films)
    plain = client.get(f"/api/films/{anchor}/similar", params={"limit": 30}).json()["results"]
    assert {f["tmdb_id"] for f in plain} & seen  # his films are near each other ...
    mine = client.get(f"/api/films/{anchor}/similar", params={"limit": 30, "username": "PatrickMJones"}).json()
    assert mine["count"] == 30 and not {f["tmdb_id"] for f in mine["results"]} & seen  # ... and left out for him
    title = client.get(f"/api/films/{anchor}").json()["title"]
    hits = client.get("/api/films/search", params={"q": title, "username": MEMBER}).json()["results"]
    assert any(h["tmdb_id"] == anchor and h["seen"] is True for h in hits)
    assert all(h["seen"] for h in hits if h["tmdb_id"] in seen)  # (a title rule may mark more)
    assert "seen" not in client.get("/api/films/search", params={"q": title}).json()["results"][0]


def test_a_fresh_upload_is_served_with_its_seen_films_before_the_next_snapshot(
    client: TestClient, tmp_path: Path, fresh_buckets
) -> None:
    export = zip_folder(SAMPLE_EXPORTS / "extratone_2024-04", tmp_path / "e.zip")
    r = client.post(
        "/api/imports", files={"file": ("e.zip", export.read_bytes(), "application/zip")}, data={"username": "just_now"}
    )
    assert r.status_code == 200, r.text
    data = client.app.state.lbx.manager.current
    seen = data.seen_by("just_now")
    assert len(seen) > 300  # the overlay carries them, no snapshot needed
    anchor = next(i for i in sorted(seen) if i in data.film_index)
    title = data.films.row(data.film_index[anchor], named=True)["title"]
    hits = client.get("/api/films/search", params={"q": title, "username": "just_now", "limit": 50}).json()
    assert any(h["tmdb_id"] == anchor and h["seen"] is True for h in hits["results"])
