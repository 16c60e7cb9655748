"""What the Dagster UI shows for the dbt models: a description without SQL, every column with its
type and meaning, and a description on every dbt test."""

import json

import dagster as dg
import duckdb
import pytest

from lbx_orchestration.features.assets import dbt_features, dbt_project
from lbx_orchestration_tests.support.warehouse import Warehouse

MODELS = {"stg_reviews", "stg_movies", "user_item_interactions", "movie_feature_values", "movie_features"}
#: a pivot whose columns follow the data: only its key is declared
DYNAMIC = {"movie_features"}
SQL_WORDS = ("```", "select ", "Raw SQL", "{{", " from ")


def _manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def _models() -> dict[str, dict]:
    return {n["name"]: n for n in _manifest()["nodes"].values() if n["resource_type"] == "model"}


def _schema(spec: dg.AssetSpec) -> dg.TableSchema:
    schema = spec.metadata.get("dagster/column_schema")
    assert isinstance(schema, dg.TableSchema), f"{spec.key.to_user_string()} has no column schema"
    return schema


def test_every_dbt_asset_has_a_description_without_sql() -> None:
    specs = {spec.key.to_user_string(): spec for spec in dbt_features.specs}
    assert set(specs) == MODELS
    for name, spec in specs.items():
        assert spec.description and len(spec.description) > 30, name
        assert not any(word in spec.description for word in SQL_WORDS), f"{name}: {spec.description}"
        assert spec.description == _models()[name]["description"].strip()


def test_every_column_is_listed_with_a_type_and_a_description() -> None:
    models = _models()
    for spec in dbt_features.specs:
        name = spec.key.to_user_string()
        columns = _schema(spec).columns
        assert [c.name for c in columns] == list(models[name]["columns"]), name
        for column in columns:
            assert column.type and column.type != "?", f"{name}.{column.name} has no type"
            assert column.description and len(column.description) > 5, f"{name}.{column.name} has no description"
        if name in DYNAMIC:
            assert [c.name for c in columns] == ["tmdb_id"]
            assert "genre_*" in spec.description and "director_*" in spec.description
        else:
            # an enforced contract: dbt refuses to build the model when its columns or types differ
            assert models[name]["config"]["contract"]["enforced"] is True, name


def test_every_dbt_check_has_a_description() -> None:
    checks = list(dbt_features.check_specs)
    assert len(checks) >= 13
    tests = {n["name"]: n for n in _manifest()["nodes"].values() if n["resource_type"] == "test"}
    assert {c.name for c in checks} == set(tests)
    for check in checks:
        assert check.description and check.description != "No description provided", check.name
        assert check.description == tests[check.name]["description"]


@pytest.mark.slow
def test_the_documented_columns_are_the_built_ones(materialized_warehouse: Warehouse) -> None:
    """The column tables match the warehouse the graph built, name for name and type for type."""
    con = duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True)
    try:
        for spec in dbt_features.specs:
            name = spec.key.to_user_string()
            schema = "staging" if name.startswith("stg_") else "features"
            built = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            documented = [(c.name, c.type.upper()) for c in _schema(spec).columns]
            if name in DYNAMIC:
                assert built[0] == documented[0] and len(built) > 100
                assert all(t == "DOUBLE" for _, t in built[1:])
            else:
                assert built == documented, name
    finally:
        con.close()
