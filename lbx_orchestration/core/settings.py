"""Every setting lbx takes from the environment, and the defaults shared across modules.

This is the one module that reads ``os.environ`` (pure Python, no Dagster). Values are read
when asked, not at import, so a test or a child process that sets a variable sees it; an
empty variable counts as unset. ``resources.py`` turns these into Dagster resources; the CLI
and the core call them directly. Nothing in lbx writes the environment at run time.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

# --- where things are --------------------------------------------------------------------
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lbx_orchestration/
REPO_ROOT = PACKAGE_DIR.parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data"
BUNDLED_MOVIELENS_DIR = SAMPLE_DATA_DIR / "movielens"
BUNDLED_EXPORTS_DIR = SAMPLE_DATA_DIR / "letterboxd_exports"
BUNDLED_SNAPSHOT = SAMPLE_DATA_DIR / "tmdb" / "movies.jsonl.gz"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_features"

#: the scrape date of the bundled sample (MovieLens and the three exports were gathered then)
SAMPLE_SCRAPE_DATE = dt.date(2026, 11, 1)
SCRAPE_DATES_START = "2024-01-01"

# --- defaults shared by the core, the assets, the CLI and the scripts ---------------------
#: a held-out rating at or above this is relevant; a rated film at or above it is "liked"
RELEVANCE = 3.5
SEED = 42
#: the served model must reach this multiple of popularity's NDCG@10 ...
GATE_POPULARITY_FACTOR = 1.3
#: ... and stay within this relative distance of the last accepted champion's
GATE_CHAMPION_TOLERANCE = 0.02

# --- the environment ---------------------------------------------------------------------
TMDB_API_KEY_ENV = "TMDB_API_KEY"
TMDB_READ_TOKEN_ENV = "TMDB_READ_TOKEN"
CRAWL_SETTINGS_ENV = "LBX_CRAWL_SETTINGS"
DAGSTER_PIPES_ENV = "DAGSTER_PIPES_CONTEXT"  # dagster_pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR


def _get(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _path(name: str, default: Path) -> Path:
    value = _get(name)
    return Path(value) if value else default


def duckdb_path() -> Path:
    """The warehouse: ``LBX_WAREHOUSE`` (a DuckDB file, ``ducklake:sqlite:PATH`` or
    ``ducklake:postgres:DSN``), else the file ``LBX_DUCKDB_PATH``, else data/lbx.duckdb.

    A DuckLake target travels as a Path like a file does; ``core.lake`` tells them apart.
    """
    return Path(_get("LBX_WAREHOUSE") or _get("LBX_DUCKDB_PATH") or REPO_ROOT / "data" / "lbx.duckdb")


def lake_data_path() -> str | None:
    """Where a DuckLake warehouse keeps its Parquet files: a folder or ``s3://bucket/prefix/``
    (``LBX_WAREHOUSE_DATA``). Needed when the catalogue is created; stored in it after."""
    return _get("LBX_WAREHOUSE_DATA")


def s3_settings() -> dict[str, str] | None:
    """S3-compatible storage for DuckLake's files: endpoint (host:port) and keys from the environment."""
    key, secret = _get("AWS_ACCESS_KEY_ID"), _get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return None
    endpoint = _get("LBX_S3_ENDPOINT") or ""
    loopback = endpoint.startswith(("127.0.0.1", "localhost", "[::1]"))
    return {
        "key_id": key,
        "secret": secret,
        "endpoint": endpoint,
        "region": _get("AWS_REGION") or "us-east-1",
        "use_ssl": _truthy(_get("LBX_S3_USE_SSL") or ("false" if loopback else "true")),
    }


def _truthy(value: str) -> str:
    return "true" if value.strip().lower() in ("1", "true", "yes", "on") else "false"


def duckdb_extension_dir() -> Path:
    """DuckDB's extension_directory (``LBX_DUCKDB_EXTENSIONS``): inside the project, so that a
    CI run as another user finds what the first run installed from the wheels."""
    return _path("LBX_DUCKDB_EXTENSIONS", REPO_ROOT / ".duckdb" / "extensions")


def executor() -> str:
    """How a run executes its steps (``LBX_EXECUTOR``): ``in_process`` (default) or ``celery``."""
    value = (_get("LBX_EXECUTOR") or "in_process").lower()
    if value not in ("in_process", "celery"):
        raise ValueError(f"LBX_EXECUTOR={value!r}: lbx knows in_process and celery")
    return value


def data_dir() -> Path:
    return _path("LBX_DATA_DIR", REPO_ROOT / "data")


def models_dir() -> Path:
    """Model artifacts (``LBX_MODELS_DIR``, else ``<data dir>/models``)."""
    return _path("LBX_MODELS_DIR", data_dir() / "models")


def inbox_dir() -> Path:
    """Where the inbox sensor looks for new exports (``LBX_INBOX_DIR``)."""
    return _path("LBX_INBOX_DIR", REPO_ROOT / "inbox")


def movielens_dir() -> Path:
    """A MovieLens-format folder: ``LBX_MOVIELENS_DIR``, else ``movielens_dir`` in
    data/settings.toml (written by ``lbx fetch movielens``), else the bundled ml-latest-small."""
    from lbx_orchestration.core.movielens.settings_file import movielens_dir_setting

    return Path(movielens_dir_setting(str(BUNDLED_MOVIELENS_DIR)))


def export_dirs() -> list[str]:
    """Folders of Letterboxd exports (``LBX_EXPORT_DIRS``, ``:``-separated)."""
    return (_get("LBX_EXPORT_DIRS") or str(BUNDLED_EXPORTS_DIR)).split(os.pathsep)


def tmdb_snapshot() -> Path:
    """The offline TMDb snapshot (``LBX_TMDB_SNAPSHOT``, else the bundled one)."""
    return _path("LBX_TMDB_SNAPSHOT", BUNDLED_SNAPSHOT)


def tmdb_api_key() -> str | None:
    return _get(TMDB_API_KEY_ENV)


def tmdb_read_token() -> str | None:
    return _get(TMDB_READ_TOKEN_ENV)


def tmdb_live() -> bool:
    """True when a TMDb credential is set: then TMDb is the live API, else the snapshot."""
    return bool(tmdb_api_key() or tmdb_read_token())


def tmdb_base_url() -> str | None:
    """Another TMDb API address (``TMDB_BASE_URL``; tests point it at 127.0.0.1)."""
    return _get("TMDB_BASE_URL")


def threads() -> int | None:
    """``LBX_THREADS`` (at least 1), or None for every core."""
    value = _get("LBX_THREADS")
    return max(1, int(value)) if value else None


def crawl_settings() -> str | None:
    """The raw JSON object of crawl overrides in ``LBX_CRAWL_SETTINGS`` (checked by the crawler)."""
    return _get(CRAWL_SETTINGS_ENV)


def cache_dir() -> Path:
    """What lbx can rebuild (a TMDb snapshot's search index): ``LBX_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/lbx``."""
    explicit = _get("LBX_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = _get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "lbx"


def crawl_cache_dir() -> Path:
    """The crawler's HTTP cache: ``LBX_CRAWL_CACHE_DIR``, else ``<cache dir>/httpcache``."""
    explicit = _get("LBX_CRAWL_CACHE_DIR")
    return Path(explicit).expanduser().resolve() if explicit else cache_dir() / "httpcache"


def crawl_user_agent() -> str | None:
    return _get("LBX_CRAWL_USER_AGENT")


def dagster_home() -> str | None:
    return _get("DAGSTER_HOME")


def under_dagster_pipes() -> bool:
    """True in a process launched by Dagster Pipes (the crawl child run by an asset)."""
    return _get(DAGSTER_PIPES_ENV) is not None


def child_environment(pythonpath: str, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment for a child process, with ``PYTHONPATH`` set and ``drop`` removed."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = pythonpath
    return env


def python_path() -> str | None:
    return _get("PYTHONPATH")


def dbt_executable() -> str:
    """The dbt beside this Python (a venv's bin/ need not be on PATH).

    ``lbx-dbt`` (lbx_orchestration/dbt_child.py, installed with the package) is dbt that dies with
    the process that started it; plain ``dbt`` is the fallback before the package is installed.
    """
    for name in ("lbx-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    return "dbt"


def lock_timeout() -> float:
    """Seconds a writer waits for the warehouse lock (``LBX_LOCK_TIMEOUT``, default 120)."""
    value = _get("LBX_LOCK_TIMEOUT")
    return float(value) if value else 120.0


def settings_file_env() -> Path | None:
    """``LBX_SETTINGS_FILE``: another path for ``data/settings.toml``."""
    value = _get("LBX_SETTINGS_FILE")
    return Path(value) if value else None


def movielens_dir_env() -> str | None:
    """``LBX_MOVIELENS_DIR`` as given (None when unset), so the settings file can fill in."""
    return _get("LBX_MOVIELENS_DIR")
