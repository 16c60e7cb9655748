"""`lbx sql`: read-only SQL on the warehouse, one query or a small interactive shell.

PyPI's duckdb CLI lags the duckdb Python package (it cannot read a file written by DuckDB 2.0),
so lbx ships its own shell on the package it already installs. Every statement opens the file
read-only and closes it again, so an idle shell never keeps a writer (dbt, an import) waiting.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import duckdb

from lbx_orchestration.core.tables import RECOMMENDATIONS
from lbx_orchestration.core.warehouse import WarehouseError, open_with_wait

PROMPT, MORE = "lbx> ", "...> "
TABLES = (
    "select table_schema || '.' || table_name as name, lower(table_type) as type "
    "from information_schema.tables order by 1"
)
HELP = (
    "Read-only SQL on {db}. End a statement with ';'. Try:\n  show all tables;\n"
    f"  select rank, title, year, reason from {RECOMMENDATIONS} where username = 'patrickmjones' order by rank;\n"
    ".tables lists the tables, .quit (or Ctrl-D) leaves."
)


class SqlError(Exception):
    """A statement the shell could not run, with a message for the user."""


def run(
    db: Path,
    statement: str,
    out: TextIO,
    max_rows: int,
    csv: bool = False,
    wait: float = 30.0,
    on_wait: Callable[[str], None] | None = None,
) -> None:
    """Run ``statement`` (one or more ';'-separated) read-only and print the last result.

    While another process writes the file, wait up to ``wait`` seconds (reported through ``on_wait``).
    """
    try:
        con = open_with_wait(db, read_only=True, wait_seconds=wait, on_wait=on_wait)
    except WarehouseError as exc:
        raise SqlError(str(exc)) from exc
    except duckdb.Error as exc:
        raise SqlError(f"cannot open {db}: {exc}") from exc
    try:
        relation = con.sql(statement)
        if relation is None:
            return
        if csv:
            out.write(relation.pl().write_csv())
        else:
            _show(relation, out, max_rows)
    except duckdb.Error as exc:
        message = str(exc)
        if "read-only mode" in message:
            message += " (lbx sql opens the warehouse read-only: the graph writes it)"
        raise SqlError(message) from exc
    finally:
        con.close()


def _show(relation: duckdb.DuckDBPyRelation, out: TextIO, max_rows: int) -> None:
    if out is sys.stdout:
        relation.show(max_rows=max_rows)
        return
    # show() prints to sys.stdout: point it at `out` for the call
    previous, sys.stdout = sys.stdout, out
    try:
        relation.show(max_rows=max_rows)
    finally:
        sys.stdout = previous


def statements(lines: Iterator[str]) -> Iterator[str]:
    """Complete statements (ending in ';') from lines; dot commands are whole lines."""
    buffer: list[str] = []
    for line in lines:
        if not buffer and line.strip().startswith("."):
            yield line.strip()
            continue
        buffer.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(buffer)
            buffer = []
    if "".join(buffer).strip():
        yield "\n".join(buffer)


def _prompted_lines(stdin: TextIO, stdout: TextIO) -> Iterator[str]:
    pending = False  # inside a statement that has not reached its ';'
    while True:
        stdout.write(MORE if pending else PROMPT)
        stdout.flush()
        line = stdin.readline()
        if not line:
            stdout.write("\n")
            return
        line = line.rstrip("\n")
        yield line
        if line.rstrip().endswith(";"):
            pending = False
        elif line.strip() and not (not pending and line.strip().startswith(".")):
            pending = True


def shell(
    db: Path, stdin: TextIO, stdout: TextIO, stderr: TextIO, max_rows: int, interactive: bool, wait: float = 30.0
) -> int:
    """Statements from ``stdin``; an error is reported and the shell goes on. Exit 1 if any failed."""
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        stdout.write(HELP.format(db=db) + "\n")
    lines = _prompted_lines(stdin, stdout) if interactive else (line.rstrip("\n") for line in stdin)
    failed = False
    for statement in statements(lines):
        command = statement.strip()
        if command in (".quit", ".exit"):
            break
        if command == ".tables":
            command = TABLES
        elif command.startswith("."):
            stderr.write(f"unknown command {command}: .tables, .quit\n")
            continue
        try:
            run(db, command, stdout, max_rows, wait=wait, on_wait=lambda m: stderr.write(f"lbx: {m}\n"))
        except SqlError as exc:
            failed = True
            stderr.write(f"error: {exc}\n")
    return 1 if failed else 0
