"""The nightly refresh: which partition and which assets a schedule tick asks for."""

import datetime as dt

import dagster as dg

from lbx_orchestration.definitions import build_definitions
from lbx_orchestration.models.assets import ModelConfig
from lbx_orchestration.schedules import nightly_refresh_schedule


def test_tick_adds_and_requests_that_days_partition() -> None:
    when = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        request = nightly_refresh_schedule(context)
        assert instance.get_dynamic_partitions("scrape_dates") == ["2026-11-21"]
    assert request.partition_key == "2026-11-21"
    assert request.run_key == "nightly:2026-11-21"
    assert nightly_refresh_schedule.cron_schedule == "0 3 * * 1-6"
    assert nightly_refresh_schedule.execution_timezone == "UTC"
    assert nightly_refresh_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    # the schedule sends no config: a launch from the UI runs exactly what the schedule runs
    assert not request.run_config


def test_models_refit_without_tuning_by_default_and_say_so() -> None:
    field = ModelConfig.model_fields["tune"]
    assert field.default is False
    assert "set true to tune" in field.description


def test_nightly_takes_reviews_downstream_but_refits_no_model() -> None:
    defs = build_definitions()
    job = defs.resolve_job_def("nightly_refresh_job")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    graph = defs.resolve_asset_graph()
    reviews = dg.AssetKey("reviews")
    reached, todo = set(), [reviews]
    while todo:  # walk the graph's child edges from reviews
        for child in graph.get(todo.pop()).child_keys:
            if child not in reached:
                reached.add(child)
                todo.append(child)
    training = {k.to_user_string() for k in graph.materializable_asset_keys if graph.get(k).group_name == "models"}
    # the film feature tables only the models read, and the operators' per-user summary, wait for
    # the weekly retrain too
    film_features = {"stg_movies", "movie_features", "movie_feature_values", "keyword_tfidf"}
    assert selected == ({k.to_user_string() for k in reached} | {"reviews"}) - training - film_features - {"users"}
    names = {k.path[-1] for k in job.asset_layer.selected_asset_keys}
    assert {
        "reviews",
        "film_catalog",
        "tmdb_movies",
        "stg_reviews",
        "user_item_interactions",
        "user_recommendations",
        "new_for_you",
    } <= names
    assert not names & {"als_model", "ease_model", "lightfm_model", "content_model", "model_evaluation"}
    assert not names & film_features
    assert not selected & {"movielens_ratings", "letterboxd_exports"}
    [schedule] = [s for s in defs.schedules if s.name == "nightly_refresh_schedule"]
    assert schedule.job_name == "nightly_refresh_job"


def test_weekly_retrain_rebuilds_everything_from_scratch() -> None:
    from lbx_orchestration.schedules import WEEKLY_CRON, weekly_retrain_schedule

    defs = build_definitions()
    job = defs.resolve_job_def("full_refresh_job")
    names = {k.path[-1] for k in job.asset_layer.selected_asset_keys}
    assert {"movielens_ratings", "reviews", "als_model", "content_model", "model_evaluation"} <= names
    assert "tmdb_catalog" not in names
    config = job.partitioned_config.get_run_config_for_partition_key("2026-12-06")
    assert config == {"ops": {"dbt_features": {"config": {"full_refresh": True}}}}
    when = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)  # a Sunday
    with dg.instance_for_test() as instance:
        request = weekly_retrain_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert instance.get_dynamic_partitions("scrape_dates") == ["2026-12-06"]
    assert request.partition_key == "2026-12-06" and request.run_key == "weekly:2026-12-06"
    assert WEEKLY_CRON == "0 4 * * 0"
    assert weekly_retrain_schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_catalog_tick_refreshes_the_current_and_previous_release_month() -> None:
    from lbx_orchestration.schedules import tmdb_catalog_schedule

    when = dt.datetime(2026, 1, 4, 2, 30, tzinfo=dt.UTC)
    requests = tmdb_catalog_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert [r.partition_key for r in requests] == ["2025-12-01", "2026-01-01"]
    assert len({r.run_key for r in requests}) == 2
    assert build_definitions().resolve_job_def("tmdb_catalog_job") is not None


def test_one_partitioning_so_materialize_all_can_launch() -> None:
    """'Materialize all' on the global lineage page launches one run for a chosen scrape date
    only when every partitioned asset shares one partitions definition (no per-member assets)."""
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    partitionings = {graph.get(k).partitions_def for k in graph.materializable_asset_keys}
    # tmdb_catalog is the one exception: partitioned by release month, materialized on its own
    from lbx_orchestration.metadata.catalog import release_month_partitions

    assert partitionings == {None, dg.DynamicPartitionsDefinition(name="scrape_dates"), release_month_partitions}
