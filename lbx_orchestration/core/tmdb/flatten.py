"""TMDb movie-details JSON -> one flat row per film.

Any field may be missing, and real responses sometimes carry a field of an unexpected type
(``belongs_to_collection`` as a string, ``genres`` as null, a number as text). Each field is
read on its own: an odd one becomes null and a note, and the film keeps every other field.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from lbx_orchestration.core.tmdb.records import display_title, release_year

TMDB_MOVIE_SCHEMA: dict[str, pl.DataType] = {
    "tmdb_id": pl.Int64(),
    "media_type": pl.Utf8(),
    "title": pl.Utf8(),
    "original_title": pl.Utf8(),
    "release_date": pl.Utf8(),
    "year": pl.Int32(),
    "runtime": pl.Int32(),
    "budget": pl.Int64(),
    "revenue": pl.Int64(),
    "popularity": pl.Float64(),
    "vote_average": pl.Float64(),
    "vote_count": pl.Int64(),
    "original_language": pl.Utf8(),
    "overview": pl.Utf8(),
    "imdb_id": pl.Utf8(),
    "poster_path": pl.Utf8(),
    "poster_url": pl.Utf8(),
    "genres": pl.List(pl.Utf8()),
    "directors": pl.List(pl.Utf8()),
    "cast_top": pl.List(pl.Utf8()),
    "keywords": pl.List(pl.Utf8()),
    "providers": pl.List(pl.Utf8()),
    "collection": pl.Utf8(),  # belongs_to_collection: the franchise ("Mission: Impossible Collection")
    "companies": pl.List(pl.Utf8()),  # production companies
}

CAST_DEPTH = 10
_INT32_MAX = 2**31 - 1


class _Reader:
    """Reads one details body field by field, noting each field it had to drop."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.details = details
        self.notes: list[str] = []

    def drop(self, key: str, value: Any, wanted: str) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        self.notes.append(f"{key}: expected {wanted}, got {type(value).__name__} {shown}; dropped")

    def text(self, key: str) -> str | None:
        value = self.details.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        self.drop(key, value, "text")
        return None

    def number(self, key: str, kind: type, positive: bool = False) -> Any:
        value = self.details.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.drop(key, value, "a number")
            return None
        try:
            number = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError, OverflowError):
            self.drop(key, value, "a number")
            return None
        if kind is int and abs(number) > 2**62 or (key == "runtime" and abs(number) > _INT32_MAX):
            self.drop(key, value, "a number in range")
            return None
        return None if positive and number == 0 else number

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.details.get(key)
        if value is None or value == "":
            return {}
        if isinstance(value, dict):
            return value
        self.drop(key, value, "an object")
        return {}

    def names(self, key: str, items: Any, where: str | None = None) -> list[str] | None:
        if items is None:
            return None
        if not isinstance(items, list):
            self.drop(where or key, items, "a list")
            return None
        return [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"]]

    def people(self, items: Any, where: str) -> list[dict[str, Any]]:
        if items is None:
            return []
        if not isinstance(items, list):
            self.drop(where, items, "a list")
            return []
        return [i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"]]


def _order(person: dict[str, Any]) -> float:
    order = person.get("order")
    return order if isinstance(order, int | float) and not isinstance(order, bool) else 1_000


def flatten_checked(details: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The flat row and the notes on every field that had to be dropped."""
    read = _Reader(details)
    credits = read.mapping("credits")
    cast = sorted(read.people(credits.get("cast"), "credits.cast"), key=_order)
    crew = read.people(credits.get("crew"), "credits.crew")
    keywords = details.get("keywords")
    keyword_items = keywords.get("keywords") if isinstance(keywords, dict) else keywords
    providers = read.mapping("watch_providers")
    external = read.mapping("external_ids")
    collection = read.mapping("belongs_to_collection")
    collection_name = collection.get("name")
    try:
        title = display_title(details)
        title = title if isinstance(title, str) else None
    except AttributeError:
        title = None
    try:
        year = release_year(details)
    except (AttributeError, TypeError, ValueError):
        year = None
    imdb = read.text("imdb_id") or (external.get("imdb_id") if isinstance(external.get("imdb_id"), str) else None)
    row = {
        "tmdb_id": int(details["id"]),
        "media_type": read.text("media_type") or "movie",
        "title": title,
        "original_title": read.text("original_title"),
        "release_date": read.text("release_date"),
        "year": year,
        "runtime": read.number("runtime", int, positive=True),
        "budget": read.number("budget", int, positive=True),
        "revenue": read.number("revenue", int, positive=True),
        "popularity": read.number("popularity", float),
        "vote_average": read.number("vote_average", float),
        "vote_count": read.number("vote_count", int),
        "original_language": read.text("original_language"),
        "overview": read.text("overview"),
        "imdb_id": imdb or None,
        "poster_path": read.text("poster_path"),
        "poster_url": read.text("poster_url"),
        "genres": read.names("genres", details.get("genres")),
        "directors": [c["name"] for c in crew if c.get("job") == "Director"] if crew else None,
        "cast_top": [c["name"] for c in cast[:CAST_DEPTH]] if cast else None,
        "keywords": read.names("keywords", keyword_items),
        "providers": read.names("watch_providers.flatrate", providers.get("flatrate")),
        "collection": collection_name if isinstance(collection_name, str) and collection_name else None,
        "companies": read.names("production_companies", details.get("production_companies")),
    }
    return row, read.notes


def flatten_details(details: dict[str, Any]) -> dict[str, Any]:
    return flatten_checked(details)[0]


def flatten_many(details: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([flatten_details(d) for d in details], schema=TMDB_MOVIE_SCHEMA)


def to_json(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True)
