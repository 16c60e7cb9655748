"""DuckDB helpers: short connections and idempotent writes from Arrow/polars frames."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DUCKDB_PATH = REPO_ROOT / "data" / "lbx.duckdb"


def duckdb_path() -> Path:
    return Path(os.environ.get("LBX_DUCKDB_PATH", str(DEFAULT_DUCKDB_PATH)))


@contextmanager
def connect(path: str | Path | None = None, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    target = Path(path) if path is not None else duckdb_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


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


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> Any:
    """The first value of the first row. Fetches everything: duckdb 2.0 blocks a connection
    that still has unfetched rows."""
    rows = con.execute(query, params or []).fetchall()
    return rows[0][0] if rows and rows[0] else None


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Swap the whole table for ``frame`` atomically."""
    schema, _ = _split(table)
    arrow = frame.to_arrow()
    con.execute(f"create schema if not exists {schema}")
    con.register("_lbx_frame", arrow)
    try:
        con.execute(f"create or replace table {table} as select * from _lbx_frame")
    finally:
        con.unregister("_lbx_frame")
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
    schema, _ = _split(table)
    arrow = frame.to_arrow()
    con.execute(f"create schema if not exists {schema}")
    con.register("_lbx_frame", arrow)
    try:
        con.execute("begin transaction")
        if not table_exists(con, table):
            con.execute(f"create table {table} as select * from _lbx_frame limit 0")
        clauses, params = [], []
        for column, values in where.items():
            values = list(values)
            if not values:
                continue
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})")
            params.extend(values)
        if clauses:
            con.execute(f"delete from {table} where {' and '.join(clauses)}", params)
        con.execute(f"insert into {table} by name select * from _lbx_frame")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_lbx_frame")
    return frame.height


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
