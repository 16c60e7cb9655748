"""Onboarding one Letterboxd user (a dynamic partition): import the export, then fold them in.

The recommendations come from the last accepted served model, folded in without retraining;
the nightly refresh trains them into the next model like everyone else.
"""

import time
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lbx_orchestration.core.importer import RESOLUTION, REVIEWS, import_export
from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.recsys.pipeline import load_trained
from lbx_orchestration.core.recsys.serve import ServingPolicy
from lbx_orchestration.core.warehouse import (
    markdown_preview,
    read_frame,
    replace_rows,
    table_exists,
)
from lbx_orchestration.partitions import letterboxd_user_partitions
from lbx_orchestration.resources import LbxSettings, TmdbResource
from lbx_orchestration.serving.recommend import fold_in_user, load_serving_inputs, seen_by_title_count

MODEL_METRICS = "serving.model_metrics"
RECOMMENDATIONS = "serving.user_recommendations"


class LetterboxdImportConfig(dg.Config):
    path: str = Field(description="The export to import: a .zip or an unpacked folder")


@dg.asset(
    group_name="ingest",
    kinds={"python", "duckdb"},
    pool="duckdb",
    partitions_def=letterboxd_user_partitions,
    description="One user's Letterboxd export imported into the warehouse (raw entries, today's "
    "observations in ingest.reviews, film resolutions): the same code path as `lbx import`. "
    "An export already imported with the same content writes nothing.",
)
def letterboxd_user_import(
    context: dg.AssetExecutionContext,
    config: LetterboxdImportConfig,
    duckdb: DuckDBResource,
    tmdb: TmdbResource,
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        report = import_export(con, Path(config.path), username=context.partition_key,
                               tmdb_source=tmdb.source())
    context.log.info(f"{report.username}: {report.status}, {report.resolved} of {report.films} "
                     f"films resolved to TMDb ids")
    return dg.MaterializeResult(
        metadata={**report.as_metadata(), "path": config.path,
                  "counts": dg.MetadataValue.json(report.counts)}
    )


def _user_observations(con, user_key: str) -> pl.DataFrame:  # noqa: ANN001
    """(tmdb_id, rating, seen, on_watchlist) per film, as stg_reviews + user_item_interactions
    would see them: only the newest export of the user counts."""
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    resolution = (f"left join {RESOLUTION} res on r.film_key = res.film_key"
                  if table_exists(con, RESOLUTION) else "")
    tmdb = "coalesce(r.tmdb_id, res.tmdb_id)" if resolution else "r.tmdb_id"
    return read_frame(
        con,
        f"""
        with rows as (
            select r.*, {tmdb} as resolved_id,
                   max(scrape_date) filter (where source = 'letterboxd_export') over () as latest
            from {REVIEWS} r {resolution}
            where r.user_key = ?
        )
        select resolved_id as tmdb_id,
               arg_max(rating, event_at) filter (where rating is not null) as rating,
               bool_or(kind in ({kinds})) as seen,
               bool_or(kind = 'watchlist') as on_watchlist
        from rows
        where resolved_id is not null and (source <> 'letterboxd_export' or scrape_date = latest)
        group by resolved_id
        order by resolved_id
        """,
        [user_key],
    )


@dg.asset(
    group_name="serving",
    kinds={"python", "duckdb"},
    pool="duckdb",
    partitions_def=letterboxd_user_partitions,
    deps=[letterboxd_user_import],
    description="Top 50 films for one newly imported Letterboxd user, folded into the last "
    "accepted served model (no retraining), written to serving.user_recommendations.",
    check_specs=[
        dg.AssetCheckSpec("no_seen_films", asset="letterboxd_user_recommendations",
                          description="No recommendation is a film the user has seen (by TMDb id, "
                          "or by normalised title and year within one year)"),
        dg.AssetCheckSpec("full_list", asset="letterboxd_user_recommendations",
                          description="The user gets a full list (50 by default)"),
    ],
)
def letterboxd_user_recommendations(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    user_key = f"letterboxd:{context.partition_key}"
    with duckdb.get_connection() as con:
        accepted = (
            read_frame(con, f"select * from {MODEL_METRICS} where served and accepted "
                            "order by evaluated_at desc limit 1")
            if table_exists(con, MODEL_METRICS) else pl.DataFrame()
        )
        if accepted.height == 0:
            raise dg.Failure(
                description="no accepted served model in serving.model_metrics: materialize the "
                "graph once (model_evaluation, then user_recommendations) before onboarding users"
            )
        served = accepted.row(0, named=True)
        trained = load_trained(Path(served["path"]))
        policy = ServingPolicy(top_n=settings.top_n, mmr_lambda=settings.mmr_lambda,
                               watchlist=settings.watchlist)
        inputs = load_serving_inputs(con, trained, policy, settings.min_vote_count)
        observations = _user_observations(con, user_key)
    if observations.filter(pl.col("seen")).height == 0:
        raise dg.Failure(
            description=f"{context.partition_key} has no seen film with a TMDb id: nothing to "
            "fold in (import their export first: letterboxd_user_import)"
        )
    started = time.perf_counter()
    recs = fold_in_user(inputs, user_key, observations)
    fold_in_ms = (time.perf_counter() - started) * 1000
    with duckdb.get_connection() as con:
        replace_rows(con, RECOMMENDATIONS, recs, {"user_key": [user_key]})
        title_hits = seen_by_title_count(con, recs)
    seen_ids = set(observations.filter(pl.col("seen"))["tmdb_id"].to_list())
    seen_hits = recs.filter(pl.col("tmdb_id").is_in(list(seen_ids))).height
    return dg.MaterializeResult(
        metadata={
            "rows": recs.height,
            "user_key": user_key,
            "films_observed": observations.height,
            "films_seen": len(seen_ids),
            "model": served["model"],
            "model_version": served["version"],
            "fold_in_ms": round(fold_in_ms, 1),
            "top_10": dg.MetadataValue.md(markdown_preview(
                recs.select("rank", "title", "year", "score", "reason"), 10)),
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_seen_films", passed=seen_hits == 0 and title_hits == 0,
                                metadata={"seen_recommendations": seen_hits,
                                          "seen_by_title_recommendations": title_hits}),
            dg.AssetCheckResult(check_name="full_list", passed=recs.height == settings.top_n,
                                metadata={"rows": recs.height, "expected": settings.top_n}),
        ],
    )
