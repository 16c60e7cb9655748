"""TMDb movie-details JSON -> one flat row per film. Any field may be missing."""

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


def _names(items: Any) -> list[str] | None:
    if not isinstance(items, list):
        return None
    names = [i.get("name") for i in items if isinstance(i, dict) and i.get("name")]
    return names


def flatten_details(details: dict[str, Any]) -> dict[str, Any]:
    credits = details.get("credits") or {}
    cast = sorted(credits.get("cast") or [], key=lambda c: c.get("order", 1_000))
    crew = credits.get("crew") or []
    keywords = details.get("keywords") or {}
    providers = details.get("watch_providers") or {}
    external = details.get("external_ids") or {}

    def positive(key: str) -> Any:
        value = details.get(key)
        return value if value not in (0, None, "") else None

    return {
        "tmdb_id": int(details["id"]),
        "media_type": details.get("media_type") or "movie",
        "title": display_title(details),
        "original_title": details.get("original_title"),
        "release_date": details.get("release_date") or None,
        "year": release_year(details),
        "runtime": positive("runtime"),
        "budget": positive("budget"),
        "revenue": positive("revenue"),
        "popularity": details.get("popularity"),
        "vote_average": details.get("vote_average"),
        "vote_count": details.get("vote_count"),
        "original_language": details.get("original_language") or None,
        "overview": details.get("overview") or None,
        "imdb_id": details.get("imdb_id") or external.get("imdb_id"),
        "poster_path": details.get("poster_path"),
        "poster_url": details.get("poster_url"),
        "genres": _names(details.get("genres")),
        "directors": [c["name"] for c in crew if c.get("job") == "Director" and c.get("name")] if crew else None,
        "cast_top": [c["name"] for c in cast[:CAST_DEPTH] if c.get("name")] if cast else None,
        "keywords": _names(keywords.get("keywords") if isinstance(keywords, dict) else keywords),
        "providers": _names(providers.get("flatrate")) if isinstance(providers, dict) else None,
        "collection": (details.get("belongs_to_collection") or {}).get("name") or None,
        "companies": _names(details.get("production_companies")),
    }


def flatten_many(details: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([flatten_details(d) for d in details], schema=TMDB_MOVIE_SCHEMA)


def to_json(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True)
