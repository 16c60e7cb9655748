"""A session fixture that materializes the whole graph once on the bundled data.

Tests that need a populated warehouse (the graph test, sensors, fold-in, the gate) share it;
a test that changes it works on a copy (``warehouse_copy``).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from lbx_orchestration.core.settings import SAMPLE_SCRAPE_DATE
from lbx_orchestration.partitions import add_scrape_date


@dataclass
class Warehouse:
    root: Path
    duckdb_path: Path
    models_dir: Path
    result: dg.ExecuteInProcessResult | None = None

    def resources(self, **settings) -> dict:
        from lbx_orchestration.resources import LbxSettings, WarehouseResource, build_resources

        return build_resources(
            {
                "duckdb": WarehouseResource(database=str(self.duckdb_path)),
                "settings": LbxSettings(models_dir=str(self.models_dir), tune_budget=1, **settings),
            }
        )


def materialize(
    warehouse: Warehouse, selection: list | None = None, run_config: dict | None = None, **settings
) -> dg.ExecuteInProcessResult:
    from lbx_orchestration.definitions import build_definitions

    with pytest.MonkeyPatch.context() as env:  # for this run only, as `dagster dev` would see it
        env.setenv("LBX_DUCKDB_PATH", str(warehouse.duckdb_path))
        env.setenv("LBX_WAREHOUSE", str(warehouse.duckdb_path))  # a file, or a DuckLake catalogue
        defs = build_definitions()
        # tmdb_catalog (release-month partitions) runs on its own
        assets = [
            a
            for a in defs.assets
            if isinstance(a, dg.AssetsDefinition) and not isinstance(a.partitions_def, dg.MonthlyPartitionsDefinition)
        ]
        instance = dg.DagsterInstance.ephemeral()
        add_scrape_date(instance, str(SAMPLE_SCRAPE_DATE))
        return dg.materialize(
            [*assets, *(defs.asset_checks or [])],
            resources=warehouse.resources(**settings),
            partition_key=str(SAMPLE_SCRAPE_DATE) if selection is None or "reviews" in selection else None,
            instance=instance,
            selection=selection,
            run_config=run_config,
            raise_on_error=False,
        )


def materialize_with_config(warehouse: Warehouse, selection: list, run_config: dict) -> dg.ExecuteInProcessResult:
    return materialize(warehouse, selection=selection, run_config=run_config)


@pytest.fixture(scope="session")
def materialized_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root = tmp_path_factory.mktemp("warehouse")
    warehouse = Warehouse(root, root / "lbx.duckdb", root / "models")
    warehouse.result = materialize(warehouse)
    return warehouse


@pytest.fixture
def warehouse_copy(materialized_warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    shutil.copytree(materialized_warehouse.root, tmp_path / "copy")
    root = tmp_path / "copy"
    copy = Warehouse(root, root / "lbx.duckdb", root / "models")
    # the served model paths in serving.model_metrics point into the original folder: rewrite them
    import duckdb

    con = duckdb.connect(str(copy.duckdb_path))
    con.execute(
        "update serving.model_metrics set path = replace(path, ?, ?)", [str(materialized_warehouse.root), str(root)]
    )
    con.close()
    return copy
