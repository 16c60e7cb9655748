"""DuckLake warehouses: a SQL catalogue (SQLite or Postgres) over Parquet files (a folder or S3).

A DuckLake target is a string ``ducklake:sqlite:PATH`` or ``ducklake:postgres:DSN``. Each
connection is an in-memory DuckDB that attaches the lake as ``lbx`` and makes it the default
catalogue, so every query that reads ``raw.member_keys`` on a file reads the same table here.
Extensions come from the ``duckdb-extension-*`` wheels (nothing is downloaded).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import duckdb

from lbx_orchestration.core import settings

PREFIX = "ducklake:"
ALIAS = "lbx"


class LakeError(RuntimeError):
    """The DuckLake warehouse cannot be attached; the message names the setting to fix."""


def is_lake(target: str | Path) -> bool:
    return str(target).startswith(PREFIX)


def catalogue_kind(target: str | Path) -> str:
    """'sqlite' or 'postgres' (what the catalogue lives in). A Postgres DSN must be libpq's
    keyword form without a password: the target travels in logs, dbt's vars and run metadata,
    so the password comes from PGPASSWORD (and a URI's '//' would not survive as a path)."""
    kind, _, rest = str(target)[len(PREFIX) :].partition(":")
    if kind not in ("sqlite", "postgres"):
        raise LakeError(f"LBX_WAREHOUSE names a DuckLake catalogue in {kind!r}; lbx knows sqlite and postgres")
    if kind == "postgres" and (rest.startswith(("postgres:", "postgresql:")) or "password" in rest.lower()):
        raise LakeError(
            "LBX_WAREHOUSE=ducklake:postgres: takes libpq's keyword form without a password "
            "('host=… port=… user=… dbname=…'); put the password in PGPASSWORD"
        )
    return kind


def sqlite_path(target: str | Path) -> Path | None:
    text = str(target)
    return Path(text[len(PREFIX + "sqlite:") :]).absolute() if text.startswith(PREFIX + "sqlite:") else None


def absolute(target: str | Path) -> str:
    """The target with a SQLite catalogue's path made absolute (dbt runs in dbt_features/)."""
    local = sqlite_path(target)
    return f"{PREFIX}sqlite:{local}" if local is not None else str(target)


def data_path(target: str | Path) -> str:
    """The setting, else a folder beside a SQLite catalogue; a Postgres catalogue must be told."""
    configured = settings.lake_data_path()
    if configured:
        if "://" not in configured:
            configured = str(Path(configured).absolute())
        return configured if configured.endswith("/") else configured + "/"
    local = sqlite_path(target)
    if local is None:
        raise LakeError("a DuckLake warehouse on Postgres needs LBX_WAREHOUSE_DATA (a folder or s3://bucket/prefix/)")
    return f"{local}.files/"


def _extension_file(name: str) -> Path:
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise LakeError(f"the DuckDB extension {name} is not installed (pip package {package.replace('_', '-')})")
    found = next(Path(spec.origin).parent.rglob(f"{name}.duckdb_extension"), None)
    if found is None:
        raise LakeError(f"the package {package} holds no {name}.duckdb_extension")
    return found


def load_extensions(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """LOAD each extension, installing it from its wheel into the project's extension folder first."""
    folder = settings.duckdb_extension_dir().absolute()
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"set extension_directory = '{_quote(str(folder))}'")
    for name in names:
        try:
            con.execute(f"load {name}")
        except duckdb.Error:  # not installed yet, or a broken copy: install it again from its wheel
            con.execute(f"force install '{_quote(str(_extension_file(name)))}'")
            con.execute(f"load {name}")


def needed_extensions(target: str | Path) -> list[str]:
    names = ["ducklake", "sqlite_scanner" if catalogue_kind(target) == "sqlite" else "postgres"]
    if data_path(target).startswith("s3://"):
        names.append("httpfs")
    return names


def attach(con: duckdb.DuckDBPyConnection, target: str | Path, alias: str = ALIAS, read_only: bool = False) -> None:
    """Attach the lake to ``con`` as ``alias`` (extensions, the S3 secret, the catalogue)."""
    load_extensions(con, needed_extensions(target))
    files = data_path(target)
    if files.startswith("s3://"):
        _create_s3_secret(con)
    local = sqlite_path(target)
    if local is not None and not read_only:
        local.parent.mkdir(parents=True, exist_ok=True)
    if not files.startswith("s3://") and not read_only:
        Path(files).mkdir(parents=True, exist_ok=True)
    options = [f"data_path '{_quote(files)}'"] + (["read_only"] if read_only else [])
    con.execute(f"attach '{_quote(absolute(target))}' as {alias} ({', '.join(options)})")


def open_lake(target: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        attach(con, target, ALIAS, read_only=read_only)
        con.execute(f"use {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def _create_s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    s3 = settings.s3_settings()
    if s3 is None:
        raise LakeError("LBX_WAREHOUSE_DATA is on S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    fields = [
        "type s3",
        f"key_id '{_quote(s3['key_id'])}'",
        f"secret '{_quote(s3['secret'])}'",
        f"region '{_quote(s3['region'])}'",
        f"use_ssl {s3['use_ssl']}",
    ]
    if s3["endpoint"]:
        fields += [f"endpoint '{_quote(s3['endpoint'])}'", "url_style 'path'"]
    # a temporary secret: it lives in this connection only and is never written to disk
    con.execute(f"create or replace temporary secret lbx_s3 ({', '.join(fields)})")


def _quote(text: str) -> str:
    return text.replace("'", "''")


def scrub(text: str) -> str:
    """``text`` with every ``password=...`` of a DSN blanked (DuckDB's errors quote the DSN)."""
    text = re.sub(r"(?i)(password\s*=\s*)('[^']*'|\S+)", r"\1***", text)
    return re.sub(r"(//[^/@\s:]+:)[^@\s/]+@", r"\1***@", text)  # a URI's user:password@


def describe(target: str | Path) -> str:
    """The target without credentials, for logs and metadata (a Postgres DSN may hold a password)."""
    text = str(target)
    if not is_lake(text):
        return text
    return scrub(text)


def exists(target: str | Path) -> bool:
    """A SQLite catalogue is a file; a Postgres one is taken to exist (attaching says if not)."""
    local = sqlite_path(target)
    return local.exists() if local is not None else True


def version(target: str | Path) -> tuple[int, float] | None:
    """The lake's newest snapshot id and its time (epoch seconds): what changes on every commit."""
    con = open_lake(target, read_only=True)
    try:
        rows = con.execute(
            f"select snapshot_id, epoch(snapshot_time) from ducklake_snapshots('{ALIAS}') "
            "order by snapshot_id desc limit 1"
        ).fetchall()
    finally:
        con.close()
    return (int(rows[0][0]), float(rows[0][1])) if rows else None
