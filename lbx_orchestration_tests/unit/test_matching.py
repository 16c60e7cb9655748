"""Film matching a member can trust (issue 12): title variants, refusals, overrides, seen titles."""

import datetime as dt

import polars as pl
import pytest

from lbx_orchestration.core.catalog import (
    RESOLUTION_SCHEMA,
    RESOLVER_VERSION,
    match_summary,
    override_row,
    resolve_films,
    reusable,
    unmatched,
)
from lbx_orchestration.core.seen import film_title_keys, seen_by_title, seen_recommendations, seen_title_keys
from lbx_orchestration.core.tmdb.normalize import match_key, normalize_title, partial_keys, title_from_slug
from lbx_orchestration.core.tmdb.resolve import rank_candidates, resolve_by_search
from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot


@pytest.fixture(scope="module")
def snapshot() -> TmdbSnapshot:
    return TmdbSnapshot()


def film(
    tmdb_id: int,
    title: str,
    date: str,
    popularity: float = 10.0,
    original: str | None = None,
    alternatives: list[str] | None = None,
) -> dict:
    out = {
        "id": tmdb_id,
        "title": title,
        "original_title": original or title,
        "release_date": date,
        "popularity": popularity,
    }
    if alternatives:
        out["alternative_titles"] = alternatives
    return out


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Three Colours: Red", "Three Colors: Red"),  # British / American spelling
        ("The Theatre Bizarre", "Theater Bizarre"),
        ("Sunset Boulevard", "Sunset Blvd."),  # abbreviations
        ("Miracle on 34th Street", "Miracle on 34th St."),
        ("Dr. Strangelove", "Doctor Strangelove"),
        ("The Intouchables", "Intouchables"),  # leading articles, several languages
        ("Les Misérables", "Miserables"),
        ("Das Boot", "Boot"),
        ("Il Postino", "Postino"),
        ("El Topo", "Topo"),
        ("L'Avventura", "Avventura, L'"),
        ("Rocky II", "Rocky 2"),  # roman / arabic numerals
        ("Star Wars: Episode I - The Phantom Menace", "Star Wars: Episode 1 - The Phantom Menace"),
        ("Rocky V", "Rocky 5"),
        ("Fast & Furious", "Fast and Furious"),  # & / and, punctuation, apostrophes
        ("Schindler's List", "Schindlers List"),
        ("Amélie", "AMELIE!"),
    ],
)
def test_spelling_variants_share_a_match_key(a: str, b: str) -> None:
    assert match_key(a) == match_key(b) != ""


@pytest.mark.parametrize(
    ("a", "b"),
    [("I, Robot", "Robot"), ("Alien", "Aliens"), ("Heat", "Heatwave"), ("V for Vendetta", "5 for Vendetta")],
)
def test_different_titles_keep_different_keys(a: str, b: str) -> None:
    assert match_key(a) != match_key(b)


def test_film_keys_keep_the_old_normalisation() -> None:
    # film keys already stored in warehouses are built with normalize_title: it must not move
    assert normalize_title("The Intouchables") == "the intouchables"
    assert normalize_title("Three Colours: Red") == "three colours red"


def test_partial_keys_and_slugs() -> None:
    assert partial_keys("Laputa: Castle in the Sky") == {"laputa", "castle in the sky"}
    assert partial_keys("Clue: The Movie") == {"clue"}  # a one-word subtitle is too common a name
    assert partial_keys("Three Colours: Red") == {"three colors"}
    assert partial_keys("Clue") == set()
    assert title_from_slug("https://letterboxd.com/film/dune-2021/") == ("dune", 2021)
    assert title_from_slug("castle-in-the-sky") == ("castle in the sky", None)


@pytest.mark.parametrize(
    ("title", "year", "tmdb_id"),
    [
        ("Three Colours: Red", 1994, 110),
        ("Sunset Boulevard", 1950, 599),
        ("Clue", 1985, 15196),  # "Clue: The Movie" in TMDb's title, "Clue" in MovieLens'
        ("The Intouchables", 2011, 77338),
        ("Castle in the Sky", 1986, 10515),  # "Laputa: Castle in the Sky", same year
        ("Dune", 2021, 438631),  # the 2018-2024 films are in the snapshot now
        ("Dune", 1984, 841),
        ("Little Women", 2019, 331482),
        ("Black Widow", 2021, 497698),
    ],
)
def test_the_snapshot_finds_the_right_film(snapshot: TmdbSnapshot, title: str, year: int, tmdb_id: int) -> None:
    got = resolve_by_search(snapshot, title, year)
    assert got.tmdb_id == tmdb_id, got
    assert not got.is_refused


def test_a_remake_decades_away_is_refused_with_its_candidate_and_reason(snapshot: TmdbSnapshot) -> None:
    got = resolve_by_search(snapshot, "Baby Doll", 1956)  # the snapshot only holds the 2020 and 2021 films
    assert got.tmdb_id is None and got.method == "refused"
    assert got.candidate_id in (760036, 942161) and got.candidate_year in (2020, 2021)
    assert got.runner_up in (760036, 942161) and got.runner_up != got.candidate_id
    assert got.reason is not None and "more than one year off" in got.reason
    assert 0 < got.confidence <= 0.1


def test_rank_refuses_far_years_partial_titles_off_by_a_year_and_unlike_titles() -> None:
    dune = [film(841, "Dune", "1984-12-14", 40.0)]
    got = rank_candidates("Dune", 2021, dune)
    assert (got.tmdb_id, got.method, got.candidate_id, got.candidate_year) == (None, "refused", 841, 1984)
    assert got.reason == "released 1984, 37 years from 2021: more than one year off"
    laputa = [film(10515, "Laputa: Castle in the Sky", "1986-08-02")]
    assert rank_candidates("Castle in the Sky", 1986, laputa).method == "search_partial_title"
    off = rank_candidates("Castle in the Sky", 1987, laputa)
    assert off.tmdb_id is None and off.candidate_id == 10515 and "same year" in off.reason
    unlike = rank_candidates("Heat", 1995, [film(2, "Heatwave", "1995-01-01")])
    assert unlike.tmdb_id is None and unlike.method == "refused" and "too different" in unlike.reason


def test_an_acceptable_candidate_beats_a_better_title_far_away() -> None:
    far = film(1, "Solaris", "2002-11-27", 90.0)
    near = film(2, "Solaris: The Film", "1972-03-20", 5.0)
    got = rank_candidates("Solaris", 1972, [far, near])
    assert (got.tmdb_id, got.method, got.runner_up) == (2, "search_partial_title", 1)


def test_alternative_titles_match_exactly() -> None:
    rock = film(12313, "Rock Crystal", "2004-11-11", original="Bergkristall", alternatives=["Мост"])
    got = rank_candidates("Мост", 2004, [rock])
    assert (got.tmdb_id, got.method, got.confidence) == (12313, "search_alternative_title", 1.0)


class LiveLike:
    """A live-kind source whose search finds a film under another name; its alternative titles
    hold the name the member used."""

    kind = "live"

    def __init__(self) -> None:
        self.looked_up: list[int] = []

    def movie_details(self, tmdb_id: int) -> None:
        return None

    def search_movie(self, title: str, year: int | None = None) -> list[dict]:
        return [
            film(12313, "Rock Crystal", "2004-11-11", original="Bergkristall"),
            film(99, "Rock", "1960-01-01", 50.0),
        ]

    def alternative_titles(self, tmdb_id: int) -> list[str]:
        self.looked_up.append(tmdb_id)
        return ["Мост"] if tmdb_id == 12313 else []


def test_live_search_looks_at_alternative_titles_of_near_candidates_only() -> None:
    source = LiveLike()
    got = resolve_by_search(source, "Мост", 2004)
    assert (got.tmdb_id, got.method) == (12313, "search_alternative_title")
    assert source.looked_up == [12313]  # the 1960 film is too far to be worth a request


def films_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"film_key": pl.Utf8, "film_title": pl.Utf8, "film_year": pl.Int32, "tmdb_id": pl.Int64},
        orient="row",
    )


class NoSearch:
    kind = "snapshot"

    def movie_details(self, tmdb_id: int) -> None:
        return None

    def search_movie(self, title: str, year: int | None = None) -> list[dict]:
        raise AssertionError(f"searched for {title!r}: an override or a kept resolution should have won")


def test_an_override_wins_over_search_and_over_an_earlier_resolution() -> None:
    films = films_frame([("lb:a", "Castle in the Sky", 1987, None), ("ml:1", "Toy Story", 1995, 862)])
    overrides = override_row("member", "castle in the sky!", 1987, 10515)
    res = resolve_films(films, NoSearch(), overrides=overrides)
    by_key = {r["film_key"]: r for r in res.iter_rows(named=True)}
    assert (by_key["lb:a"]["tmdb_id"], by_key["lb:a"]["method"]) == (10515, "override")
    assert (by_key["ml:1"]["tmdb_id"], by_key["ml:1"]["method"]) == (862, "source")
    # an earlier (wrong) resolution of that film is not reused once an override contradicts it
    known = res.with_columns(pl.lit(4444, pl.Int64).alias("tmdb_id"))
    assert reusable(known, overrides)["film_key"].to_list() == ["ml:1"]
    assert resolve_films(films, NoSearch(), known, overrides)["tmdb_id"].to_list() == [10515, 862]


def test_resolutions_of_an_older_resolver_are_redone(snapshot: TmdbSnapshot) -> None:
    films = films_frame([("lb:d", "Dune", 2021, None)])
    old = pl.DataFrame(
        [
            {
                "film_key": "lb:d",
                "film_title": "Dune",
                "film_year": 2021,
                "tmdb_id": 841,
                "method": "search_exact_title",
                "confidence": 0.1,
            }
        ]
    )  # an old table's columns
    assert reusable(old).height == 0
    res = resolve_films(films, snapshot, old)
    assert res.row(0, named=True)["tmdb_id"] == 438631
    assert res.row(0, named=True)["resolver"] == RESOLVER_VERSION
    assert res.schema == pl.Schema(RESOLUTION_SCHEMA)


def test_refused_films_are_unmatched_with_candidates(snapshot: TmdbSnapshot) -> None:
    films = films_frame([("lb:b", "Baby Doll", 1956, None), ("lb:r", "Three Colours: Red", 1994, None)])
    res = resolve_films(films, snapshot)
    rows = unmatched(res).to_dicts()
    assert [r["film_key"] for r in rows] == ["lb:b"]
    assert rows[0]["method"] == "refused" and rows[0]["candidate_id"] is not None and rows[0]["reason"]


def test_match_summary_counts_each_kind_once_per_film() -> None:
    obs = pl.DataFrame(
        {
            "kind": ["rating", "rating", "watched", "watched", "watched", "diary"],
            "film_key": ["lb:a", "lb:b", "lb:a", "lb:b", "lb:c", "title:x|2000"],
            "tmdb_id": [None, None, None, None, 7, None],
        },
        schema_overrides={"tmdb_id": pl.Int64},
    )
    res = pl.DataFrame(
        {"film_key": ["lb:a", "lb:b", "title:x|2000"], "tmdb_id": [1, None, None]},
        schema_overrides={"tmdb_id": pl.Int64},
    )
    assert match_summary(obs, res) == {"diary": (0, 1), "rating": (1, 2), "watched": (2, 3)}


def test_seen_films_meet_recommendable_films_by_title_and_year() -> None:
    seen = pl.DataFrame(
        {
            "user_key": ["u1", "u1", "u1", "u2"],
            "film_title": ["Castle in the Sky", "The Intouchables", "Three Colours: Red", "Dune"],
            "film_year": [1987, 2011, 1994, 2021],
        },
        schema_overrides={"film_year": pl.Int32},
    )
    films = pl.DataFrame(
        {
            "tmdb_id": [10515, 77338, 110, 841, 438631, 555],
            "title": ["Laputa: Castle in the Sky", "Intouchables", "Three Colors: Red", "Dune", "Dune", "Red"],
            "original_title": ["天空の城ラピュタ", "Intouchables", "Trois couleurs : Rouge", "Dune", "Dune", "Red"],
            "year": [1986, 2011, 1994, 1984, 2021, 1994],
        },
        schema_overrides={"year": pl.Int32},
    )
    pairs = seen_by_title(seen_title_keys(seen), film_title_keys(films))
    assert pairs.rows() == [("u1", 110), ("u1", 10515), ("u1", 77338), ("u2", 438631)]
    # "Red" (1994) only shares a one-word subtitle with "Three Colours: Red": not a key;
    # Dune (1984) is 37 years off
    recs = pl.DataFrame({"user_key": ["u1", "u1", "u2", "u2"], "tmdb_id": [10515, 555, 841, 438631]})
    hits = seen_recommendations(recs, seen_title_keys(seen), film_title_keys(films))
    assert hits.rows() == [("u1", 10515), ("u2", 438631)]


def test_a_film_logged_under_an_alternative_title_is_seen() -> None:
    assert partial_keys("Birdman or (The Unexpected Virtue of Ignorance)") == {
        "birdman",
        "unexpected virtue of ignorance",
    }
    assert "dr strangelove" in partial_keys("Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb")
    assert partial_keys("Dune (2021)") == set()  # a year in brackets is not another title
    seen = pl.DataFrame(
        {
            "user_key": ["u"] * 3,
            "film_title": ["Birdman or (The Unexpected Virtue of Ignorance)", "Kill Bill: Volume 1", "Fast & Furious"],
            "film_year": [2014, 2003, 2009],
        },
        schema_overrides={"film_year": pl.Int32},
    )
    films = pl.DataFrame(
        {
            "tmdb_id": [194662, 24, 13804, 1],
            "title": ["Birdman", "Kill Bill: Vol. 1", "Fast and Furious", "Birdman of Alcatraz"],
            "year": [2014, 2003, 2009, 1962],
        },
        schema_overrides={"year": pl.Int32},
    )
    assert seen_by_title(seen_title_keys(seen), film_title_keys(films)).rows() == [
        ("u", 24),
        ("u", 13804),
        ("u", 194662),
    ]


def test_year_tolerance_is_one_year() -> None:
    seen = pl.DataFrame(
        {"user_key": ["u"] * 2, "film_title": ["Solaris", "Heat"], "film_year": [1973, None]},
        schema_overrides={"film_year": pl.Int32},
    )
    films = pl.DataFrame(
        {"tmdb_id": [1, 2, 3], "title": ["Solaris", "Solaris", "Heat"], "year": [1972, 1971, 1995]},
        schema_overrides={"year": pl.Int32},
    )
    assert seen_by_title(seen_title_keys(seen), film_title_keys(films)).rows() == [("u", 1), ("u", 3)]


def test_override_rows_record_who_and_when() -> None:
    row = override_row("member", "Sunset Boulevard", 1950, 599).row(0, named=True)
    assert row["title_key"] == "sunset blvd" and row["tmdb_id"] == 599 and row["username"] == "member"
    assert isinstance(row["created_at"], dt.datetime)


def test_the_letterboxd_slug_is_tried_when_the_title_finds_nothing(snapshot: TmdbSnapshot) -> None:
    films = films_frame([("lb:s", "Castle in the Sky (Disney dub)", 1986, None)]).with_columns(
        pl.lit("https://letterboxd.com/film/castle-in-the-sky/").alias("film_slug")
    )
    row = resolve_films(films, snapshot).row(0, named=True)
    assert (row["tmdb_id"], row["method"]) == (10515, "search_partial_title")
    assert resolve_films(films.drop("film_slug"), snapshot).row(0, named=True)["tmdb_id"] is None


def test_two_films_sharing_only_a_main_title_are_not_the_same_film() -> None:
    seen = pl.DataFrame(
        {"user_key": ["u"], "film_title": ["Star Wars: A New Hope"], "film_year": [1977]},
        schema_overrides={"film_year": pl.Int32},
    )
    films = pl.DataFrame(
        {"tmdb_id": [1, 2], "title": ["Star Wars: Holiday Special", "Star Wars"], "year": [1978, 1977]},
        schema_overrides={"year": pl.Int32},
    )
    assert seen_by_title(seen_title_keys(seen), film_title_keys(films)).rows() == [("u", 2)]
