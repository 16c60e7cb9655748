"""Resources: the warehouse, TMDb (live or snapshot twin), the Letterboxd sources, dbt.

``build_resources()`` picks the set from the environment (read in ``core/settings.py``): TMDb
is live only when ``TMDB_API_KEY`` or ``TMDB_READ_TOKEN`` is set; everything else defaults to
the bundled, offline data.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lbx_orchestration.core import lake, settings
from lbx_orchestration.core.recsys.models.retrain import RetrainPolicy
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.settings import (
    BUNDLED_EXPORTS_DIR,
    BUNDLED_MOVIELENS_DIR,
    BUNDLED_SNAPSHOT,
    DBT_PROJECT_DIR,
    RELEVANCE,
    SEED,
    TMDB_API_KEY_ENV,
    TMDB_READ_TOKEN_ENV,
    dbt_executable,
)
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.tmdb.client import DEFAULT_BASE_URL
from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot
from lbx_orchestration.core.warehouse import ensure_parent

_POLICY = ServingPolicy()  # the serving defaults live there


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource for a DuckDB file; a DuckLake target (``ducklake:...``) is
    attached through ``core.lake`` with its extensions and S3 secret, which DuckDBResource cannot."""

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        if not lake.is_lake(self.database):
            with super().get_connection() as con:
                yield con
            return
        con = lake.open_lake(self.database)
        try:
            yield con
        finally:
            con.close()


class TmdbResource(dg.ConfigurableResource):
    """Base of the two TMDb twins; assets ask it for a ``TmdbSource``."""

    def source(self) -> TmdbSource:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class SnapshotTmdbResource(TmdbResource):
    snapshot_path: str = str(BUNDLED_SNAPSHOT)

    def source(self) -> TmdbSource:
        return _snapshot(self.snapshot_path)

    def describe(self) -> str:
        return f"snapshot ({Path(self.snapshot_path).name}, bundled, offline)"


_SNAPSHOTS: dict[str, TmdbSnapshot] = {}


def _snapshot(path: str) -> TmdbSnapshot:
    if path not in _SNAPSHOTS:
        _SNAPSHOTS[path] = TmdbSnapshot(path)
    return _SNAPSHOTS[path]


class LiveTmdbResource(TmdbResource):
    api_key: str | None = Field(default=None, description="TMDb v3 API key (from TMDB_API_KEY)")
    read_token: str | None = Field(default=None, description="TMDb v4 read token (TMDB_READ_TOKEN)")
    base_url: str = DEFAULT_BASE_URL
    rate_limit: float = 20.0
    max_concurrency: int = 4
    country: str = "US"
    max_age_days: int = 30

    def source(self) -> TmdbSource:
        from lbx_orchestration.core.tmdb.cache import TmdbCache
        from lbx_orchestration.core.tmdb.client import TmdbClient

        return TmdbClient(
            api_key=self.api_key or None,
            read_token=self.read_token or None,
            base_url=self.base_url,
            rate_limit=self.rate_limit,
            max_concurrency=self.max_concurrency,
            country=self.country,
            cache=TmdbCache(settings.duckdb_path()),  # the warehouse's cache: alternative titles
        )

    def describe(self) -> str:
        return f"live TMDb API ({self.base_url}, {self.rate_limit:g} req/s)"


class LetterboxdResource(dg.ConfigurableResource):
    """Where Letterboxd data comes from. Exports first; RSS and the crawler are opt-in."""

    export_dirs: list[str] = Field(default_factory=lambda: [str(BUNDLED_EXPORTS_DIR)])
    inbox_dir: str = Field(default_factory=lambda: str(settings.inbox_dir()))
    rss_users: list[str] = Field(default_factory=list, description="users whose RSS feed is read nightly")
    base_url: str = "https://letterboxd.com"
    crawl_enabled: bool = False


class LbxSettings(dg.ConfigurableResource):
    movielens_dir: str = str(BUNDLED_MOVIELENS_DIR)
    models_dir: str = Field(default_factory=lambda: str(settings.models_dir()))
    relevance: float = RELEVANCE
    test_frac: float = 0.2
    seed: int = SEED
    tune_budget: int = Field(default=3, description="configurations tried per model (0 = the whole grid)")
    top_n: int = _POLICY.top_n
    mmr_lambda: float = _POLICY.mmr_lambda
    watchlist: str = Field(default=_POLICY.watchlist, description="exclude | boost | ignore")
    min_vote_count: int = 0
    blend_collaborative_weight: float = _POLICY.blend_collaborative_weight
    blend_content_weight: float = _POLICY.blend_content_weight
    blend_recent_years: int = _POLICY.blend_recent_years
    new_for_you_months: int = Field(
        default=_POLICY.new_for_you_months, description="new_for_you: the catalogue's last N months"
    )
    new_for_you_top_n: int = _POLICY.new_for_you_top_n
    new_film_min_votes: int = Field(
        default=_POLICY.new_film_min_votes, description="new_for_you and the blend: fewest TMDb votes of a new film"
    )
    new_film_min_rating: float = Field(
        default=_POLICY.new_film_min_rating, description="new_for_you and the blend: lowest TMDb rating of a new film"
    )
    retrain_trailing_share: float = Field(
        default=RetrainPolicy.share,
        description="weekly retrain: a challenger below this share of the best NDCG@10 keeps its version "
        "(0 refits every model)",
    )
    retrain_trailing_days: int = Field(
        default=RetrainPolicy.days, description="weekly retrain: ... until its last evaluation is this many days old"
    )
    content_refit_days: int = Field(
        default=28,
        description="weekly retrain: the content model keeps its version until it is this many days old "
        "(0 refits it every week)",
    )
    catalog_min_vote_count: int = Field(default=20, description="tmdb_catalog: fewest TMDb votes")
    catalog_min_rating: float = Field(default=5.0, description="tmdb_catalog: lowest TMDb rating")
    lock_timeout: float = Field(
        default_factory=settings.lock_timeout,
        description="seconds dbt waits for another process to release the warehouse file (LBX_LOCK_TIMEOUT)",
    )

    def serving_policy(self) -> ServingPolicy:
        return ServingPolicy(
            top_n=self.top_n,
            mmr_lambda=self.mmr_lambda,
            watchlist=self.watchlist,
            blend_collaborative_weight=self.blend_collaborative_weight,
            blend_content_weight=self.blend_content_weight,
            blend_recent_years=self.blend_recent_years,
            new_for_you_months=self.new_for_you_months,
            new_for_you_top_n=self.new_for_you_top_n,
            new_film_min_votes=self.new_film_min_votes,
            new_film_min_rating=self.new_film_min_rating,
        )


def build_resources(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    if settings.tmdb_live():
        # EnvVar: the secret is resolved at run time and never stored in run config or logs
        tmdb: TmdbResource = LiveTmdbResource(
            api_key=dg.EnvVar(TMDB_API_KEY_ENV) if settings.tmdb_api_key() else None,
            read_token=dg.EnvVar(TMDB_READ_TOKEN_ENV) if settings.tmdb_read_token() else None,
            base_url=settings.tmdb_base_url() or DEFAULT_BASE_URL,
        )
    else:
        tmdb = SnapshotTmdbResource(snapshot_path=str(settings.tmdb_snapshot()))
    warehouse = settings.duckdb_path()
    ensure_parent(warehouse)  # a fresh clone has no data/ yet
    inbox = settings.inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)  # nor an inbox
    resources: dict[str, Any] = {
        "duckdb": WarehouseResource(database=str(warehouse)),
        "tmdb": tmdb,
        "letterboxd": LetterboxdResource(inbox_dir=str(inbox), export_dirs=settings.export_dirs()),
        "settings": LbxSettings(movielens_dir=str(settings.movielens_dir())),
        "dbt": DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()),
    }
    resources.update(overrides or {})
    return resources
