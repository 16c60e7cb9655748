"""The features group: dbt models on DuckDB (with dbt tests as asset checks) and keyword TF-IDF."""

import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
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
from pydantic import Field

from lbx_orchestration.core import lake
from lbx_orchestration.core.settings import (
    DBT_PROJECT_DIR,
    dbt_executable,
    duckdb_extension_dir,
    duckdb_path,
    s3_settings,
)
from lbx_orchestration.core.tables import INTERACTIONS, KEYWORD_TFIDF, TMDB_MOVIES
from lbx_orchestration.core.tfidf import keyword_tfidf as build_keyword_tfidf
from lbx_orchestration.core.warehouse import (
    WarehouseBusy,
    lock_holder,
    markdown_preview,
    open_with_wait,
    read_frame,
    replace_table,
    table_exists,
)
from lbx_orchestration.metadata.assets import tmdb_movies
from lbx_orchestration.resources import LbxSettings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def _warehouse_vars(warehouse: Path) -> str:
    # profiles.yml reads the path from this var: nothing needs to write the environment at run time
    if not lake.is_lake(warehouse):
        return json.dumps({"lbx_duckdb_path": str(warehouse)})
    values = {
        "lbx_warehouse": lake.absolute(warehouse),
        "lbx_lake_data": lake.data_path(warehouse),
        "lbx_duckdb_extensions": str(duckdb_extension_dir().absolute()),
    }
    s3 = s3_settings()
    if s3 is not None:
        values["lbx_s3_use_ssl"] = s3["use_ssl"]
    return json.dumps(values)


def _dbt_target(warehouse: Path) -> list[str]:
    """The profile's target for this warehouse: the file (dev), or a lake with local or S3 files."""
    if not lake.is_lake(warehouse):
        return []
    return ["--target", "lake_s3" if lake.data_path(warehouse).startswith("s3://") else "lake"]


def _absolute(warehouse: str) -> Path:
    return Path(warehouse) if lake.is_lake(warehouse) else Path(warehouse).resolve()


def _manifest_is_stale(project: DbtProject) -> bool:
    """No manifest (a fresh clone), or a model, test or schema edited since it was parsed: the
    assets must be built from the same test ids that `dbt build` will report."""
    if not project.manifest_path.exists():
        return True
    parsed = project.manifest_path.stat().st_mtime
    sources = [p for d in ("models", "macros", "tests") for p in (Path(project.project_dir) / d).rglob("*")]
    sources += [Path(project.project_dir) / "dbt_project.yml"]
    return any(p.is_file() and p.stat().st_mtime > parsed for p in sources)


if _manifest_is_stale(dbt_project):
    # parse (offline, no database needed) before the assets are built from the manifest, with
    # the vars dbt_features passes so that its `dbt build` can reuse this parse
    parse_vars = _warehouse_vars(_absolute(str(duckdb_path())))
    subprocess.run(
        [dbt_executable(), "--quiet", "parse", "--profiles-dir", ".", "--vars", parse_vars],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )


class LbxDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "features"

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # models are keyed by their name (user_item_interactions), sources by their meta key
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # the schema.yml description only: the SQL is one click away in the dbt project, and the
        # UI showed it as a wall of text under every model
        description = (dbt_resource_props.get("description") or "").strip()
        return description or f"dbt {dbt_resource_props['resource_type']} {dbt_resource_props['name']}"

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        # dagster-dbt reads a check's description from meta; dbt 1.11 tests carry their own
        description = (manifest["nodes"][unique_id].get("description") or "").strip()
        if spec is not None and description and not spec.description:
            spec = spec._replace(description=description)
        return spec


class DbtBuildConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="rebuild incremental models from every observation (the weekly full_refresh_job "
        "sets it); false: a nightly build takes only the users with newly collected observations",
    )


#: how many times dbt is started when another process takes the file as it starts
_DBT_STARTS = 3
_LOCK_ERROR = "Could not set lock"


def _wait_for_warehouse(warehouse: Path, seconds: float, log: Any) -> tuple[float, bool]:
    """Seconds spent waiting until no other process has the file open (dbt needs to write it),
    and whether the warehouse already holds the interactions (else dbt's build is a first one)."""
    started = time.monotonic()
    try:
        con = open_with_wait(warehouse, wait_seconds=seconds, on_wait=lambda message: log.warning(f"dbt: {message}"))
    except WarehouseBusy as exc:
        raise dg.Failure(description=f"dbt could not take the write lock on the warehouse: {exc}") from exc
    try:
        built = table_exists(con, INTERACTIONS)
    finally:
        con.close()
    waited = time.monotonic() - started
    if waited > 1:
        log.info(f"dbt: the warehouse {lake.describe(warehouse)} is free after {waited:.1f} s")
    return waited, built


@dbt_assets(
    manifest=dbt_project.manifest_path,
    dagster_dbt_translator=LbxDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
    pool="duckdb",
)
def dbt_features(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    dbt: DbtCliResource,
    duckdb: DuckDBResource,
    settings: LbxSettings,
) -> Iterator[Any]:
    warehouse = _absolute(duckdb.database)
    timeout, waited = settings.lock_timeout, 0.0
    # DuckDB admits one writer per file and dbt fails at once when another process has the file
    # open: wait for the lock here, then start dbt. dbt keeps its connection for the whole build,
    # so a lock error can only come at its start, before any model ran; if another process took
    # the file in the seconds between this wait and dbt's connection, wait and start dbt again.
    for _ in range(_DBT_STARTS):
        seconds, built = _wait_for_warehouse(warehouse, max(timeout - waited, 0.0), context.log)
        waited += seconds
        # an empty warehouse's first build is a full one: its tests then check every row, as the
        # weekly retrain's do (an incremental build tests the rows it collected that night)
        full_refresh = config.full_refresh or not built
        invocation = dbt.cli(
            [
                "build",
                "--vars",
                _warehouse_vars(warehouse),
                *_dbt_target(warehouse),
                *(["--full-refresh"] if full_refresh else []),
            ],
            context=context,
            raise_on_error=False,
        )
        events = 0
        for event in invocation.stream():
            events += 1
            yield event
        error = invocation.get_error()
        if error is None:
            return
        if events or _LOCK_ERROR not in str(error):
            raise error
        holder = lock_holder(str(error))
        where = lake.describe(warehouse)
        context.log.warning(f"dbt: the warehouse {where} was taken by {holder} as dbt started; waiting again")
    raise dg.Failure(
        description=f"dbt could not take the write lock on the warehouse {lake.describe(warehouse)}: {holder} took it "
        f"each of the {_DBT_STARTS} times dbt started; wait for it to finish and run again"
    )


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
