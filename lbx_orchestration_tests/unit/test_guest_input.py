"""What a guest types: titles, years in brackets, ratings, and the basis of their list."""

from __future__ import annotations

import pytest

from lbx_orchestration.core.guest_input import (
    MAX_FILMS,
    GuestFilm,
    GuestInputError,
    apply_ratings,
    basis_name,
    in_basis,
    parse_films,
    parse_line,
)


@pytest.mark.parametrize(
    ("text", "title", "year", "rating"),
    [
        ("Heat (1995)", "Heat", 1995, None),
        ("Heat (1995) 5", "Heat", 1995, 5.0),
        ("  Collateral   ★★★★½ ", "Collateral", None, 4.5),
        ("Blade Runner 2049", "Blade Runner 2049", None, None),
        ("Se7en 4/5", "Se7en", None, 4.0),
        ("Seven Samurai [1954] 4,5", "Seven Samurai", 1954, 4.5),
        ("1917", "1917", None, None),
        ("8½", "8½", None, None),
    ],
)
def test_a_line_gives_title_year_and_rating(text: str, title: str, year: int | None, rating: float | None) -> None:
    film = parse_line(text)
    assert (film.title, film.year, film.rating) == (title, year, rating)


def test_a_trailing_number_may_be_the_titles() -> None:
    assert parse_line("Alien 3") == GuestFilm("Alien 3", "Alien", None, 3.0, whole="Alien 3")
    assert parse_line("Heat (1995) 3").whole is None  # a year in brackets ends the title


def test_objects_ratings_and_limits() -> None:
    films = parse_films([{"title": "Heat", "year": 1995, "rating": 4.5}, "Collateral", " "])
    assert [(f.title, f.year, f.rating) for f in films] == [("Heat", 1995, 4.5), ("Collateral", None, None)]
    assert apply_ratings(films, {"collateral": 3})[1].rating == 3.0
    for bad, words in [
        ([], "empty"),
        (["x"] * (MAX_FILMS + 1), "over the limit"),
        ([{"title": "Heat", "rating": 6}], "scale"),
        ([{"title": "Heat", "year": "1995"}], "'year'"),
        ([3], "neither"),
        ("Heat", "must be a list"),
    ]:
        with pytest.raises(GuestInputError, match=words):
            parse_films(bad)


def test_basis_chooses_the_films_that_count() -> None:
    films = [GuestFilm(str(r), "t", None, r) for r in (5.0, 4.0, 3.5, None, 2.0)]
    assert in_basis(films, "all") == [True] * 5
    assert in_basis(films, "five") == [True, False, False, False, False]
    assert in_basis(films, "four_up") == [True, True, False, False, False]
    assert in_basis(films, "three_up") == [True, True, True, False, False]
    many = [GuestFilm(str(i), "t", None, None) for i in range(60)]
    assert in_basis(many, "latest50") == [False] * 10 + [True] * 50
    assert basis_name(None) == "all" and basis_name(" Four_Up ") == "four_up"
    with pytest.raises(GuestInputError, match="unknown basis"):
        basis_name("best")
