"""DuckDB helpers: short connections and idempotent writes from Arrow/polars frames."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lbx_orchestration.core import lake
from lbx_orchestration.core.settings import duckdb_path

if TYPE_CHECKING:  # polars is imported by duckdb's .pl() when a frame is read: `lbx recs` never needs it
    import polars as pl


class WarehouseError(RuntimeError):
    """The warehouse file cannot be used; the message says why and what to do."""


class WarehouseBusy(WarehouseError):
    """Another process held the DuckDB file for longer than we were willing to wait."""


class WarehouseDamaged(WarehouseError):
    """The file is not a DuckDB database (truncated, overwritten, or from another tool)."""


_DAMAGED = re.compile(r"not a valid DuckDB database|Corrupt|checksum|Could not read enough bytes", re.I)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(message: str) -> str:
    """'pid 123 (lbx import …)' from DuckDB's lock error, with the holder's command line when readable."""
    found = _LOCK_HOLDER.search(message)
    if not found:
        return "another process"
    pid = found["pid"]
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = found["exe"]
    return f"pid {pid} ({cmdline[:120]})"


_HEADER_SIZE = 4096  # DuckDB's main header, then two database headers, then the blocks
_MAGIC = b"DUCK"


def damage(path: Path) -> str | None:
    """Why the DuckDB file at ``path`` cannot be trusted, read from its headers (None if it can).

    DuckDB opens a truncated copy without complaint and fails only when it reads a missing
    block, possibly after writing to it. The active database header (the one with the higher
    iteration) says how many blocks of what size the file holds; a shorter file lost data.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(3 * _HEADER_SIZE)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if size < 3 * _HEADER_SIZE:
        return f"it is {size:,} bytes, shorter than a DuckDB file's headers"
    if head[8:12] != _MAGIC:
        return "it does not start like a DuckDB file"
    headers = [struct.unpack_from("<QqqQQ", head, offset + 8) for offset in (_HEADER_SIZE, 2 * _HEADER_SIZE)]
    _, _, _, blocks, block_size = max(headers, key=lambda h: h[0])
    if not 0 < block_size <= 2**30 or 3 * _HEADER_SIZE + blocks * block_size <= size:
        return None
    # the header counts free blocks too, and DuckDB cuts free blocks off the end of the file:
    # only a block still in use past the end means lost data. DuckDB itself says which are.
    highest = _highest_used_block(path)
    if isinstance(highest, str):
        return highest
    needed = 3 * _HEADER_SIZE + (highest + 1) * block_size if highest is not None else 0
    if size < needed:
        return f"it is {size:,} bytes but holds data up to byte {needed:,}: the file was truncated"
    return None


def _highest_used_block(path: Path) -> int | str | None:
    """The highest block id in use (metadata and every table's segments), a string saying why the
    file cannot be read, or None when it cannot be told now (another process writes it)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        return None if _is_lock_error(exc) else f"DuckDB cannot open it: {str(exc).splitlines()[0]}"
    try:
        highest = scalar(con, "select max(block_id) from pragma_metadata_info()") or 0
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
        for schema, table in tables:
            used = scalar(
                con,
                "select max(greatest(block_id, coalesce(list_max(additional_block_ids), -1))) "
                "from pragma_storage_info(?) where persistent",
                [f'"{schema}"."{table}"'],
            )
            highest = max(highest, used or 0)
        return int(highest)
    except duckdb.Error as exc:
        return f"DuckDB cannot read it: {str(exc).splitlines()[0]}"
    finally:
        con.close()


def check_intact(path: Path) -> None:
    """Raise WarehouseDamaged (naming the file and the cause) before anything opens a damaged file."""
    if lake.is_lake(path) or not path.exists() or path.is_dir():
        return
    why = damage(path)
    if why is not None:
        raise WarehouseDamaged(
            f"the warehouse {path} is damaged ({why}); nothing was read from it or written to it. "
            "Move it aside and rebuild it with `make demo` (members re-import their exports)"
        )


def _is_lock_error(exc: BaseException) -> bool:
    return "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)


def open_with_wait(
    path: str | Path,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting with a bounded back-off while another process holds it.

    DuckDB allows one writing process per file: a nightly refresh, an import or a SQL shell can
    hold it for a while. We retry (0.2 s doubling to 5 s) for at most ``wait_seconds`` and report
    each wait through ``on_wait``; then WarehouseBusy names the holder. A file that is not a
    DuckDB database raises WarehouseDamaged naming the file.
    """
    if lake.is_lake(path):
        # a lake has no file lock: its catalogue orders concurrent writers (conflicts retry)
        try:
            return lake.open_lake(path, read_only=read_only)
        except lake.LakeError as exc:
            raise WarehouseError(str(exc)) from None
        except duckdb.Error as exc:
            why = lake.scrub(str(exc))  # DuckDB quotes a Postgres DSN, password included
            raise WarehouseError(f"the warehouse {lake.describe(path)} cannot be attached: {why}") from None
    target = Path(path)
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    delay = 0.2
    check_intact(target)
    while True:
        try:
            return duckdb.connect(str(target), read_only=read_only)
        except duckdb.Error as exc:
            message = str(exc)
            if not _is_lock_error(exc):
                if _DAMAGED.search(message):
                    raise WarehouseDamaged(
                        f"the warehouse {target} is damaged or not a DuckDB file ({message}); move it "
                        "aside and rebuild it with `make demo` (members re-import their exports)"
                    ) from exc
                raise
            holder = lock_holder(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseBusy(
                    f"the warehouse {target} is in use by {holder}, and stayed so for {wait_seconds:g} s: "
                    "wait for it to finish (a refresh, an import or a SQL shell) and try again"
                ) from exc
            if on_wait is not None:
                on_wait(f"the warehouse is in use by {holder}; waiting (up to {remaining:.0f} s more)")
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


@contextmanager
def connect(
    path: str | Path | None = None,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    target = Path(path) if path is not None else duckdb_path()
    if not read_only:
        ensure_parent(target)
    con = open_with_wait(target, read_only=read_only, wait_seconds=wait_seconds, on_wait=on_wait)
    try:
        yield con
    finally:
        con.close()


def exists(target: str | Path) -> bool:
    return lake.exists(target) if lake.is_lake(target) else Path(target).exists()


def ensure_parent(target: str | Path) -> None:
    """The folder of a warehouse file exists (a fresh clone has no data/); a lake makes its own."""
    if not lake.is_lake(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "main", name


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = _split(table)
    return bool(
        scalar(
            con,
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        )
    )


def column_exists(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    schema, name = _split(table)
    query = (
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?"
    )
    return bool(scalar(con, query, [schema, name, column]))


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> Any:
    """The first value of the first row. Fetches everything: duckdb 2.0 blocks a connection
    that still has unfetched rows."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows and rows[0] else None


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame]) -> Iterator[None]:
    """Each frame readable by SQL under its name for the block, and unregistered after it."""
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block in one transaction: committed at its end, rolled back on any error."""
    try:
        con.execute("begin transaction")
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Swap the whole table for ``frame`` atomically."""
    schema, _ = _split(table)
    con.execute(f"create schema if not exists {schema}")
    with registered(con, {"_lbx_frame": frame}):
        con.execute(f"create or replace table {table} as select * from _lbx_frame")
    return frame.height


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    where: dict[str, Sequence[Any]],
) -> int:
    """Delete the rows matching ``where`` (column -> values) and insert ``frame``, in one transaction.

    This is how a partition (a scrape date, a user) is rewritten: running it twice leaves the
    same rows, and a failure leaves the old rows in place.
    """
    replace_many(con, {table: (frame, where)})
    return frame.height


def replace_many(
    con: duckdb.DuckDBPyConnection,
    writes: dict[str, tuple[pl.DataFrame, dict[str, Sequence[Any]] | None]],
) -> None:
    """``replace_rows`` for several tables in ONE transaction: all are written, or none.

    Each table maps to (frame, where); ``where`` None appends without deleting. A column
    given several values matches any of them; several columns must all match.
    """
    views = {table: f"_lbx_frame_{i}" for i, table in enumerate(writes)}
    for table in writes:
        con.execute(f"create schema if not exists {_split(table)[0]}")
    with registered(con, {views[table]: frame for table, (frame, _) in writes.items()}), transaction(con):
        for table, (_, where) in writes.items():
            view = views[table]
            if not table_exists(con, table):
                con.execute(f"create table {table} as select * from {view} limit 0")
            else:
                _add_missing_columns(con, table, view)
            clauses, params = [], []
            for column, values in (where or {}).items():
                values = list(values)
                clauses.append(f"{column} in ({', '.join('?' for _ in values)})" if values else "false")
                params.extend(values)
            if clauses:
                con.execute(f"delete from {table} where {' and '.join(clauses)}", params)
            con.execute(f"insert into {table} by name select * from {view}")


def _add_missing_columns(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    """A table written by an older lbx gains the columns a newer one writes (as nulls)."""
    have = {r[0] for r in con.execute(f"describe {table}").fetchall()}
    for name, kind, *_ in con.execute(f"describe {view}").fetchall():
        if name not in have:
            con.execute(f'alter table {table} add column "{name}" {kind}')


def read_frame(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> pl.DataFrame:
    return con.sql(query, params=params).pl() if params else con.sql(query).pl()


def markdown_preview(frame: pl.DataFrame, n: int = 10) -> str:
    head = frame.head(n)
    if head.width == 0:
        return "(empty)"
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)
