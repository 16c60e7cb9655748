"""A TMDb snapshot's title search index and records, kept on disk beside nothing the user owns.

Parsing a snapshot's JSON lines and computing every title's match keys takes seconds at
ML-32M size (87,000 films: 6.6 s), and `lbx import` is a fresh process that searches a new
member's films by title. The first reader builds the index once per snapshot file (keyed by
its path, size and modification time) into the cache folder; later processes read it in
milliseconds: the keys and the fields a search result shows, and each record's JSON by id,
sorted so a lookup reads one small row group.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from lbx_orchestration.core.tmdb.normalize import match_key, partial_keys
from lbx_orchestration.core.tmdb.records import display_title, release_year, titles_of

#: bump when what the index holds changes: old folders then no longer match
INDEX_VERSION = 1
KEYS_FILE, FILMS_FILE, RECORDS_FILE = "keys.parquet", "films.parquet", "records.parquet"
RECORD_GROUP_ROWS = 1024
#: what a search result shows of a film
FILMS_SCHEMA = {
    "tmdb_id": pl.Int64,
    "title": pl.String,
    "original_title": pl.String,
    "names": pl.List(pl.String),
    "release_date": pl.String,
    "year": pl.Int64,
    "popularity": pl.Float64,
    "vote_count": pl.Int64,
}


def index_folder(snapshot: Path, cache_root: Path) -> Path:
    stat = snapshot.stat()
    key = json.dumps([INDEX_VERSION, str(snapshot.resolve()), stat.st_size, stat.st_mtime_ns])
    return cache_root / "tmdb-snapshot" / hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class SnapshotIndex:
    folder: Path
    keys: pl.DataFrame  # key, tmdb_id, partial: every match key of every name of a film
    films: pl.DataFrame  # FILMS_SCHEMA: what a search result shows

    @classmethod
    def open(
        cls,
        snapshot: Path,
        cache_root: Path,
        records: Callable[[], Mapping[int, dict[str, Any]]],
    ) -> SnapshotIndex:
        """The cached index of ``snapshot``, built from ``records()`` when missing or damaged (in a
        temporary folder when the cache folder cannot be written: searching must still work)."""
        folder = index_folder(snapshot, cache_root)
        try:
            return cls(folder, pl.read_parquet(folder / KEYS_FILE), pl.read_parquet(folder / FILMS_FILE))
        except (OSError, pl.exceptions.PolarsError):
            shutil.rmtree(folder, ignore_errors=True)
        try:
            build(records(), folder)
        except OSError:
            folder = Path(tempfile.mkdtemp(prefix="lbx-snapshot-index-")) / folder.name
            build(records(), folder)
        return cls(folder, pl.read_parquet(folder / KEYS_FILE), pl.read_parquet(folder / FILMS_FILE))

    @cached_property
    def _full(self) -> pl.DataFrame:
        return self.keys.filter(~pl.col("partial"))

    def matching(self, wanted: str, partial: set[str]) -> list[int]:
        """Films with a name whose full key is ``wanted`` or one of ``partial``, or whose
        main-title / subtitle key is ``wanted``."""
        full = self._full.filter(pl.col("key").is_in([wanted, *partial]))["tmdb_id"]
        part = self.keys.filter(pl.col("partial") & (pl.col("key") == wanted))["tmdb_id"]
        return sorted(set(full.to_list()) | set(part.to_list()))

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        return self.films.filter(pl.col("tmdb_id").is_in(ids)).sort("tmdb_id").to_dicts()

    def record(self, tmdb_id: int) -> dict[str, Any] | None:
        """One film's snapshot record, read from its row group only."""
        found = pl.scan_parquet(self.folder / RECORDS_FILE).filter(pl.col("tmdb_id") == int(tmdb_id)).collect()
        return json.loads(found["record"][0]) if found.height else None


def build(records: Mapping[int, dict[str, Any]], folder: Path) -> None:
    """Write the index of ``records`` to ``folder`` whole or not at all (a temporary folder, then
    a rename; when another process got there first, its folder is as good)."""
    keys: dict[str, list] = {"key": [], "tmdb_id": [], "partial": []}
    films: dict[str, list] = {name: [] for name in FILMS_SCHEMA}
    for tmdb_id, rec in records.items():
        names = titles_of(rec)
        seen: set[tuple[str, bool]] = set()
        for name in names:
            seen.add((match_key(name), False))
            seen.update((k, True) for k in partial_keys(name))
        for key, partial in sorted(seen):
            keys["key"].append(key)
            keys["tmdb_id"].append(int(tmdb_id))
            keys["partial"].append(partial)
        films["tmdb_id"].append(int(tmdb_id))
        films["title"].append(display_title(rec))
        films["original_title"].append(rec.get("original_title") or display_title(rec))
        films["names"].append(names)
        films["release_date"].append(rec.get("release_date") or None)
        films["year"].append(release_year(rec))
        films["popularity"].append(float(rec.get("popularity") or 0.0))
        films["vote_count"].append(int(rec.get("vote_count") or 0))
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        pl.DataFrame(keys, schema={"key": pl.String, "tmdb_id": pl.Int64, "partial": pl.Boolean}).write_parquet(
            tmp / KEYS_FILE
        )
        pl.DataFrame(films, schema=FILMS_SCHEMA).write_parquet(tmp / FILMS_FILE)
        ids = sorted(records)
        pl.DataFrame(
            {"tmdb_id": ids, "record": [json.dumps(records[i]) for i in ids]},
            schema={"tmdb_id": pl.Int64, "record": pl.String},
        ).write_parquet(tmp / RECORDS_FILE, row_group_size=RECORD_GROUP_ROWS, statistics=True)
        try:
            tmp.rename(folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
