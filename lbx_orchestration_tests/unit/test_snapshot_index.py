"""The TMDb snapshot's on-disk search index: the same answers as reading every record, built
once per snapshot file, rebuilt when damaged or when the snapshot changes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from lbx_orchestration.core.settings import BUNDLED_SNAPSHOT
from lbx_orchestration.core.tmdb.normalize import match_key, partial_keys
from lbx_orchestration.core.tmdb.records import display_title, release_year, titles_of
from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot
from lbx_orchestration.core.tmdb.snapshot_index import KEYS_FILE


def naive_keys(records: dict[int, dict[str, Any]]) -> dict[int, tuple[set[str], set[str]]]:
    return {
        tmdb_id: ({match_key(n) for n in titles_of(rec)}, {k for n in titles_of(rec) for k in partial_keys(n)})
        for tmdb_id, rec in records.items()
    }


def naive_search(
    records: dict[int, dict[str, Any]], keys: dict[int, tuple[set[str], set[str]]], title: str, year: int | None
) -> list[tuple[int, str]]:
    """What a search must find, from every record in memory."""
    wanted, parts = match_key(title), partial_keys(title)
    found = []
    for tmdb_id, rec in records.items():
        full, partial = keys[tmdb_id]
        if not (wanted in full or wanted in partial or full & parts):
            continue
        found_year = release_year(rec)
        if year is not None and found_year is not None and abs(found_year - year) > 1:
            continue
        found.append((tmdb_id, display_title(rec)))
    return sorted(found)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the bundled snapshot's index (built as the refresh builds it)."""
    root = tmp_path_factory.mktemp("cache")
    assert TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=root).index.folder.is_dir()
    return root


def test_search_answers_what_every_record_answers(built: Path, tmp_path: Path) -> None:
    snapshot = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=built)
    records = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=tmp_path).records
    keys = naive_keys(records)
    queries = [(display_title(r), release_year(r)) for r in list(records.values())[::1999]]
    queries += [("The Lord of the Rings", None), ("Alien", 1979), ("Star Wars", None), ("Laputa", 1986)]
    hits = 0
    for title, year in queries:
        got = sorted((r["id"], r["title"]) for r in snapshot.search_movie(title, year))
        assert got == naive_search(records, keys, title, year), title
        hits += bool(got)
    assert hits >= len(queries) - 2
    result = snapshot.search_movie("Alien", 1979)[0]
    assert result["id"] == 348 and result["release_date"].startswith("1979")
    assert snapshot.movie_details(348) == records[348]
    assert snapshot.movie_details(-1) is None
    assert "records" not in snapshot.__dict__  # answered from the index, no record parsed


def test_the_index_is_built_once_per_snapshot_and_rebuilt_when_damaged_or_changed(tmp_path: Path) -> None:
    first = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=tmp_path / "cache")
    folder = first.index.folder
    assert folder.is_dir() and folder.parent.parent == tmp_path / "cache"
    built = (folder / KEYS_FILE).stat().st_mtime_ns
    again = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=tmp_path / "cache")
    assert again.search_movie("Alien", 1979)[0]["id"] == 348
    assert (folder / KEYS_FILE).stat().st_mtime_ns == built and "records" not in again.__dict__

    (folder / KEYS_FILE).write_bytes(b"not parquet")  # damaged: rebuilt, same answers
    damaged = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=tmp_path / "cache")
    assert damaged.search_movie("Alien", 1979)[0]["id"] == 348

    # another snapshot file (here: a few films, one renamed) gets its own index
    copy = tmp_path / "movies.jsonl.gz"
    rows = [damaged.movie_details(i) for i in (348, 11, 12)]
    for row in rows:
        if row["id"] == 348:
            row["title"] = "Alien Renamed For The Test"
    with gzip.open(copy, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    changed = TmdbSnapshot(copy, cache_root=tmp_path / "cache")
    assert changed.index.folder != folder
    assert [r["id"] for r in changed.search_movie("Alien Renamed For The Test", None)] == [348]


def test_many_single_lookups_read_every_record_once(built: Path) -> None:
    snapshot = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=built)
    ids = snapshot.index.films["tmdb_id"].to_list()[:80]
    details = [snapshot.movie_details(i) for i in ids]
    assert all(d is not None and d["id"] == i for d, i in zip(details, ids, strict=True))
    assert "records" in snapshot.__dict__  # past SINGLE_LOOKUPS the process reads them all


def test_an_empty_title_finds_nothing(built: Path) -> None:
    snapshot = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=built)
    assert snapshot.search_movie("") == [] and snapshot.search_movie("   ") == []


def test_an_unwritable_cache_folder_still_searches(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    snapshot = TmdbSnapshot(BUNDLED_SNAPSHOT, cache_root=blocked)
    assert snapshot.search_movie("Alien", 1979)[0]["id"] == 348
    assert not str(snapshot.index.folder).startswith(str(blocked))
