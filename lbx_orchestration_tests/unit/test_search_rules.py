"""The ranking rules of film search: a named title first, a misspelling still finds it, a
person named in full, language intent, and a relevance floor instead of a fixed count."""

from __future__ import annotations

import polars as pl

from lbx_orchestration.core.film_search import FilmSearch
from lbx_orchestration.core.search_rules import (
    EXACT,
    LEADING,
    OTHER,
    Floors,
    keep_hit,
    language_intent,
    title_key,
    title_tier,
)

FILMS = pl.DataFrame(
    {
        "tmdb_id": [1, 2, 3, 4, 5, 6, 7],
        "title": [
            "The Godfather: Part II",
            "The Godfather",
            "Tokyo Godfathers",
            "Decision to Leave",
            "Amélie",
            "Leonard Part 6",
            "Oldboy",
        ],
        "original_title": [None, None, "東京ゴッドファーザーズ", "헤어질 결심",
                           "Le Fabuleux Destin d'Amélie Poulain", None, "올드보이"],
        "original_language": ["en", "en", "ja", "ko", "fr", "en", "ko"],
        "overview": [
            "The continuing saga of the Corleone crime family.",
            "The aging patriarch of an organized crime dynasty transfers control to his son.",
            "Three homeless people find a baby on Christmas Eve in Tokyo.",
            "A detective investigating a death in the mountains meets the widow.",
            "A shy waitress in Paris decides to change the lives of those around her.",
            "A former spy comes out of retirement in a comedy.",
            "A man imprisoned for fifteen years seeks revenge in a thriller of obsession.",
        ],
        "genres": [["Crime"], ["Crime"], ["Animation"], ["Thriller"], ["Comedy"], ["Comedy"], ["Thriller"]],
        "directors": [["Francis Ford Coppola"], ["Francis Ford Coppola"], ["Satoshi Kon"], ["Park Chan-wook"],
                      ["Jean-Pierre Jeunet"], ["Paul Weiland"], ["Park Chan-wook"]],
        "cast_top": [["Al Pacino"], ["Marlon Brando", "Al Pacino"], [], ["Tang Wei"], ["Audrey Tautou"],
                     ["Bill Cosby"], ["Choi Min-sik"]],
        "keywords": [["mafia"], ["mafia"], ["homeless"], ["detective"], ["paris"], ["spy"], ["revenge"]],
        "vote_count": [100, 200, 50, 80, 150, 5, 120],
    }
)  # fmt: skip


def titles(search: FilmSearch, q: str, limit: int = 10) -> list[str]:
    return [FILMS["title"][h.index] for h in search.search(q, limit)]


def test_title_keys_fold_case_accents_punctuation_and_a_leading_article() -> None:
    assert title_key("The Godfather: Part II") == "godfather part ii"
    assert title_key("Le Fabuleux Destin d'Amélie Poulain") == "fabuleux destin d amelie poulain"
    assert title_key("헤어질 결심") != ""  # a title in another script keeps its words
    assert title_key("The") == "the"


def test_title_tier_exact_beats_leading_beats_other() -> None:
    assert title_tier("godfather", {"godfather"}) == EXACT
    assert title_tier("godfather", {"godfather part ii"}) == LEADING
    assert title_tier("godfather", {"tokyo godfathers"}) == OTHER


def test_language_intent_in_english_and_french() -> None:
    assert language_intent("korean thriller").languages == {"ko"}
    assert language_intent("korean thriller").content == ("thriller",)
    french = language_intent("un film français")
    assert french.languages == {"fr"} and french.listing
    assert not language_intent("godfather").languages


def test_the_floor_is_relative_to_the_best_hit() -> None:
    floors = Floors(lexical_share=0.5, fuzzy=0.6, dense_margin=0.1)
    assert keep_hit(5.0, 10.0, 0.0, None, None, floors)
    assert not keep_hit(4.9, 10.0, 0.0, None, None, floors)
    assert keep_hit(0.0, 10.0, 0.7, None, None, floors)  # a near title
    assert keep_hit(0.0, 0.0, 0.0, 0.55, 0.6, floors, dense_floor=0.3)
    assert not keep_hit(0.0, 0.0, 0.0, 0.45, 0.6, floors, dense_floor=0.3)


def test_an_exact_title_comes_first_and_noise_is_cut() -> None:
    search = FilmSearch(FILMS, dims=3)
    found = titles(search, "godfather")
    assert found[:2] == ["The Godfather", "The Godfather: Part II"]
    assert "Leonard Part 6" not in found and "Amélie" not in found
    assert search.search("godfather", 10)[0].match == "title"


def test_misspellings_original_titles_and_people_find_the_film() -> None:
    search = FilmSearch(FILMS, dims=3)
    assert titles(search, "godfater")[0] == "The Godfather"
    assert titles(search, "헤어질 결심") == ["Decision to Leave"]
    assert titles(search, "le fabuleux destin d'amelie poulain")[0] == "Amélie"
    assert set(titles(search, "park chan-wook")) == {"Decision to Leave", "Oldboy"}
    assert search.search("xyzzy", 5) == []


def test_a_language_intent_keeps_that_language() -> None:
    search = FilmSearch(FILMS, dims=3)
    assert set(titles(search, "korean thriller")) == {"Decision to Leave", "Oldboy"}
    assert titles(search, "korean films") == ["Oldboy", "Decision to Leave"]  # by vote count
    # a title that names a language is still that title
    assert titles(search, "amelie")[0] == "Amélie"


def test_the_limit_is_a_maximum() -> None:
    search = FilmSearch(FILMS, dims=3)
    assert len(search.search("godfather", 1)) == 1
