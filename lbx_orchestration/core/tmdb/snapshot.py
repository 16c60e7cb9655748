"""The offline twin of the TMDb client: serves the bundled snapshot through the same interface."""

from __future__ import annotations

import gzip
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from lbx_orchestration.core.settings import BUNDLED_SNAPSHOT, cache_dir
from lbx_orchestration.core.tmdb.normalize import match_key, partial_keys
from lbx_orchestration.core.tmdb.records import titles_of
from lbx_orchestration.core.tmdb.snapshot_index import SnapshotIndex

#: after this many single-film lookups a process reads every record (the refresh's metadata
#: asset asks for thousands); before it each reads its row group of the index
SINGLE_LOOKUPS = 50


class TmdbSnapshot:
    """Serves ``movies.jsonl.gz``: title search and single lookups from its on-disk index
    (``snapshot_index``, built once per snapshot file under ``cache_root``), every record in
    memory once a process needs many."""

    kind = "snapshot"

    def __init__(self, path: str | Path = BUNDLED_SNAPSHOT, cache_root: Path | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TMDb snapshot not found at {self.path}")
        self.cache_root = Path(cache_root) if cache_root is not None else cache_dir()
        self._lookups = 0

    @cached_property
    def records(self) -> dict[int, dict[str, Any]]:
        with gzip.open(self.path, "rt", encoding="utf-8") as fh:
            return {rec["id"]: rec for rec in map(json.loads, fh)}

    @cached_property
    def index(self) -> SnapshotIndex:
        return SnapshotIndex.open(self.path, self.cache_root, lambda: self.records)

    def _record(self, tmdb_id: int) -> dict[str, Any] | None:
        self._lookups += 1
        if "records" in self.__dict__ or self._lookups > SINGLE_LOOKUPS:
            return self.records.get(int(tmdb_id))
        return self.index.record(tmdb_id)

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        record = self._record(tmdb_id)
        return dict(record) if record is not None else None

    def alternative_titles(self, tmdb_id: int) -> list[str]:
        """Every other name the snapshot knows for a film (original title, MovieLens titles)."""
        record = self._record(tmdb_id)
        return titles_of(record)[1:] if record else []

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """Films whose title, original title or MovieLens title matches ``title`` under
        :func:`match_key`, or whose main title / subtitle does (either way round), shaped
        like TMDb search results with ``alternative_titles`` added, most popular first.

        Unlike TMDb's fuzzy search this only finds those matches; a year, when given, keeps
        films within one year of it.
        """
        ids = self.index.matching(match_key(title), partial_keys(title))
        results = []
        for row in self.index.rows(ids):
            found_year = row["year"]
            if year is not None and found_year is not None and abs(found_year - year) > 1:
                continue
            results.append(
                {
                    "id": row["tmdb_id"],
                    "title": row["title"],
                    "original_title": row["original_title"],
                    "alternative_titles": row["names"][1:],
                    "release_date": row["release_date"] or (f"{found_year}-01-01" if found_year else ""),
                    "popularity": row["popularity"],
                    "vote_count": row["vote_count"],
                }
            )
        results.sort(key=lambda r: -float(r["popularity"]))
        return results
