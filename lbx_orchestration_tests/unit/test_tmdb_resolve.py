import json
from pathlib import Path
from typing import Any

import pytest

from lbx_orchestration.core.tmdb.resolve import Resolution, rank_candidates, resolve_by_search

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tmdb"


class FakeSource:
    """A TmdbSource whose search answers from a table keyed on (title, year)."""

    kind = "snapshot"

    def __init__(self, answers: dict[tuple[str, int | None], list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int | None]] = []

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        return None

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        self.calls.append((title, year))
        return self.answers.get((title, year), [])


def film(tmdb_id: int, title: str, date: str, popularity: float, original: str | None = None):
    return {
        "id": tmdb_id,
        "title": title,
        "original_title": original or title,
        "release_date": date,
        "popularity": popularity,
    }


DUNE_2021 = film(438631, "Dune", "2021-09-15", 120.0)
DUNE_1984 = film(841, "Dune", "1984-12-14", 40.0)
DUNE_DOC = film(1, "Jodorowsky's Dune", "2013-05-18", 8.0)


def test_recorded_search_response_resolves_exactly() -> None:
    results = json.loads((FIXTURES / "jdrouet-tmdb-api" / "search-movie.json").read_text())
    source = FakeSource({("RRRrrrr!!!", 2004): results["results"]})
    got = resolve_by_search(source, "RRRrrrr!!!", 2004)
    assert got == Resolution(21778, 1.0, "search_exact_title", None, None, 1)
    assert not got.is_ambiguous


def test_year_picks_the_right_remake_and_confidence_stays_high() -> None:
    candidates = [DUNE_1984, DUNE_DOC, DUNE_2021]
    old = rank_candidates("Dune", 1984, candidates)
    new = rank_candidates("Dune", 2021, candidates)
    assert (old.tmdb_id, old.runner_up) == (841, 438631)
    assert (new.tmdb_id, new.runner_up) == (438631, 841)
    # A runner-up 37 years off barely dents the winner ...
    assert new.confidence > 0.99 and old.confidence > 0.99
    assert new.runner_up_confidence is not None and new.runner_up_confidence < 0.01
    assert not new.is_ambiguous and not old.is_ambiguous
    assert new.candidates == 3


def test_without_a_year_equally_matching_remakes_are_split_by_popularity() -> None:
    got = rank_candidates("Dune", None, [DUNE_1984, DUNE_2021])
    assert got.tmdb_id == 438631  # the more popular one
    # ... but the choice is weaker than with a year, and the runner-up keeps a real share.
    assert got.confidence < rank_candidates("Dune", 2021, [DUNE_1984, DUNE_2021]).confidence
    assert got.runner_up == 841 and got.runner_up_confidence > 0


def test_equally_popular_namesakes_are_ambiguous() -> None:
    twins = [film(10, "Crash", "1996-07-11", 30.0), film(20, "Crash", "2004-09-10", 31.0)]
    got = rank_candidates("Crash", None, twins)
    assert got.tmdb_id == 20
    assert got.is_ambiguous
    assert got.confidence == pytest.approx(got.runner_up_confidence, rel=0.1)
    assert got.confidence <= 0.45


def test_one_year_off_is_accepted_but_costs_confidence() -> None:
    festival = film(5, "Parasite", "2019-05-30", 90.0, original="기생충")
    exact = rank_candidates("Parasite", 2019, [festival])
    off_by_one = rank_candidates("Parasite", 2020, [festival])
    assert off_by_one.tmdb_id == 5
    assert 0.5 < off_by_one.confidence < exact.confidence == 1.0


def test_same_year_beats_one_year_off_beats_further_for_the_same_title() -> None:
    a = film(1, "Solaris", "1972-03-20", 10.0)
    b = film(2, "Solaris", "2002-11-27", 50.0)
    c = film(3, "Solaris", "1971-01-01", 5.0)
    assert rank_candidates("Solaris", 1972, [b, c, a]).tmdb_id == 1
    refused = rank_candidates("Solaris", 1973, [b, c])  # the nearest is 2 years off: not used
    assert (refused.tmdb_id, refused.method, refused.candidate_id, refused.candidate_year) == (None, "refused", 3, 1971)
    assert refused.reason == "released 1971, 2 years from 1973: more than one year off"
    assert rank_candidates("Solaris", 2003, [a, b, c]).tmdb_id == 2


def test_original_title_and_letterboxd_article_order_match_exactly() -> None:
    amelie = film(194, "Amélie", "2001-04-25", 40.0, original="Le Fabuleux Destin d'Amélie Poulain")
    other = film(9, "Amelie Poulain Returns", "2001-01-01", 80.0)
    got = rank_candidates("Le fabuleux destin d'Amélie Poulain", 2001, [other, amelie])
    assert (got.tmdb_id, got.method) == (194, "search_exact_original_title")
    shining = film(694, "The Shining", "1980-05-23", 60.0)
    got = rank_candidates("Shining, The", 1980, [shining])
    assert (got.tmdb_id, got.method, got.confidence) == (694, "search_exact_title", 1.0)


def test_exact_title_outranks_a_more_popular_fuzzy_match() -> None:
    exact = film(1, "Heat", "1995-12-15", 20.0)
    fuzzy = film(2, "Heatwave", "1995-01-01", 300.0)
    got = rank_candidates("Heat", 1995, [fuzzy, exact])
    assert (got.tmdb_id, got.method, got.runner_up) == (1, "search_exact_title", 2)
    assert got.confidence > 0.9


def test_fuzzy_match_is_returned_with_lower_confidence() -> None:
    typo = film(7, "Eternal Sunshine of the Spotless Mind", "2004-03-19", 50.0)
    got = rank_candidates("Eternal Sunshine of a Spotless Mind", 2004, [typo])
    assert (got.tmdb_id, got.method) == (7, "search_fuzzy_title")
    assert 0.7 < got.confidence < 0.95


def test_unrelated_results_are_no_match() -> None:
    got = rank_candidates("Stalker", 1979, [film(3, "Zootopia", "2016-02-11", 100.0)])
    assert got == Resolution(None, 0.0, "search_no_match", None, None, 1)


def test_search_falls_back_to_no_year_only_when_the_year_finds_nothing() -> None:
    source = FakeSource({("Dune", None): [DUNE_1984, DUNE_2021], ("Dune", 2021): [DUNE_2021]})
    assert resolve_by_search(source, "Dune", 2021).tmdb_id == 438631
    assert source.calls == [("Dune", 2021)]
    got = resolve_by_search(source, "Dune", 1983)  # TMDb finds nothing for 1983
    assert source.calls[1:] == [("Dune", 1983), ("Dune", None)]
    assert (got.tmdb_id, got.candidates) == (841, 2)  # one year off, the 1984 film


def test_nothing_found() -> None:
    source = FakeSource({})
    got = resolve_by_search(source, "No Such Film", 1999)
    assert got == Resolution(None, 0.0, "search_no_candidates", None, None, 0)
    assert source.calls == [("No Such Film", 1999), ("No Such Film", None)]
    assert not got.is_ambiguous


def test_empty_title_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty title"):
        resolve_by_search(FakeSource({}), " !! ", None)


def test_confidences_stay_in_unit_interval() -> None:
    pool = [DUNE_1984, DUNE_2021, DUNE_DOC, film(4, "Dune", "", 0.0), film(5, "Dune", "2021", 0)]
    for year in (None, 1900, 1984, 2021, 2022):
        got = rank_candidates("Dune", year, pool)
        assert 0.0 <= got.confidence <= 1.0
        assert got.runner_up_confidence is None or 0.0 <= got.runner_up_confidence <= 1.0
