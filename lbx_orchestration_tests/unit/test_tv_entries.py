"""TV entries among a member's films (issue 25 item 6): told apart by TMDb TV, counted apart,
never a film."""

import json
from pathlib import Path

import polars as pl
import pytest

from lbx_orchestration.core.catalog import (
    RESOLUTION_SCHEMA,
    RESOLVER_VERSION,
    match_summary,
    resolve_films,
    resolved_share,
    reusable,
    tv_entries,
    tv_summary,
    unmatched,
)
from lbx_orchestration.core.tmdb.resolve import rank_candidates
from lbx_orchestration.core.tmdb.tv import (
    TV_EPISODE_SEARCH,
    TV_SEARCH,
    match_episode,
    match_show,
    series_title,
    wants_tv,
)

WRITTEN = Path(__file__).parents[1] / "fixtures" / "tmdb" / "written"


def shows(name: str) -> list[dict]:
    return json.loads((WRITTEN / f"search-tv__{name}.json").read_text(encoding="utf-8"))["results"]


def films_frame(rows: list[tuple], **extra: list) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema={"film_key": pl.Utf8, "film_title": pl.Utf8, "film_year": pl.Int32, "tmdb_id": pl.Int64},
        orient="row",
    )
    return frame.with_columns(**{k: pl.Series(v) for k, v in extra.items()})


class FakeTmdb:
    """A live-like source: fixed film and TV search answers, every search logged."""

    kind = "fake"

    def __init__(self, movies: dict[str, list[dict]], tv: dict[tuple[str, int | None], list[dict]]) -> None:
        self.movies, self.tv, self.asked = movies, tv, []

    def movie_details(self, tmdb_id: int) -> None:
        return None

    def search_movie(self, title: str, year: int | None = None) -> list[dict]:
        self.asked.append(("movie", title, year))
        return self.movies.get(title, [])

    def search_tv(self, title: str, year: int | None = None) -> list[dict]:
        self.asked.append(("tv", title, year))
        return self.tv.get((title, year), [])


def film(tmdb_id: int, title: str, date: str) -> dict:
    return {"id": tmdb_id, "title": title, "original_title": title, "release_date": date, "popularity": 5.0}


def test_a_show_matches_by_its_name_and_first_air_year_within_one() -> None:
    assert match_show("Unbelievable", 2019, shows("unbelievable-2019")).tmdb_tv_id == 91275
    off_by_one = match_show("Unbelievable", 2020, shows("unbelievable-2019"))
    assert (off_by_one.tmdb_tv_id, off_by_one.confidence, off_by_one.method) == (91275, 0.85, TV_SEARCH)
    assert match_show("Unbelievable", 2021, shows("unbelievable-2019")) is None  # two years off
    assert match_show("Unbelievable Stories", 2019, shows("unbelievable-2019")) is None
    assert match_show("Baby Reindeer", None, shows("baby-reindeer-2024")).first_air_year == 2024


def test_an_episode_matches_its_series_aired_no_later() -> None:
    assert series_title("Black Mirror: San Junipero") == "Black Mirror"
    assert series_title("Baby Reindeer") is None and series_title("Black Mirror:") is None
    got = match_episode("Black Mirror: San Junipero", 2016, shows("black-mirror"))
    assert (got.tmdb_tv_id, got.name, got.first_air_year, got.method) == (
        42009,
        "Black Mirror",
        2011,
        TV_EPISODE_SEARCH,
    )
    assert match_episode("Black Mirror: San Junipero", 2010, shows("black-mirror")) is None  # before the series
    assert match_episode("White Mirror: San Junipero", 2016, shows("black-mirror")) is None


def test_only_a_film_not_matched_by_its_title_leaves_room_for_tv() -> None:
    exact = rank_candidates("Heat", 1995, [film(949, "Heat", "1995-12-15")])
    fuzzy = rank_candidates("Baby Reindeer", 2024, [film(7, "Baby Reindeers", "2024-01-01")])
    nothing = rank_candidates("Baby Reindeer", 2024, [])
    assert fuzzy.tmdb_id == 7 and fuzzy.method == "search_fuzzy_title"
    assert not wants_tv(exact) and wants_tv(fuzzy) and wants_tv(nothing)


def tv_source() -> FakeTmdb:
    return FakeTmdb(
        movies={"Heat": [film(949, "Heat", "1995-12-15")], "Baby Reindeer": [film(7, "Baby Reindeers", "2024-01-01")]},
        tv={
            ("Baby Reindeer", 2024): shows("baby-reindeer-2024"),
            ("Unbelievable", 2019): shows("unbelievable-2019"),
            ("Black Mirror", None): shows("black-mirror"),
            ("Heat", 1995): [{"id": 5, "name": "Heat", "first_air_date": "1995-01-01"}],  # never asked
        },
    )


def test_tv_entries_resolve_as_tv_and_films_stay_films() -> None:
    source = tv_source()
    films = films_frame(
        [
            ("lb:heat", "Heat", 1995, None),
            ("lb:br", "Baby Reindeer", 2024, None),  # the film search's answer is only fuzzy
            ("lb:un", "Unbelievable", 2019, None),  # no film at all
            ("lb:bm", "Black Mirror: San Junipero", 2016, None),  # an episode
            ("lb:zz", "Nowhere Known", 2010, None),
        ]
    )
    res = resolve_films(films, source)
    by_key = {r["film_key"]: r for r in res.iter_rows(named=True)}
    assert (by_key["lb:heat"]["tmdb_id"], by_key["lb:heat"]["media_type"]) == (949, "movie")
    assert ("tv", "Heat", 1995) not in source.asked  # an exact film title is never asked about as TV
    for key, tv_id, method in [
        ("lb:br", 241554, TV_SEARCH),
        ("lb:un", 91275, TV_SEARCH),
        ("lb:bm", 42009, TV_EPISODE_SEARCH),
    ]:
        row = by_key[key]
        assert (row["media_type"], row["tmdb_tv_id"], row["tmdb_id"], row["method"]) == ("tv", tv_id, None, method)
        assert f"#tv/{tv_id}" in row["reason"]
    assert by_key["lb:br"]["candidate_id"] == 7  # the fuzzy film is kept for the record, not used
    assert by_key["lb:zz"]["tmdb_id"] is None and by_key["lb:zz"]["media_type"] is None
    assert res.schema == pl.Schema(RESOLUTION_SCHEMA)

    assert set(tv_entries(res)["film_key"]) == {"lb:br", "lb:un", "lb:bm"}
    assert unmatched(res)["film_key"].to_list() == ["lb:zz"]  # TV is not an unmatched film
    assert resolved_share(res) == 0.5  # Heat of Heat and the unknown film
    obs = pl.DataFrame(
        {
            "kind": ["rating", "rating", "rating", "watched", "watched", "watched"],
            "film_key": ["lb:heat", "lb:br", "lb:zz", "lb:heat", "lb:un", "lb:bm"],
            "tmdb_id": [None] * 6,
        },
        schema_overrides={"tmdb_id": pl.Int64},
    )
    assert match_summary(obs, res) == {"rating": (1, 2), "watched": (1, 1)}
    assert tv_summary(obs, res) == {"rating": 1, "watched": 2}


def test_a_kept_tv_resolution_is_not_searched_again() -> None:
    source = tv_source()
    films = films_frame([("lb:un", "Unbelievable", 2019, None)])
    first = resolve_films(films, source)
    assert reusable(first).height == 1
    again = FakeTmdb({}, {})
    assert resolve_films(films, again, known=first).to_dicts() == first.to_dicts() and again.asked == []


def test_a_source_that_knows_an_entry_is_tv_needs_no_search() -> None:
    films = films_frame(
        [("lb:un", "Unbelievable", 2019, None), ("lb:x", "Some Show", 2020, None)],
        tmdb_type=["tv", "tv"],
        tmdb_tv_id=[91275, None],
    )
    source = FakeTmdb({}, {})
    res = resolve_films(films, source)
    assert source.asked == []
    assert res.select("media_type", "tmdb_tv_id", "tmdb_id").rows() == [("tv", 91275, None), ("tv", None, None)]


def test_the_snapshot_has_no_tv_search_so_an_unknown_title_stays_unmatched() -> None:
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    assert not hasattr(TmdbSnapshot, "search_tv")
    res = resolve_films(films_frame([("lb:br", "Baby Reindeer", 2024, None)]), TmdbSnapshot())
    row = res.row(0, named=True)
    assert row["tmdb_id"] is None and row["media_type"] is None and unmatched(res).height == 1


@pytest.mark.parametrize("columns", [["film_key", "tmdb_id"], ["film_key", "tmdb_id", "media_type"]])
def test_summaries_read_resolutions_without_the_tv_columns(columns: list[str]) -> None:
    res = pl.DataFrame({"film_key": ["lb:a"], "tmdb_id": [1], "media_type": ["movie"]}).select(columns)
    obs = pl.DataFrame(
        {"kind": ["rating"], "film_key": ["lb:a"], "tmdb_id": [None]}, schema_overrides={"tmdb_id": pl.Int64}
    )
    assert match_summary(obs, res) == {"rating": (1, 1)} and tv_summary(obs, res) == {}


def test_a_resolution_table_of_an_older_lbx_gains_the_tv_columns_and_keeps_its_rows() -> None:
    import duckdb

    from lbx_orchestration.core.catalog import upgrade_resolution_table
    from lbx_orchestration.core.warehouse import read_frame

    con = duckdb.connect()
    con.execute("create schema metadata")
    con.execute("create table metadata.old_resolution (film_key varchar, tmdb_id bigint, resolver varchar)")
    con.execute("insert into metadata.old_resolution values ('lb:a', 862, '2')")
    upgrade_resolution_table(con, "metadata.old_resolution")
    row = con.execute("select film_key, tmdb_id, media_type, tmdb_tv_id from metadata.old_resolution").fetchall()
    assert row == [("lb:a", 862, None, None)]
    known = read_frame(con, "select * from metadata.old_resolution")
    assert tv_entries(known).height == 0
    # resolver 2 could match a TV title to a film: its rows are redone, the current version's kept
    assert reusable(known).height == 0
    current = known.with_columns(pl.lit(RESOLVER_VERSION).alias("resolver"))
    assert reusable(current)["tmdb_id"].to_list() == [862]


def test_a_tv_search_tmdb_cannot_answer_leaves_the_entry_a_film_and_a_refused_key_stops() -> None:
    from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError
    from lbx_orchestration.core.tmdb.tv import resolve_tv

    class Broken:
        kind = "live"

        def __init__(self, error: Exception) -> None:
            self.error = error

        def search_tv(self, title: str, year: int | None = None) -> list:
            raise self.error

    assert resolve_tv(Broken(TmdbError("TMDb /search/tv answered HTTP 404")), "Baby Reindeer", 2024) is None
    with pytest.raises(TmdbAuthError):
        resolve_tv(Broken(TmdbAuthError("401")), "Baby Reindeer", 2024)
