"""The TMDb source for code that runs outside Dagster (the CLI, the web app): the live API when a
key is in the environment, else the offline snapshot. Dagster assets get theirs from resources."""

from __future__ import annotations

from lbx_orchestration.core import settings
from lbx_orchestration.core.tmdb.base import TmdbSource


def tmdb_source_from_env() -> TmdbSource:
    if settings.tmdb_live():
        from lbx_orchestration.core.tmdb.cache import TmdbCache
        from lbx_orchestration.core.tmdb.client import TmdbClient

        base_url = settings.tmdb_base_url()
        cache = TmdbCache(settings.duckdb_path())  # alternative titles, read through the warehouse's cache
        return TmdbClient.from_env(cache=cache, **({"base_url": base_url} if base_url else {}))
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    return TmdbSnapshot(settings.tmdb_snapshot())
