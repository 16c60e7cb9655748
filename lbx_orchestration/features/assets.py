"""The features group: dbt models on DuckDB (with dbt tests as asset checks) and keyword TF-IDF."""


import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.settings import DBT_PROJECT_DIR, dbt_executable
from lbx_orchestration.core.tables import KEYWORD_TFIDF, TMDB_MOVIES
from lbx_orchestration.core.tfidf import keyword_tfidf as build_keyword_tfidf
from lbx_orchestration.core.warehouse import markdown_preview, read_frame, replace_table
from lbx_orchestration.metadata.assets import tmdb_movies

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
if not dbt_project.manifest_path.exists():
    # a fresh clone has no manifest yet: parse once (offline, no database needed)
    DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(["--quiet", "parse"]).wait()


class LbxDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # models are keyed by their name (user_item_interactions), sources by their meta key
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["name"]])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=LbxDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
    pool="duckdb",
)
def dbt_features(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource) -> Iterator[Any]:
    # dbt runs in a child process: hand it the same warehouse file the other assets write
    os.environ["LBX_DUCKDB_PATH"] = os.path.abspath(duckdb.database)
    yield from dbt.cli(["build"], context=context).stream()


@dg.asset(
    group_name="features",
    kinds={"python", "scikitlearn", "duckdb"},
    pool="duckdb",
    deps=[tmdb_movies],
    description=f"TF-IDF weights of TMDb keywords per film (scikit-learn), in {KEYWORD_TFIDF}.",
)
def keyword_tfidf(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        movies = read_frame(con, f"select tmdb_id, keywords from {TMDB_MOVIES} where keywords is not null")
        weights = build_keyword_tfidf(movies)
        replace_table(con, KEYWORD_TFIDF, weights)
    return dg.MaterializeResult(
        metadata={
            "rows": weights.height,
            "films": weights["tmdb_id"].n_unique(),
            "vocabulary": weights["keyword"].n_unique(),
            "preview": dg.MetadataValue.md(markdown_preview(weights)),
        }
    )
