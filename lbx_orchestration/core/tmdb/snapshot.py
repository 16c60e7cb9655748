"""The offline twin of the TMDb client: serves the bundled snapshot through the same interface."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

from lbx_orchestration.core.settings import BUNDLED_SNAPSHOT
from lbx_orchestration.core.tmdb.normalize import normalize_title


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
    def _title_index(self) -> dict[str, list[int]]:
        index: dict[str, set[int]] = defaultdict(set)
        for tmdb_id, rec in self.records.items():
            extra = rec.get("_lbx", {})
            for title in (
                rec.get("title"),
                rec.get("original_title"),
                extra.get("movielens_title"),
                extra.get("movielens_aka"),
            ):
                if title:
                    index[normalize_title(title)].add(tmdb_id)
        return {key: sorted(ids) for key, ids in index.items()}

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        record = self.records.get(int(tmdb_id))
        return dict(record) if record is not None else None

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Exact normalised-title matches, shaped like TMDb search results, most popular first.

        Unlike TMDb's fuzzy search this only finds exact normalised titles; a year,
        when given, keeps films within one year of it.
        """
        results = []
        for tmdb_id in self._title_index.get(normalize_title(title), []):
            rec = self.records[tmdb_id]
            found_year = release_year(rec)
            if year is not None and found_year is not None and abs(found_year - year) > 1:
                continue
            results.append(
                {
                    "id": tmdb_id,
                    "title": display_title(rec),
                    "original_title": rec.get("original_title") or display_title(rec),
                    "release_date": rec.get("release_date")
                    or (f"{found_year}-01-01" if found_year else ""),
                    "popularity": rec.get("popularity") or 0.0,
                    "vote_count": rec.get("vote_count") or 0,
                }
            )
        results.sort(key=lambda r: -float(r["popularity"]))
        return results
