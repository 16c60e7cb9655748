"""The nightly refresh: which partition and which assets a schedule tick asks for."""

import datetime as dt

import dagster as dg

from lbx_orchestration.definitions import build_definitions
from lbx_orchestration.ingest.schedules import nightly_refresh_schedule


def test_tick_requests_that_days_partition() -> None:
    when = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=when)
    request = nightly_refresh_schedule(context)
    assert request.partition_key == "2026-11-21"
    assert request.run_key == "nightly:2026-11-21"
    assert nightly_refresh_schedule.cron_schedule == "0 3 * * *"
    assert nightly_refresh_schedule.execution_timezone == "UTC"
    ops = request.run_config["ops"]
    assert {k for k in ops} == {"popularity_model", "itemknn_model", "ease_model", "als_model", "lightfm_model",
                            "content_model"}
    assert all(v == {"config": {"tune": False}} for v in ops.values())


def test_job_selects_reviews_and_everything_downstream() -> None:
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
    downstream = {k.to_user_string() for k in reached
                  if not isinstance(graph.get(k).partitions_def, dg.DynamicPartitionsDefinition)}
    assert selected == downstream | {"reviews"}
    # the stages the nightly run must cover, by name (dbt models by their last key part)
    names = {k.path[-1] for k in job.asset_layer.selected_asset_keys}
    assert {"reviews", "users", "film_catalog", "tmdb_movies", "stg_reviews",
            "user_item_interactions", "als_model", "ease_model", "model_evaluation",
            "user_recommendations"} <= names
    assert not selected & {"movielens_ratings", "letterboxd_exports", "letterboxd_user_import",
                           "letterboxd_user_recommendations"}
    assert job.partitions_def.get_partition_keys()[-1] == dt.datetime.now(dt.UTC).date().isoformat()
    [schedule] = [s for s in defs.schedules if s.name == "nightly_refresh_schedule"]
    assert schedule.job_name == "nightly_refresh_job"


def test_catalog_tick_refreshes_the_current_and_previous_release_month() -> None:
    from lbx_orchestration.ingest.schedules import tmdb_catalog_schedule

    when = dt.datetime(2026, 1, 4, 2, 30, tzinfo=dt.UTC)
    requests = tmdb_catalog_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert [r.partition_key for r in requests] == ["2025-12-01", "2026-01-01"]
    assert len({r.run_key for r in requests}) == 2
    assert build_definitions().resolve_job_def("tmdb_catalog_job") is not None
