"""What a TMDb snapshot record says about a film's names and year (TMDb's fields, then the
MovieLens ones lbx adds under ``_lbx``)."""

from __future__ import annotations

from typing import Any


def release_year(record: dict[str, Any]) -> int | None:
    date = record.get("release_date") or ""
    if len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    year = record.get("_lbx", {}).get("movielens_year")
    return int(year) if year else None


def display_title(record: dict[str, Any]) -> str | None:
    return record.get("title") or record.get("_lbx", {}).get("movielens_title")


def titles_of(record: dict[str, Any]) -> list[str]:
    """The display title first, then every other distinct name of the record."""
    extra = record.get("_lbx", {})
    names = [
        display_title(record),
        record.get("original_title"),
        extra.get("movielens_title"),
        extra.get("movielens_aka"),
    ]
    return list(dict.fromkeys(n for n in names if n))
