"""A DuckDB cache of raw TMDb responses, so an interrupted fetch resumes where it stopped.

DuckDB lets one process write a file at a time, so every operation opens a short-lived
connection and closes it at once. Writes are upserts keyed on (tmdb_id, endpoint), so storing
the same response twice is harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from lbx_orchestration.core import lake
from lbx_orchestration.core.tables import TMDB_CACHE
from lbx_orchestration.core.tmdb.base import TmdbError

DETAILS_ENDPOINT = "movie"

_DDL = """
CREATE SCHEMA IF NOT EXISTS {catalog}.{schema};
CREATE TABLE IF NOT EXISTS {table} (
    tmdb_id BIGINT NOT NULL,
    endpoint VARCHAR NOT NULL,
    status INTEGER NOT NULL,
    body JSON,
    fetched_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tmdb_id, endpoint)
);
"""

_LOCK_RETRY_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def utc_now() -> datetime:
    """Naive UTC, the way the ``fetched_at TIMESTAMP`` column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class CachedResponse:
    tmdb_id: int
    endpoint: str
    status: int
    body: Any
    fetched_at: datetime | None = None


class TmdbCache:
    """``TmdbCache(path)`` or ``TmdbCache(con_factory)``.

    A factory must return a *new* connection on every call: the cache closes it after use.
    """

    def __init__(self, target: str | Path | Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._ready = False  # the schema exists (checked on first use)
        if callable(target):
            self._factory = target
            self.path: Path | None = None
        else:
            self.path = Path(target)
            if lake.is_lake(self.path):
                self._factory = lambda: lake.open_lake(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._factory = lambda: duckdb.connect(str(self.path))

    def __repr__(self) -> str:
        return f"TmdbCache({lake.describe(self.path) if self.path else 'con_factory'})"

    @contextmanager
    def _connect(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A fresh connection and the table's fully qualified name (a file called tmdb.duckdb
        makes a catalog ``tmdb`` that would clash with the schema ``tmdb``)."""
        con = self._open()
        try:
            (name,) = con.execute("SELECT current_database()").fetchall()[0]
            catalog = '"' + str(name).replace('"', '""') + '"'
            table = f"{catalog}.{TMDB_CACHE}"
            if not self._ready:
                con.execute(_DDL.format(catalog=catalog, schema=TMDB_CACHE.split(".")[0], table=table))
                self._ready = True
            yield con, table
        finally:
            con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        # Another process may hold the file's write lock for a moment: wait a little, then fail.
        for pause in (*_LOCK_RETRY_SECONDS, None):
            try:
                return self._factory()
            except duckdb.IOException as exc:
                if pause is None or "lock" not in str(exc).lower():
                    raise TmdbError(f"cannot open the TMDb cache {self!r}: {exc}") from exc
                time.sleep(pause)
        raise AssertionError("unreachable")

    def store(
        self,
        tmdb_id: int,
        endpoint: str,
        status: int,
        body: Any,
        fetched_at: datetime | None = None,
    ) -> None:
        self.store_many([CachedResponse(int(tmdb_id), endpoint, int(status), body, fetched_at)])

    def store_many(self, rows: Iterable[CachedResponse]) -> int:
        """Upsert responses in one transaction; the last one wins for a repeated key."""
        latest: dict[tuple[int, str], CachedResponse] = {}
        for row in rows:
            latest[(int(row.tmdb_id), row.endpoint)] = row
        if not latest:
            return 0
        now = utc_now()
        values = list(latest.values())
        incoming = pa.table(
            {
                "tmdb_id": pa.array([int(r.tmdb_id) for r in values], pa.int64()),
                "endpoint": pa.array([r.endpoint for r in values], pa.string()),
                "status": pa.array([int(r.status) for r in values], pa.int32()),
                "body": pa.array([None if r.body is None else json.dumps(r.body) for r in values], pa.string()),
                "fetched_at": pa.array([r.fetched_at or now for r in values], pa.timestamp("us")),
            }
        )
        with self._connect() as (con, table):
            con.register("incoming_tmdb_responses", incoming)
            con.execute(
                f"INSERT OR REPLACE INTO {table} "
                "SELECT tmdb_id, endpoint, status, body::JSON, fetched_at "
                "FROM incoming_tmdb_responses"
            )
        return len(values)

    def missing(
        self,
        ids: Iterable[int],
        max_age: timedelta | None = None,
        endpoints: Sequence[str] = (DETAILS_ENDPOINT,),
        now: datetime | None = None,
    ) -> list[int]:
        """Ids (in input order, deduplicated) that need fetching.

        An id is done when every endpoint has a fresh row, or when the first endpoint (the
        details) has a fresh 404: a film TMDb does not have is not asked again until the 404
        is older than ``max_age``. ``max_age=None`` means responses never go stale.
        """
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return []
        if not endpoints:
            raise ValueError("missing() needs at least one endpoint")
        cutoff = None if max_age is None else (now or utc_now()) - max_age
        fresh: dict[int, dict[str, int]] = {}
        id_table = pa.table({"tmdb_id": pa.array(wanted, pa.int64())})
        with self._connect() as (con, table):
            con.register("wanted_tmdb_ids", id_table)
            rows = con.execute(
                f"SELECT r.tmdb_id, r.endpoint, r.status FROM {table} r "
                "JOIN wanted_tmdb_ids w USING (tmdb_id) "
                "WHERE list_contains($endpoints, r.endpoint) "
                "AND ($cutoff::TIMESTAMP IS NULL OR r.fetched_at >= $cutoff::TIMESTAMP)",
                {"endpoints": list(endpoints), "cutoff": cutoff},
            ).fetchall()
        for tmdb_id, endpoint, status in rows:
            fresh.setdefault(int(tmdb_id), {})[endpoint] = int(status)
        primary = endpoints[0]
        out = []
        for tmdb_id in wanted:
            have = fresh.get(tmdb_id, {})
            if have.get(primary) == 404 or all(e in have for e in endpoints):
                continue
            out.append(tmdb_id)
        return out

    def load(self, ids: Iterable[int], endpoint: str) -> dict[int, CachedResponse]:
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return {}
        id_table = pa.table({"tmdb_id": pa.array(wanted, pa.int64())})
        with self._connect() as (con, table):
            con.register("wanted_tmdb_ids", id_table)
            rows = con.execute(
                f"SELECT r.tmdb_id, r.endpoint, r.status, r.body::VARCHAR, r.fetched_at "
                f"FROM {table} r JOIN wanted_tmdb_ids w USING (tmdb_id) WHERE r.endpoint = $e",
                {"e": endpoint},
            ).fetchall()
        return {
            int(t): CachedResponse(int(t), e, int(s), None if b is None else json.loads(b), f) for t, e, s, b, f in rows
        }

    def count(self, endpoint: str | None = None) -> int:
        with self._connect() as (con, table):
            row = con.execute(
                f"SELECT count(*) FROM {table} WHERE $e::VARCHAR IS NULL OR endpoint = $e",
                {"e": endpoint},
            ).fetchall()
        return int(row[0][0])
