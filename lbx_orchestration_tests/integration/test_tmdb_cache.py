"""The DuckDB cache of raw TMDb responses, on real DuckDB files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lbx_orchestration.core.tmdb.cache import CachedResponse, TmdbCache

NOW = datetime(2025, 6, 1, 12, 0, 0)
ENDPOINTS = ("movie", "watch/providers:US")


def test_store_is_an_idempotent_upsert(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "lbx.duckdb")
    cache.store(550, "movie", 200, {"id": 550, "title": "Fight Club"})
    cache.store(550, "movie", 200, {"id": 550, "title": "Fight Club"})
    cache.store(550, "movie", 200, {"id": 550, "title": "Fight Club (2)"})
    assert cache.count() == 1
    assert cache.load([550], "movie")[550].body == {"id": 550, "title": "Fight Club (2)"}

    # A batch that repeats a key keeps the last one.
    cache.store_many(
        [
            CachedResponse(1, "movie", 500, None),
            CachedResponse(1, "movie", 200, {"id": 1, "title": "é ü 漢字"}),
            CachedResponse(1, "watch/providers:US", 200, {"id": 1, "results": {"US": None}}),
        ]
    )
    assert cache.count() == 3 and cache.count("movie") == 2
    assert cache.load([1], "movie")[1].body["title"] == "é ü 漢字"

    with duckdb.connect(str(tmp_path / "lbx.duckdb")) as con:
        rows = con.execute(
            "SELECT tmdb_id, endpoint, status, body->>'$.title' FROM tmdb.raw_responses ORDER BY tmdb_id, endpoint"
        ).fetchall()
    assert rows == [
        (1, "movie", 200, "é ü 漢字"),
        (1, "watch/providers:US", 200, None),
        (550, "movie", 200, "Fight Club (2)"),
    ]


def test_missing_respects_endpoints_404s_and_max_age(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "tmdb.duckdb")  # a file named like the schema still works
    old = NOW - timedelta(days=40)
    cache.store_many(
        [
            # 1: complete and fresh
            CachedResponse(1, "movie", 200, {"id": 1}, NOW),
            CachedResponse(1, "watch/providers:US", 200, {}, NOW),
            # 2: details only (the run stopped between the two requests)
            CachedResponse(2, "movie", 200, {"id": 2}, NOW),
            # 3: TMDb has no such film, recorded recently
            CachedResponse(3, "movie", 404, {"status_code": 34}, NOW),
            # 4: a 404 from long ago
            CachedResponse(4, "movie", 404, {"status_code": 34}, old),
            # 5: complete but old
            CachedResponse(5, "movie", 200, {"id": 5}, old),
            CachedResponse(5, "watch/providers:US", 200, {}, old),
            # 6: providers for another country only
            CachedResponse(6, "movie", 200, {"id": 6}, NOW),
            CachedResponse(6, "watch/providers:DE", 200, {}, NOW),
        ]
    )
    ids = [7, 6, 5, 4, 3, 2, 1, 7]
    assert cache.missing(ids, None, ENDPOINTS) == [7, 6, 2]
    month = timedelta(days=30)
    assert cache.missing(ids, month, ENDPOINTS, now=NOW) == [7, 6, 5, 4, 2]
    assert cache.missing(ids, None) == [7]  # details only
    assert cache.missing([], None) == []


def test_con_factory_and_short_lived_connections(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    opened: list[duckdb.DuckDBPyConnection] = []

    def factory() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path))
        opened.append(con)
        return con

    cache = TmdbCache(factory)
    cache.store(10, "movie", 200, {"id": 10})
    assert cache.missing([10, 11]) == [11]
    assert len(opened) == 2
    for con in opened:  # every connection was closed again
        with pytest.raises(duckdb.ConnectionException):
            con.execute("SELECT 1")
    # ... so another connection (another process, in real life) can open the file at once.
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT count(*) FROM tmdb.raw_responses").fetchall() == [(1,)]
