"""The TMDb source for code that runs outside Dagster (the CLI, the web app): the live API when a
key is in the environment, else the offline snapshot. Dagster assets get theirs from resources."""

from __future__ import annotations

import os
from pathlib import Path

from lbx_orchestration.core.tmdb.base import TmdbSource


def tmdb_source_from_env() -> TmdbSource:
    if os.environ.get("TMDB_API_KEY", "").strip() or os.environ.get("TMDB_READ_TOKEN", "").strip():
        from lbx_orchestration.core.tmdb.cache import TmdbCache
        from lbx_orchestration.core.tmdb.client import TmdbClient
        from lbx_orchestration.core.warehouse import duckdb_path

        base_url = os.environ.get("TMDB_BASE_URL", "").strip()
        cache = TmdbCache(duckdb_path())  # alternative titles, read through the warehouse's cache
        return TmdbClient.from_env(cache=cache, **({"base_url": base_url} if base_url else {}))
    from lbx_orchestration.core.tmdb.snapshot import BUNDLED_SNAPSHOT, TmdbSnapshot

    return TmdbSnapshot(Path(os.environ.get("LBX_TMDB_SNAPSHOT", str(BUNDLED_SNAPSHOT))))
