"""TV entries in an export, end to end over real HTTP (127.0.0.1): live TMDb's /search/tv tells
them apart, `lbx import` and `lbx unmatched` count them apart from films, and a show's TMDb id
is never taken for a film's.

The TV search bodies were written by us in TMDb's documented shape (see the fixtures' SOURCES.md);
the film search body is recorded.
"""

import json
from pathlib import Path

import duckdb
import httpx
import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.core.tables import RESOLUTION
from lbx_orchestration.core.tmdb.client import TmdbClient
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response
from lbx_orchestration_tests.support.warehouse import Warehouse
from lbx_orchestration_tests.unit.export_builders import PROFILE, write_folder

TMDB = Path(__file__).parents[1] / "fixtures" / "tmdb"
WRITTEN = TMDB / "written"
FILM_SEARCH = TMDB / "jdrouet-tmdb-api" / "search-movie.json"  # one film: "RRRrrrr!!!" (2004), 21778
JSON = "application/json;charset=utf-8"
USER = "tester_1"
# (title, year, rating): a film, two miniseries, an episode, and a title TMDb knows as neither
ENTRIES = [
    ("RRRrrrr!!!", 2004, 3.0),
    ("Baby Reindeer", 2024, 4.5),
    ("Unbelievable", 2019, 5.0),
    ("Black Mirror: San Junipero", 2016, 4.0),
    ("Nowhere Known", 2010, 2.0),
]


def tv_search(title: str, year: int | None) -> str:
    """The path and query TmdbClient.search_tv sends (with a read token: no api_key in it)."""
    params = {"query": title, "include_adult": "false", **({"first_air_date_year": year} if year else {})}
    return str(httpx.URL("/search/tv", params=params))


def body(path: Path, **replace: object) -> Response:
    data = json.loads(path.read_text(encoding="utf-8"))
    for result in data["results"]:
        result.update(replace)
    return Response(200, json.dumps(data), content_type=JSON)


def routes(baby_reindeer_id: int | None = None) -> dict[str, Response]:
    none = body(WRITTEN / "search-tv__no-results.json")
    baby = WRITTEN / "search-tv__baby-reindeer-2024.json"
    return {
        "/search/movie": Response(200, FILM_SEARCH, content_type=JSON),
        tv_search("Baby Reindeer", 2024): body(baby, **({"id": baby_reindeer_id} if baby_reindeer_id else {})),
        tv_search("Unbelievable", 2019): body(WRITTEN / "search-tv__unbelievable-2019.json"),
        tv_search("Black Mirror: San Junipero", 2016): none,
        tv_search("Black Mirror", None): body(WRITTEN / "search-tv__black-mirror.json"),
        tv_search("Nowhere Known", 2010): none,
        tv_search("Nowhere Known", None): none,
    }


def export(root: Path) -> Path:
    ratings = "Date,Name,Year,Letterboxd URI,Rating\n" + "".join(
        f"2024-05-{i + 1:02d},{t},{y},https://boxd.it/v{i},{r}\n" for i, (t, y, r) in enumerate(ENTRIES)
    )
    watched = "Date,Name,Year,Letterboxd URI\n" + "".join(
        f"2024-05-{i + 1:02d},{t},{y},https://boxd.it/v{i}\n" for i, (t, y, _) in enumerate(ENTRIES)
    )
    return write_folder(root, {"profile.csv": PROFILE, "ratings.csv": ratings, "watched.csv": watched})


def test_import_counts_tv_apart_and_unmatched_lists_it_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    db = tmp_path / "lbx.duckdb"
    with RecordedServer(routes()) as server:
        monkeypatch.setenv("TMDB_READ_TOKEN", "t0ken-for-the-loopback-server")
        monkeypatch.setenv("TMDB_BASE_URL", server.base_url)
        monkeypatch.setenv("LBX_DUCKDB_PATH", str(tmp_path / "tmdb-cache.duckdb"))
        assert main(["import", str(export(tmp_path / "export")), "--db", str(db)]) == 0
        asked = [raw for _, raw, _ in server.requests if raw.startswith("/search/tv")]
    out = capsys.readouterr().out
    assert "rated films matched to TMDb: 1 of 2 (50%)" in out  # the film and the unknown title
    assert "ratings.csv 1/2" in out and "watched.csv 1/2" in out
    assert "counted apart from films and never matched to one: 3 (ratings.csv 3, watched.csv 3)" in out
    assert tv_search("Baby Reindeer", 2024) in asked and not any("RRR" in a for a in asked)  # a film is no TV

    with duckdb.connect(str(db), read_only=True) as con:
        rows = {r["film_key"]: r for r in read_frame(con, f"select * from {RESOLUTION}").iter_rows(named=True)}
    assert (rows["lb:v0"]["tmdb_id"], rows["lb:v0"]["media_type"]) == (21778, "movie")
    got = {k: (rows[k]["media_type"], rows[k]["tmdb_tv_id"], rows[k]["tmdb_id"]) for k in ("lb:v1", "lb:v2", "lb:v3")}
    assert got == {"lb:v1": ("tv", 241554, None), "lb:v2": ("tv", 91275, None), "lb:v3": ("tv", 42009, None)}
    assert rows["lb:v4"]["tmdb_id"] is None and rows["lb:v4"]["media_type"] is None

    assert main(["unmatched", USER, "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    films_part, _, tv_part = listing.partition("TV entries (miniseries, episodes)")
    assert f"{USER}: 1 films unmatched" in films_part and "Nowhere Known" in films_part
    assert "may be TV series or episodes" in films_part
    assert "Baby Reindeer" not in films_part and "Unbelievable" not in films_part
    assert f"{USER}: 3 TV entries" in listing
    for shown in ("Baby Reindeer (2024) #tv/241554", "Unbelievable (2019) #tv/91275", "Black Mirror (2011) #tv/42009"):
        assert shown in tv_part


@pytest.mark.slow
def test_a_shows_id_is_never_a_film_in_lists_or_seen_films(warehouse_copy: Warehouse) -> None:
    """Baby Reindeer's TV id is made to equal Laputa's film id (10515), and the show is logged
    under Laputa's own title and year: the member's show must not mark Laputa seen, by id or by
    title, nor put 10515 among their films."""
    from lbx_orchestration.core.importer import import_export
    from lbx_orchestration.core.members import member_observations
    from lbx_orchestration.core.recsys.models.pipeline import load_trained
    from lbx_orchestration.core.recsys.serving.recommend import (
        fold_in_user,
        load_serving_inputs,
        read_seen_title_keys,
    )
    from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
    from lbx_orchestration.web.data import member_seen, read_member_seen

    laputa = 10515
    user_key = f"letterboxd:{USER}"
    with RecordedServer(routes(baby_reindeer_id=laputa)) as server:
        client = TmdbClient(read_token="t0ken", base_url=server.base_url, rate_limit=200.0)
        with duckdb.connect(str(warehouse_copy.duckdb_path)) as con:
            report = import_export(con, export(warehouse_copy.root / "tv_export"), tmdb_source=client)
            assert (report.films, report.resolved, report.tv) == (2, 1, 3)
            row = con.execute(
                f"select media_type, tmdb_tv_id, tmdb_id from {RESOLUTION} where film_key = 'lb:v1'"
            ).fetchall()
            assert row == [("tv", laputa, None)]
            title, year = con.execute(
                f"select title, year from metadata.tmdb_movies where tmdb_id = {laputa}"
            ).fetchone()
            con.execute(
                "update ingest.reviews set film_title = ?, film_year = ? where film_key = 'lb:v1'", [title, year]
            )
            assert read_seen_title_keys(con, user_key).height > 0  # the member's films still count
            path = con.execute(
                "select path from serving.model_metrics where served and accepted order by evaluated_at desc limit 1"
            ).fetchall()[0][0]
            trained = load_trained(Path(path))
            items = trained.interactions.item_ids
            assert laputa in set(items.tolist())
            policy = ServingPolicy(top_n=len(items), candidates=len(items), mmr_lambda=1.0, explain_top=1)
            inputs = load_serving_inputs(con, trained, policy)
            observations = member_observations(con, user_key)
            recs = fold_in_user(inputs, user_key, observations)
            seen = read_member_seen(con, user_key)
            films = read_frame(con, "select tmdb_id, title, original_title, year from metadata.tmdb_movies")
        client.close()
    assert laputa not in set(observations["tmdb_id"].to_list())  # the member's films: no show among them
    assert laputa in set(recs["tmdb_id"].to_list())  # not excluded as a seen film
    assert laputa not in member_seen(seen, films).get(USER, set())
    assert laputa not in set(seen["tmdb_id"].drop_nulls().to_list())
