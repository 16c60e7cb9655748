"""The whole graph on the bundled data, on an ephemeral instance and a fresh DuckDB file."""

import csv
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lbx_orchestration.core.settings import BUNDLED_EXPORTS_DIR, BUNDLED_MOVIELENS_DIR
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize

pytestmark = pytest.mark.slow

EXPECTED_ASSETS = {
    "movielens_ratings",
    "letterboxd_exports",
    "reviews",
    "users",
    "film_catalog",
    "tmdb_movies",
    "stg_reviews",
    "stg_movies",
    "user_item_interactions",
    "movie_feature_values",
    "movie_features",
    "keyword_tfidf",
    "popularity_model",
    "itemknn_model",
    "ease_model",
    "als_model",
    "lightfm_model",
    "model_evaluation",
    "user_recommendations",
}


def _rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchall()[0][0]


def test_every_asset_materializes_and_every_check_passes(materialized_warehouse: Warehouse) -> None:
    result = materialized_warehouse.result
    assert result is not None and result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized >= EXPECTED_ASSETS
    checks = result.get_asset_check_evaluations()
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
    assert failed == []
    names = {c.check_name for c in checks}
    assert {
        "ratings_in_half_stars",
        "unique_observations",
        "served_model_gate",
        "no_seen_films",
        "full_lists",
        "letterboxd_resolved_share",
    } <= names
    assert sum(1 for c in checks if c.asset_key.path[-1] in {"movie_features", "user_item_interactions"}) >= 4


def test_row_counts_match_the_bundled_data(materialized_warehouse: Warehouse) -> None:
    ml_ratings = _rows(BUNDLED_MOVIELENS_DIR / "ratings.csv")
    con = duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True)
    assert _one(con, "select count(*) from raw.movielens_ratings") == ml_ratings
    assert _one(con, "select count(*) from ingest.reviews where source = 'movielens'") == ml_ratings
    export_rows = sum(
        _rows(folder / name)
        for folder in BUNDLED_EXPORTS_DIR.iterdir()
        if folder.is_dir()
        for name in ("ratings.csv", "watched.csv", "watchlist.csv", "diary.csv", "reviews.csv")
        if (folder / name).exists()
    )
    likes = sum(
        _rows(f / "likes" / "films.csv") for f in BUNDLED_EXPORTS_DIR.iterdir() if (f / "likes" / "films.csv").exists()
    )
    assert _one(con, "select count(*) from raw.letterboxd_export_entries") == export_rows + likes
    assert _one(con, "select count(*) from ingest.users where platform = 'movielens'") == 610
    assert sorted(
        r[0] for r in con.execute("select username from ingest.users where platform = 'letterboxd'").fetchall()
    ) == ["davidblue", "melvincarvalho", "patrickmjones"]
    # lists are written for members (Letterboxd users), not for the MovieLens community
    assert sorted(
        r[0] for r in con.execute("select distinct username from serving.user_recommendations").fetchall()
    ) == ["davidblue", "melvincarvalho", "patrickmjones"]
    assert _one(con, "select min(n) from (select count(*) n from serving.user_recommendations group by user_key)") == 50
    films = _one(con, "select count(*) from metadata.film_catalog")
    assert _one(con, "select count(*) from features.movie_features") == films
    con.close()


def test_no_recommendation_is_a_film_its_user_has_seen(materialized_warehouse: Warehouse) -> None:
    con = duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True)
    seen_recs = _one(
        con,
        """
        select count(*) from serving.user_recommendations r
        join ingest.reviews v on v.user_key = r.user_key
        join metadata.film_resolution f on f.film_key = v.film_key
        where coalesce(v.tmdb_id, f.tmdb_id) = r.tmdb_id and v.kind <> 'watchlist'
    """,
    )
    assert seen_recs == 0
    # and the watchlist is excluded by default
    assert (
        _one(
            con,
            """
        select count(*) from serving.user_recommendations r join features.user_item_interactions i
        using (user_key, tmdb_id) where i.on_watchlist""",
        )
        == 0
    )
    assert _one(con, "select count(*) from serving.user_recommendations where reason is null or reason = ''") == 0
    assert _one(con, "select count(*) from serving.genre_picks where genre_rank > 10") == 0
    con.close()


def test_served_model_beats_popularity(materialized_warehouse: Warehouse) -> None:
    con = duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True)
    served, pop = con.execute("""
        select max(ndcg_at_10) filter (where served), max(ndcg_at_10) filter (where model = 'popularity')
        from serving.model_metrics""").fetchall()[0]
    assert served >= 1.3 * pop
    assert _one(con, "select count(*) from serving.model_metrics where served and accepted") == 1
    con.close()


def test_rematerializing_ingest_leaves_the_same_rows(warehouse_copy: Warehouse) -> None:
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    before = con.execute("select count(*), count(distinct observation_id) from ingest.reviews").fetchall()
    entries = _one(con, "select count(*) from raw.letterboxd_export_entries")
    con.close()
    result = materialize(warehouse_copy, selection=["movielens_ratings", "letterboxd_exports", "reviews", "users"])
    assert result.success
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    assert con.execute("select count(*), count(distinct observation_id) from ingest.reviews").fetchall() == before
    assert _one(con, "select count(*) from raw.letterboxd_export_entries") == entries
    con.close()


def test_definitions_load() -> None:
    from lbx_orchestration.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys >= EXPECTED_ASSETS


def test_the_ui_can_compare_every_metric_of_every_model(materialized_warehouse: Warehouse) -> None:
    """Every model on each metric in one comparison (shared scale, over runs), numeric (plotted)
    keys for the served model only, a typed table rather than cut-off Markdown, rounded gate
    values, no fake zero for a missing champion."""
    from lbx_orchestration.models.evaluation import METRIC_COLUMNS, column

    result = materialized_warehouse.result
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "model_evaluation"]
    meta = event.materialization.metadata
    models = {r.data["model"] for r in meta["metrics"].value.records}
    assert {"popularity", "itemknn", "ease", "als", "lightfm_hybrid"} <= models
    assert [c.name for c in meta["metrics"].value.schema.columns] == ["model", *map(column, METRIC_COLUMNS)]
    plotted = {key for key, value in meta.items() if isinstance(value.value, float)}
    assert plotted == {f"served_{column(metric)}" for metric in METRIC_COLUMNS}
    for key in plotted:
        assert meta[key].value == round(meta[key].value, 4)
    comparison = meta["comparison"].value
    assert all(f"**{metric}**" in comparison for metric in METRIC_COLUMNS)
    assert all(f"| {model}" in comparison for model in models)
    [gate] = [c for c in result.get_asset_check_evaluations() if c.check_name == "served_model_gate"]
    assert gate.metadata["champion"].value == "none yet" and "champion_ndcg_at_10" not in gate.metadata
    assert gate.metadata["challenger_ndcg_at_10"].value == round(gate.metadata["challenger_ndcg_at_10"].value, 4)


def test_reviews_partitions_are_the_days_with_data() -> None:
    from lbx_orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    assert isinstance(graph.get(dg.AssetKey("reviews")).partitions_def, dg.DynamicPartitionsDefinition)
    instance = dg.DagsterInstance.ephemeral()
    assert (
        defs.resolve_job_def("nightly_refresh_job").partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        == []
    )  # no wall of missing days: a day exists once it has data
