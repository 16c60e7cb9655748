"""A read-only copy of what the web service serves, exported from the warehouse and swapped
atomically, so requests never touch the file Dagster writes.

DuckDB lets one process write a file, and a reader in another process cannot open it while the
writer holds it. So the service never reads the warehouse per request: a refresher attaches
it read-only only when it is not being written and has changed, copies the serving tables into
a new side file (``serving-<n>.duckdb``), renames it into place (``serving.duckdb``), loads it
into memory and swaps one reference. While a writer holds the warehouse the attach fails at
once and the service keeps serving the last copy; a restart during a refresh loads the last
side file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lbx_orchestration.core import lake
from lbx_orchestration.core import tables as t
from lbx_orchestration.core.member_films import all_member_observations_sql
from lbx_orchestration.core.warehouse import WarehouseDamaged, check_intact
from lbx_orchestration.web.data import member_seen_sql

log = logging.getLogger(__name__)
SIDE_FILE = "serving.duckdb"


@dataclass(frozen=True)
class Signature:
    """What changes when the warehouse is written: size and mtime of the file and its WAL."""

    parts: tuple[tuple[int, int], ...]
    newest_mtime: float


def signature(db: Path) -> Signature | None:
    if lake.is_lake(db):
        if not lake.exists(db):
            return None
        found = lake.version(db)  # a lake changes by snapshots, not by a file's mtime
        return Signature(((found[0], 0),), found[1]) if found else None
    if not db.exists():
        return None
    parts, newest = [], 0.0
    for p in (db, db.with_name(db.name + ".wal")):
        try:
            st = p.stat()
        except FileNotFoundError:
            parts.append((0, 0))
            continue
        parts.append((st.st_size, st.st_mtime_ns))
        newest = max(newest, st.st_mtime)
    return Signature(tuple(parts), newest)


def _has_tv_column(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the attached warehouse's film resolutions tell TV apart (older ones do not)."""
    schema, name = t.RESOLUTION.split(".")
    query = (
        "select count(*) from information_schema.columns where table_catalog = 'src' "
        "and table_schema = ? and table_name = ? and column_name = 'media_type'"
    )
    return bool(con.execute(query, [schema, name]).fetchall()[0][0])


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'src' "
            "and table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


# side table -> (source tables that must exist, select over the attached warehouse ``src``)
EXPORTS: dict[str, tuple[tuple[str, ...], str]] = {
    "recommendations": ((t.RECOMMENDATIONS,), f"select * from src.{t.RECOMMENDATIONS}"),
    "new_for_you": ((t.NEW_FOR_YOU,), f"select * from src.{t.NEW_FOR_YOU}"),
    "model_metrics": ((t.MODEL_METRICS,), f"select * from src.{t.MODEL_METRICS}"),
    "films": (
        (t.CATALOG, t.TMDB_MOVIES),
        f"""select tmdb_id, coalesce(m.title, c.title) as title, m.original_title,
                   coalesce(m.year, c.year) as year, m.runtime, m.overview, m.genres, m.directors, m.cast_top,
                   m.keywords, m.providers, m.poster_path, m.poster_url, m.vote_count, m.popularity,
                   m.original_language
            from src.{t.CATALOG} c full join src.{t.TMDB_MOVIES} m using (tmdb_id)""",
    ),
    # films of the release-month catalogue nobody has logged: new_for_you's, searchable too
    "catalog_films": (
        (t.TMDB_CATALOG,),
        f"""select tmdb_id, title, original_title, year, runtime, overview, genres, directors, cast_top, keywords,
                   providers, poster_path, poster_url, vote_count, popularity, original_language
            from src.{t.TMDB_CATALOG}""",
    ),
    # the other names a film is known by (MovieLens' title and "also known as"): search finds them
    "film_names": (
        (t.TMDB_RAW,),
        f"""select tmdb_id, list_filter([json_extract_string(body, '$._lbx.movielens_title'),
                   json_extract_string(body, '$._lbx.movielens_aka')], lambda x: x is not null) as alt_titles
            from src.{t.TMDB_RAW}""",
    ),
    "tmdb_sources": ((t.TMDB_RAW,), f"select source_kind, count(*) as films from src.{t.TMDB_RAW} group by 1"),
    "interactions": ((t.INTERACTIONS,), f"select user_key, tmdb_id from src.{t.INTERACTIONS} where seen"),
    "resolution": ((t.RESOLUTION,), f"select film_key, tmdb_id from src.{t.RESOLUTION} where tmdb_id is not null"),
    "watchlist": (
        (t.REVIEWS, t.RESOLUTION),
        f"""select distinct r.user_key, coalesce(r.tmdb_id, res.tmdb_id) as tmdb_id
            from src.{t.REVIEWS} r left join src.{t.RESOLUTION} res using (film_key)
            where r.kind = 'watchlist' and coalesce(r.tmdb_id, res.tmdb_id) is not null""",
    ),
    "imports": ((t.EXPORT_IMPORTS,), f"select username, source_name from src.{t.EXPORT_IMPORTS}"),
    "lists": ((t.EXPORT_LISTS,), f"select * from src.{t.EXPORT_LISTS}"),
    # each member's films with ratings and watchlist: a filtered list folds the member in from them
    "member_observations": ((t.STG_REVIEWS,), all_member_observations_sql(f"src.{t.STG_REVIEWS}")),
    # what each Letterboxd member has seen, by id and by the title they logged: "more like this"
    # leaves it out and search marks it
    "member_seen": ((t.STG_REVIEWS,), member_seen_sql(f"src.{t.STG_REVIEWS}", resolution=None)),
}


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse for writing."""


def export_serving_tables(db: Path, target: Path) -> list[str]:
    """Copy the serving tables of ``db`` into a new DuckDB file ``target``. Raises
    WarehouseBusy at once when a writer holds ``db``."""
    check_intact(db)  # never attach a truncated warehouse: DuckDB would read past its end
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        try:
            if lake.is_lake(db):
                lake.attach(con, db, "src", read_only=True)
            else:
                con.execute(f"attach '{db}' as src (read_only)")
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise WarehouseBusy(f"{db} is being written by another process") from exc
            raise
        written = []
        try:
            for name, (needs, query) in EXPORTS.items():
                if all(_exists(con, n) for n in needs):
                    if name == "member_seen" and _has_tv_column(con):
                        query = member_seen_sql(f"src.{t.STG_REVIEWS}", resolution=f"src.{t.RESOLUTION}")
                    con.execute(f"create table {name} as {query}")
                    written.append(name)
        finally:
            con.execute("detach src")
        con.execute("checkpoint")
        return written
    except BaseException:
        con.close()
        target.unlink(missing_ok=True)
        raise
    finally:
        try:
            con.close()
        except duckdb.Error:
            pass


class SnapshotManager:
    """Keeps ``current`` (whatever ``load`` builds from a side file) fresh.

    ``lock`` serialises everything in this process that opens the warehouse (the export here,
    imports in the app): DuckDB refuses two connections to one file with different settings.
    """

    def __init__(self, db: Path, directory: Path, load: Callable[[Path], object], settle_seconds: float = 1.0) -> None:
        self.db = Path(db)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.load = load
        self.settle_seconds = settle_seconds
        self.lock = threading.RLock()
        self.current: object | None = None
        self.source_signature: Signature | None = None
        self.built_at: float | None = None
        self.last_error: str | None = None
        self.busy_since: float | None = None
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter = 0

    @property
    def side_file(self) -> Path:
        return self.directory / SIDE_FILE

    def start(self) -> None:
        """Serve at once: from a fresh export, or from the last side file while a writer works."""
        if not self.refresh() and self.current is None and self.side_file.exists():
            self.current = self.load(self.side_file)
            self.built_at = self.side_file.stat().st_mtime
            log.warning("serving the previous snapshot %s: %s", self.side_file, self.last_error)

    def refresh(self, force: bool = False) -> bool:
        """Export and swap if the warehouse changed and nobody writes it. True if swapped."""
        sig = signature(self.db)
        if sig is None:
            self.last_error = f"no warehouse at {self.db}: run `lbx demo` (make demo) first"
            return False
        if not force and sig == self.source_signature:
            return False
        if not force and time.time() - sig.newest_mtime < self.settle_seconds:
            # being written right now: wait until it settles
            self.busy_since = self.busy_since or time.time()
            self.last_error = f"{self.db} changed under {self.settle_seconds:g} s ago: waiting for the writer"
            return False
        with self.lock:
            self._counter += 1
            tmp = self.directory / f"serving-{os.getpid()}-{self._counter}.duckdb"
            try:
                export_serving_tables(self.db, tmp)
            except WarehouseBusy as exc:
                self.busy_since = self.busy_since or time.time()
                self.last_error = str(exc)
                return False
            except (duckdb.Error, OSError, WarehouseDamaged) as exc:
                self.last_error = f"snapshot failed: {exc}"
                log.warning(self.last_error)
                return False
        if signature(self.db) != sig:  # written while we copied: take it again next time
            tmp.unlink(missing_ok=True)
            return False
        try:
            data = self.load(tmp)
        except (ValueError, duckdb.Error, OSError) as exc:  # e.g. the graph has not been materialized yet
            tmp.unlink(missing_ok=True)
            self.source_signature = sig  # not again until the warehouse changes
            self.last_error = str(exc)
            log.warning("snapshot not served: %s", exc)
            return False
        os.replace(tmp, self.side_file)
        self.current = data  # the swap: one reference assignment
        self.source_signature = sig
        self.built_at = time.time()
        self.busy_since = None
        self.last_error = None
        self.refreshes += 1
        return True

    def public_status(self) -> dict:
        """What any client may see: no paths, no pids, no command lines (those are logged)."""
        state = "ok" if self.last_error is None else "busy" if self.busy_since else "stale"
        return {
            "state": state,
            "built_at": self.built_at,
            "age_seconds": round(time.time() - self.built_at, 1) if self.built_at else None,
            "refreshes": self.refreshes,
            "warehouse_busy_since": self.busy_since,
        }

    def run_in_background(self, interval: float = 2.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # keep serving the last snapshot whatever happens
                    log.exception("snapshot refresh failed")

        self._thread = threading.Thread(target=loop, name="lbx-snapshot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
