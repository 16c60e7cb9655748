"""New films for each member, from the content model: ``serving.new_for_you``."""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.member_films import MEMBER_PREFIX, member_keys, member_observations
from lbx_orchestration.core.recsys.serving.content_serving import new_films_for
from lbx_orchestration.core.tables import INTERACTIONS, NEW_FOR_YOU
from lbx_orchestration.core.warehouse import markdown_preview, replace_table
from lbx_orchestration.resources import LbxSettings


@dg.asset(
    group_name="serving",
    kinds={"python", "duckdb"},
    pool="duckdb",
    deps=["content_model", "tmdb_catalog", "tmdb_movies", "user_item_interactions"],
    description="Each Letterboxd member's top films released in the last 24 months of the catalogue "
    "(serving.new_for_you), ranked by the content model, each with its reason (the member's rated films "
    "it shares a director, keywords, cast or genres with). Seen films, watchlisted films (when "
    "excluded) and non-film titles stay out.",
    check_specs=[
        dg.AssetCheckSpec(
            "every_member_served",
            asset="new_for_you",
            description="Every Letterboxd member with a matched film has new films, none of them seen",
        )
    ],
)
def new_for_you(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        in_features = con.execute(
            f"select distinct user_key from {INTERACTIONS} where starts_with(user_key, ?)", [MEMBER_PREFIX]
        ).fetchall()
        members = sorted({*member_keys(con), *(k for (k,) in in_features)})  # onboarded since dbt ran, too
        new = new_films_for(con, Path(settings.models_dir), members, settings.serving_policy())
        out, trained = new.rows, new.model
        unserved = sorted(set(members) - set(out["user_key"].to_list()))
        nothing_matched = [k for k in unserved if member_observations(con, k).filter(pl.col("seen")).is_empty()]
    with duckdb.get_connection() as con:
        replace_table(con, NEW_FOR_YOU, out)
        seen_hits = con.execute(
            f"select count(*) from {NEW_FOR_YOU} r join {INTERACTIONS} i using (user_key, tmdb_id) where i.seen"
        ).fetchall()[0][0]
    served = out["user_key"].n_unique()
    metadata: dict[str, Any] = {
        "rows": out.height,
        "members": len(members),
        "members_served": served,
        "candidates": new.candidates,
        "released_after": str(new.released_after),
        "model": trained.name,
        "model_version": trained.version,
        "preview": dg.MetadataValue.md(
            markdown_preview(out.select("username", "rank", "title", "release_date", "reason"), 15)
        ),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="every_member_served",
                passed=served + len(nothing_matched) == len(members) and seen_hits == 0,
                metadata={
                    "members": len(members),
                    "members_served": served,
                    "members_without_matched_films": dg.MetadataValue.json(
                        [k.removeprefix(MEMBER_PREFIX) for k in nothing_matched]
                    ),
                    "seen_recommendations": int(seen_hits),
                },
            )
        ],
    )
