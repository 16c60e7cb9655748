"""New films for each member, from the content model: ``serving.new_for_you``; and the content
candidates the main list blends in (``blend_main_list``)."""

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.recsys.blend import BlendWeights, blend_frames
from lbx_orchestration.core.recsys.content_features import FeatureSpace, film_tokens
from lbx_orchestration.core.recsys.new_films import content_recommendations, explain_rows, rated_films
from lbx_orchestration.core.recsys.pipeline import TrainedModel, latest_path, load_trained
from lbx_orchestration.core.tables import INTERACTIONS, NEW_FOR_YOU, TMDB_CATALOG, TMDB_MOVIES
from lbx_orchestration.core.tmdb.flatten import TMDB_MOVIE_SCHEMA
from lbx_orchestration.core.warehouse import markdown_preview, read_frame, replace_table, table_exists
from lbx_orchestration.models.content import CONTENT_ALIAS, FEATURE_SPACE_FILE
from lbx_orchestration.resources import LbxSettings

MEMBER_SOURCE = "letterboxd"
FILM_COLUMNS = [c for c in TMDB_MOVIE_SCHEMA if c not in ("poster_path", "poster_url", "providers")]


def known_films(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Flat TMDb rows of every film lbx knows: the catalogue first, then the films logged."""
    cols = ", ".join(FILM_COLUMNS)
    frames = [
        read_frame(con, f"select {cols} from {table}")
        for table in (TMDB_CATALOG, TMDB_MOVIES)
        if table_exists(con, table)
    ]
    if not frames:
        raise RuntimeError(f"neither {TMDB_CATALOG} nor {TMDB_MOVIES} exists: materialize the metadata group first")
    films = pl.concat(frames, how="vertical_relaxed").unique("tmdb_id", keep="first", maintain_order=True)
    return films.filter(pl.col("media_type").fill_null("movie") == "movie")


def released_within(films: pl.DataFrame, months: int, today: dt.date | None = None) -> tuple[pl.DataFrame, dt.date]:
    """Films released in the last ``months`` months of the catalogue (up to ``today``)."""
    today = today or dt.datetime.now(dt.UTC).date()
    dated = films.with_columns(_date=pl.col("release_date").str.to_date("%Y-%m-%d", strict=False)).filter(
        pl.col("_date").is_not_null() & (pl.col("_date") <= today)
    )
    if dated.height == 0:
        return dated.drop("_date"), today
    last = dated["_date"].max()
    assert isinstance(last, dt.date)
    start = _months_before(last, months)
    return dated.filter(pl.col("_date") > start).drop("_date"), start


def _months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, 28))


def _load_content(settings: LbxSettings) -> tuple[TrainedModel, FeatureSpace]:
    path = latest_path(Path(settings.models_dir), CONTENT_ALIAS)
    return load_trained(path), FeatureSpace.load(path / FEATURE_SPACE_FILE)


def content_rows(
    con: duckdb.DuckDBPyConnection,
    trained: TrainedModel,
    space: FeatureSpace,
    candidates: pl.DataFrame,
    user_keys: list[str],
    settings: LbxSettings,
    top_n: int,
    films: pl.DataFrame,
    explain: bool = True,
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.Series]]:
    """Each user's top ``top_n`` of ``candidates`` by the content model, seen (and watchlisted
    when excluded) films left out, with reasons (or, without ``explain``, a function that
    gives the reasons of the rows one keeps)."""
    interactions = read_frame(con, f"select user_key, tmdb_id, rating, seen, on_watchlist from {INTERACTIONS}")
    index = {k: i for i, k in enumerate(trained.interactions.user_ids.astype(str))}
    users = [k for k in user_keys if k in index]
    mine = interactions.filter(pl.col("user_key").is_in(users))
    drop = pl.col("seen") | (pl.col("on_watchlist") if settings.watchlist == "exclude" else pl.lit(False))
    excluded: dict[str, set[int]] = {}
    for key, film in mine.filter(drop).select("user_key", "tmdb_id").iter_rows():
        excluded.setdefault(key, set()).add(int(film))
    titles = dict(films.select("tmdb_id", "title").iter_rows())
    tokens = {int(r["tmdb_id"]): film_tokens(r) for r in films.iter_rows(named=True)}
    rated = rated_films(mine, titles, tokens)
    recs = content_recommendations(
        trained.model,
        trained.interactions.matrix,
        np.array([index[k] for k in users], dtype=np.int64),
        users,
        candidates["tmdb_id"].to_numpy(),
        space.transform(candidates),
        excluded,
        rated,
        tokens,
        top_n,
        explain=explain,
    )
    return recs, lambda rows: explain_rows(rows, rated, tokens)


def _with_film_columns(recs: pl.DataFrame, films: pl.DataFrame) -> pl.DataFrame:
    parts = pl.col("user_key").str.split_exact(":", 1).struct
    return recs.join(
        films.select("tmdb_id", "title", "year", "release_date", "genres"), on="tmdb_id", how="left"
    ).with_columns(
        parts.field("field_0").alias("source"), parts.field("field_1").alias("username"), pl.col("genres").fill_null([])
    )


def blend_main_list(con: duckdb.DuckDBPyConnection, out: pl.DataFrame, settings: LbxSettings) -> pl.DataFrame:
    """The main list with content candidates blended in: films of the last
    ``blend_recent_years`` years of the data, ranked by the content model, fused with the
    collaborative list by weighted reciprocal rank (``core.recsys.blend``).
    Without a content model yet, the list is returned unchanged."""
    weights = BlendWeights(settings.blend_collaborative_weight, settings.blend_content_weight)
    if weights.content_share == 0 or out.height == 0:
        return out
    try:
        trained, space = _load_content(settings)
    except FileNotFoundError:
        return out
    films = known_films(con)
    last_year = films["year"].max()
    candidates = films.filter(pl.col("year") > (last_year or 0) - settings.blend_recent_years)
    top_n = int(out.group_by("user_key").len()["len"].max() or settings.top_n)
    recs, explainer = content_rows(
        con, trained, space, candidates, out["user_key"].unique().to_list(), settings, top_n, films, explain=False
    )
    year = pl.col("year")
    extra = _with_film_columns(recs, films).with_columns(
        pl.when(year.is_null())
        .then(pl.lit("unknown"))
        .when(year < 1950)
        .then(pl.lit("pre_1950"))
        .otherwise(((year // 10) * 10).cast(pl.Utf8) + "s")
        .alias("decade"),
        year.cast(pl.Int32).alias("year"),
        pl.lit(trained.name).alias("model"),
        pl.lit(trained.version).alias("model_version"),
        pl.lit(out["generated_at"][0]).alias("generated_at"),
    )
    blended = blend_frames(out, extra.select(out.columns), top_n, weights)
    picked = blended.filter(pl.col("candidate") == "content")
    if picked.height:
        explained = picked.select("user_key", "tmdb_id").with_columns(_reason=explainer(picked))
        blended = blended.join(explained, on=["user_key", "tmdb_id"], how="left").with_columns(
            pl.coalesce("_reason", "reason").alias("reason")
        )
    return blended.with_columns(pl.col("rank").cast(out.schema["rank"])).select(out.columns)


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
            "every_member_served", asset="new_for_you", description="Every Letterboxd member has new films, none seen"
        )
    ],
)
def new_for_you(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: LbxSettings
) -> dg.MaterializeResult:
    trained, space = _load_content(settings)
    members = [k for k in trained.interactions.user_ids.astype(str) if k.startswith(f"{MEMBER_SOURCE}:")]
    with duckdb.get_connection() as con:
        films = known_films(con)
        candidates, since = released_within(films, settings.new_for_you_months)
        recs, _ = content_rows(con, trained, space, candidates, members, settings, settings.new_for_you_top_n, films)
    generated = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    out = (
        _with_film_columns(recs, films)
        .with_columns(
            pl.lit(trained.name).alias("model"),
            pl.lit(trained.version).alias("model_version"),
            pl.lit(generated).alias("generated_at"),
        )
        .select(
            "username",
            "source",
            "user_key",
            "rank",
            "tmdb_id",
            "title",
            "year",
            "release_date",
            "genres",
            "score",
            "reason",
            "model",
            "model_version",
            "generated_at",
        )
        .sort("user_key", "rank")
    )
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
        "candidates": candidates.height,
        "released_after": str(since),
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
                passed=served == len(members) and seen_hits == 0,
                metadata={"members": len(members), "members_served": served, "seen_recommendations": int(seen_hits)},
            )
        ],
    )
