"""The serving group: every member's list from the accepted model, and the genre picks view."""

from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.members import member_keys, member_recommendations
from lbx_orchestration.core.recsys.models.pipeline import load_trained
from lbx_orchestration.core.recsys.serving.content_blend import blend_main_list
from lbx_orchestration.core.recsys.serving.recommend import load_serving_inputs, seen_by_title_count
from lbx_orchestration.core.tables import GENRE_PICKS, INTERACTIONS, MODEL_METRICS, RECOMMENDATIONS, latest_challenger
from lbx_orchestration.core.warehouse import markdown_preview, replace_table, scalar
from lbx_orchestration.models.evaluation import model_evaluation
from lbx_orchestration.resources import LbxSettings


@dg.asset(
    group_name="serving",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=[model_evaluation, "film_catalog", "tmdb_movies", "user_item_interactions", "content_model"],
    description="Top 50 films for every Letterboxd member ever onboarded (bundled exports, imports, "
    "the inbox, RSS), from the model that just passed the gate: members it was trained on are "
    "scored in one batch, members onboarded since are folded in. Never a film the member rated, "
    "logged or watched; watchlist excluded by default; MMR-diversified; each with its reason. "
    f"Also the view {GENRE_PICKS} (top 10 per member and genre).",
    check_specs=[
        dg.AssetCheckSpec(
            "no_seen_films",
            asset="user_recommendations",
            description="No recommendation is a film its member has seen (by TMDb id, "
            "or by normalised title and year within one year)",
        ),
        dg.AssetCheckSpec(
            "full_lists",
            asset="user_recommendations",
            description="Every member with a matched film has 50 recommendations",
        ),
    ],
)
def user_recommendations(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        served = latest_challenger(con)
        if served is None:
            raise dg.Failure(f"no served model in {MODEL_METRICS}: materialize model_evaluation first")
        trained = load_trained(served.path)
        members = member_keys(con)  # lists are for members: never read 200,000 raters' films
        inputs = load_serving_inputs(con, trained, settings.serving_policy(), settings.min_vote_count, members)
        out, counts = member_recommendations(con, inputs)
        out = blend_main_list(con, out, settings.serving_policy(), Path(settings.models_dir))  # new films
        replace_table(con, RECOMMENDATIONS, out)
        con.execute(
            f"""
            create or replace view {GENRE_PICKS} as
            select username, source, genre, rank() over (partition by user_key, genre order by rank) as genre_rank,
                   rank as overall_rank, tmdb_id, title, year, score, reason
            from (select *, unnest(genres) as genre from {RECOMMENDATIONS})
            qualify genre_rank <= 10
            """
        )
        con.execute(f"update {MODEL_METRICS} set accepted = true where run_id = ? and served", [served.run_id])
        seen_hits = int(
            scalar(
                con,
                f"select count(*) from {RECOMMENDATIONS} r join {INTERACTIONS} i "
                "on r.user_key = i.user_key and r.tmdb_id = i.tmdb_id where i.seen",
            )
        )
        title_hits = seen_by_title_count(con, out)
    per_user = out.group_by("user_key").len()
    short = per_user.filter(pl.col("len") < settings.top_n)["user_key"].to_list()
    return dg.MaterializeResult(
        metadata={
            "rows": out.height,
            "members": counts["members"],
            "members_trained": counts["trained"],
            "members_folded_in": counts["folded_in"],
            # members whose films changed since the served model was fitted: folded in tonight
            "members_changed_since_training": counts["changed_since_training"],
            "model": served.model,
            "model_version": served.version,
            "distinct_films": out["tmdb_id"].n_unique(),
            "preview": dg.MetadataValue.md(
                markdown_preview(out.select("username", "rank", "title", "year", "reason"), 15)
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_seen_films",
                passed=seen_hits == 0 and title_hits == 0,
                metadata={"seen_recommendations": seen_hits, "seen_by_title_recommendations": title_hits},
            ),
            dg.AssetCheckResult(
                check_name="full_lists",
                passed=not short and not counts["no_seen_films"],
                metadata={
                    "members_short": dg.MetadataValue.json(short),
                    "members_without_matched_films": dg.MetadataValue.json(counts["no_seen_films"]),
                },
            ),
        ],
    )
