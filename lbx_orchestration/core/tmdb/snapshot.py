"""The offline twin of the TMDb client: serves the bundled snapshot through the same interface."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

from lbx_orchestration.core.settings import BUNDLED_SNAPSHOT
from lbx_orchestration.core.tmdb.normalize import match_key, partial_keys


def release_year(record: dict[str, Any]) -> int | None:
    date = record.get("release_date") or ""
    if len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    year = record.get("_lbx", {}).get("movielens_year")
    return int(year) if year else None


def display_title(record: dict[str, Any]) -> str | None:
    return record.get("title") or record.get("_lbx", {}).get("movielens_title")


class TmdbSnapshot:
    """Reads ``movies.jsonl.gz`` once; lookups and title search are in memory."""

    kind = "snapshot"

    def __init__(self, path: str | Path = BUNDLED_SNAPSHOT) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TMDb snapshot not found at {self.path}")

    @cached_property
    def records(self) -> dict[int, dict[str, Any]]:
        with gzip.open(self.path, "rt", encoding="utf-8") as fh:
            return {rec["id"]: rec for rec in map(json.loads, fh)}

    @cached_property
    def _title_index(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """(full match key -> ids, main-title/subtitle key -> ids) over every name a record has."""
        full: dict[str, set[int]] = defaultdict(set)
        partial: dict[str, set[int]] = defaultdict(set)
        for tmdb_id, rec in self.records.items():
            for title in titles_of(rec):
                full[match_key(title)].add(tmdb_id)
                for key in partial_keys(title):
                    partial[key].add(tmdb_id)
        return ({k: sorted(v) for k, v in full.items()}, {k: sorted(v) for k, v in partial.items()})

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        record = self.records.get(int(tmdb_id))
        return dict(record) if record is not None else None

    def alternative_titles(self, tmdb_id: int) -> list[str]:
        """Every other name the snapshot knows for a film (original title, MovieLens titles)."""
        record = self.records.get(int(tmdb_id))
        return titles_of(record)[1:] if record else []

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Films whose title, original title or MovieLens title matches ``title`` under
        :func:`match_key`, or whose main title / subtitle does (either way round), shaped
        like TMDb search results with ``alternative_titles`` added, most popular first.

        Unlike TMDb's fuzzy search this only finds those matches; a year, when given, keeps
        films within one year of it.
        """
        full, partial = self._title_index
        wanted = match_key(title)
        ids = set(full.get(wanted, [])) | set(partial.get(wanted, []))
        for key in partial_keys(title):
            ids |= set(full.get(key, []))
        results = []
        for tmdb_id in sorted(ids):
            rec = self.records[tmdb_id]
            found_year = release_year(rec)
            if year is not None and found_year is not None and abs(found_year - year) > 1:
                continue
            names = titles_of(rec)
            results.append(
                {
                    "id": tmdb_id,
                    "title": display_title(rec),
                    "original_title": rec.get("original_title") or display_title(rec),
                    "alternative_titles": names[1:],
                    "release_date": rec.get("release_date") or (f"{found_year}-01-01" if found_year else ""),
                    "popularity": rec.get("popularity") or 0.0,
                    "vote_count": rec.get("vote_count") or 0,
                }
            )
        results.sort(key=lambda r: -float(r["popularity"]))
        return results


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
