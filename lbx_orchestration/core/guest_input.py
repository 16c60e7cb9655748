"""What a guest types: one film a line ("Heat (1995) 5", "Collateral ★★★★½"), and which of
those films a list is based on (``basis``).

Pure parsing, no I/O: the web route and the tests share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_FILMS = 100  # films one request may type
MAX_TITLE_CHARS = 200
MIN_RATING, MAX_RATING = 0.5, 5.0
LATEST = 50

#: basis -> the films a list is based on (ratings on Letterboxd's 0.5-5 scale)
BASES: dict[str, str] = {
    "all": "every film given",
    "latest50": f"the latest {LATEST} films (the last {LATEST} given, a diary being oldest first)",
    "five": "films rated 5★ only",
    "four_up": "films rated 4★ and up",
    "three_up": "films rated 3★ and up",
}
MIN_RATING_OF = {"five": 5.0, "four_up": 4.0, "three_up": 3.0}

_YEAR = re.compile(r"^(?P<title>.*?)\s*[(\[](?P<year>(18|19|20)\d{2})[)\]]\s*(?P<rest>.*)$")
_STARS = re.compile(r"\s+(?P<stars>★{0,5}½?)\s*$")
_NUMBER = re.compile(r"\s+(?P<number>\d(?:[.,]\d)?)\s*(?:/\s*5|★)?\s*$")


class GuestInputError(ValueError):
    """A request lbx cannot read; the message names the cause."""


@dataclass(frozen=True)
class GuestFilm:
    text: str  # as typed (trimmed)
    title: str
    year: int | None
    rating: float | None
    whole: str | None = None  # the title had the trailing number been part of it ("Alien 3")


def parse_line(text: str) -> GuestFilm:
    """``Heat (1995) 5`` -> Heat, 1995, 5.0. A rating is a trailing number (0.5-5, optionally
    "/5") or stars; a year only counts in brackets, so "Blade Runner 2049" stays a title."""
    line = " ".join(str(text).split())
    rest, rating = _split_rating(line)
    bare = _NUMBER.search(line)  # "Alien 3": a whole number with no "/5" or star may be the title's
    whole = line if rating is not None and bare and bare.group().strip().isdigit() else None
    year = None
    if found := _YEAR.match(rest):
        if found["rest"] and rating is None:
            _, rating = _split_rating(" " + found["rest"])
        rest, year, whole = found["title"], int(found["year"]), None
    title = rest.strip(" -–—,;")
    if not title:
        raise GuestInputError(f"no title in {line[:100]!r}")
    return GuestFilm(line, title, year, rating, whole)


def _split_rating(line: str) -> tuple[str, float | None]:
    if (stars := _STARS.search(line)) and stars["stars"]:
        value = stars["stars"].count("★") + (0.5 if stars["stars"].endswith("½") else 0.0)
        return line[: stars.start()], float(value)
    if (number := _NUMBER.search(line)) and line[: number.start()].strip():
        value = float(number["number"].replace(",", "."))
        if MIN_RATING <= value <= MAX_RATING and (value * 2).is_integer():
            return line[: number.start()], value
    return line, None


def parse_films(items: Any) -> list[GuestFilm]:
    """The ``films`` of a request: strings (one film each, a rating may follow) or objects
    ``{"title", "year", "rating"}``. Raises GuestInputError naming what is wrong."""
    if not isinstance(items, list):
        raise GuestInputError("'films' must be a list of titles (strings) or of {title, year, rating} objects")
    if not items:
        raise GuestInputError("'films' is empty: give at least one film you love")
    if len(items) > MAX_FILMS:
        raise GuestInputError(f"{len(items)} films is over the limit of {MAX_FILMS} a request")
    films = []
    for n, item in enumerate(items, 1):
        if isinstance(item, str):
            if len(item) > MAX_TITLE_CHARS:
                raise GuestInputError(f"film {n} is longer than {MAX_TITLE_CHARS} characters")
            if item.strip():
                films.append(parse_line(item))
        elif isinstance(item, dict):
            films.append(_from_object(n, item))
        else:
            raise GuestInputError(f"film {n} is neither a title nor a {{title, year, rating}} object")
    if not films:
        raise GuestInputError("'films' holds only blank lines: give at least one film you love")
    return films


def _from_object(n: int, item: dict[str, Any]) -> GuestFilm:
    title, year, rating = item.get("title"), item.get("year"), item.get("rating")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise GuestInputError(f"film {n} needs a 'title' of 1-{MAX_TITLE_CHARS} characters")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 1870 <= year <= 2100):
        raise GuestInputError(f"film {n}: 'year' must be a year between 1870 and 2100")
    if rating is not None:
        rating = _rating(n, rating)
    parsed = parse_line(title) if year is None else GuestFilm(title.strip(), " ".join(title.split()), year, None)
    if rating is not None:
        return GuestFilm(
            parsed.text, " ".join(title.split()) if parsed.whole else parsed.title, year or parsed.year, rating
        )
    return GuestFilm(parsed.text, parsed.title, year or parsed.year, parsed.rating, parsed.whole)


def _rating(n: int, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GuestInputError(f"film {n}: 'rating' must be a number from 0.5 to 5")
    if not MIN_RATING <= value <= MAX_RATING or not float(value * 2).is_integer():
        raise GuestInputError(f"film {n}: rating {value} is not on Letterboxd's scale (0.5 to 5, in halves)")
    return float(value)


def apply_ratings(films: list[GuestFilm], ratings: Any) -> list[GuestFilm]:
    """``ratings``: {typed text or title: rating}, for films typed as plain titles."""
    if ratings is None:
        return films
    if not isinstance(ratings, dict):
        raise GuestInputError("'ratings' must be an object {title: rating}")
    wanted = {str(k).strip().lower(): _rating(0, v) for k, v in ratings.items()}
    return [
        GuestFilm(f.text, f.title, f.year, wanted.get(f.text.lower(), wanted.get(f.title.lower(), f.rating)), f.whole)
        for f in films
    ]


def basis_name(value: Any) -> str:
    name = "all" if value is None else str(value).strip().lower()
    if name not in BASES:
        raise GuestInputError(f"unknown basis {str(value)[:40]!r}: one of {', '.join(BASES)}")
    return name


def in_basis(films: list[GuestFilm], basis: str) -> list[bool]:
    """Which films a list is based on. The rating bases need ratings: a film typed without one
    does not count under them."""
    if basis == "latest50":
        return [i >= len(films) - LATEST for i in range(len(films))]
    floor = MIN_RATING_OF.get(basis)
    if floor is None:
        return [True] * len(films)
    return [f.rating is not None and f.rating >= floor for f in films]
