"""Blending the content model's new films into a list: the main list at the refresh and at
onboarding (``blend_main_list``), and one member's or guest's list ranked on request
(``blend_for_member``), both fused by the member's recent share (``present``) or by fixed
weights (``blend``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from lbx_orchestration.core.recsys.serving.blend import BlendWeights, blend_frames, on_collaborative_scale
from lbx_orchestration.core.recsys.serving.content_serving import (
    CandidatePool,
    ContentContext,
    content_rows,
    known_enough,
    not_seen_by_title,
    now,
    released_by,
    score_content,
    with_film_columns,
)
from lbx_orchestration.core.recsys.serving.filtered import FilmFilter, film_mask
from lbx_orchestration.core.recsys.serving.present import member_shares, merge_frames, recent_cutoff, shares_of
from lbx_orchestration.core.recsys.serving.recommend import decade
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.seen import seen_by_title


def blend_main_list(
    con: duckdb.DuckDBPyConnection,
    out: pl.DataFrame,
    policy: ServingPolicy,
    models_dir: Path,
    context: ContentContext | None = None,
) -> pl.DataFrame:
    """The main list with content candidates blended in: films of the last
    ``blend_recent_years`` years of the data, ranked by the content model, fused with the
    collaborative list by weighted reciprocal rank (``core.recsys.serving.blend``).
    Without a content model yet, the list is returned unchanged."""
    weights = BlendWeights(policy.blend_collaborative_weight, policy.blend_content_weight)
    if weights.content_share == 0 or out.height == 0:
        return out
    if context is None:
        try:
            context = ContentContext.load(con, models_dir)
        except FileNotFoundError:
            return out
    users = out["user_key"].unique().to_list()
    top_n = int(out.group_by("user_key").len()["len"].max() or policy.top_n)
    candidates = blend_candidates(context.films, policy)
    recs, explainer = content_rows(con, context, candidates, users, policy.watchlist, top_n, explain=False)
    recs = not_seen_by_title(con, recs, context.films)
    # members whose latest films say how recent they watch get that share (core.recsys.serving.present);
    # the others get the fixed-weight fusion
    years, cutoff = context.films.select("tmdb_id", "year"), recent_cutoff(context.films["year"].max())
    shares = member_shares(con, users, years, cutoff) if policy.blend_by_member_share else {}
    return _fused(out, recs, explainer, context, policy, shares, top_n)


def blend_for_member(
    out: pl.DataFrame,
    user_key: str,
    observations: pl.DataFrame,
    policy: ServingPolicy,
    context: ContentContext,
    keep: FilmFilter,
    top_n: int,
) -> pl.DataFrame:
    """One member's filtered list (``out``, the collaborative model's, maybe empty) with the
    content model's new films that pass ``keep`` blended in as the main list blends them, and
    up to ``top_n`` filled from them when the community has rated fewer films of the filter
    ("2020s"). From the member's ``observations`` (tmdb_id, rating, seen, on_watchlist, and
    last_at if known: without it, every film counts towards their recent share), folded in,
    with no warehouse read: the web app ranks on request. ``keep.excluded_ids`` must hold the
    films the member logged under another title (``seen_in_pool``)."""
    weights = BlendWeights(policy.blend_collaborative_weight, policy.blend_content_weight)
    if weights.content_share == 0 or not observations["seen"].any():
        return out
    pool = candidate_pool(context, policy)
    candidates = pool.films.filter(film_mask(pool.films.with_columns(decade(pl.col("year")).alias("decade")), keep))
    mine = observations.with_columns(pl.lit(user_key).alias("user_key"))
    if "last_at" not in mine.columns:
        mine = mine.with_columns(pl.lit(now()).alias("last_at"))
    recs, explainer = score_content(
        context,
        candidates,
        mine.select("user_key", "tmdb_id", "rating", "seen", "on_watchlist"),
        [],
        [user_key],
        policy.watchlist,
        2 * top_n + 10,  # enough to fill the list past the films the collaborative list holds too
        explain=False,
        features=pool.rows(candidates),
    )
    shares: dict[str, float] = {}
    if policy.blend_by_member_share:
        logged = mine.filter(pl.col("seen")).select("user_key", "tmdb_id", pl.col("last_at").alias("logged"))
        years = context.films.select("tmdb_id", "year")
        shares = shares_of(logged, years, recent_cutoff(context.films["year"].max()))
    return _fused(out, recs, explainer, context, policy, shares, top_n)


def candidate_pool(context: ContentContext, policy: ServingPolicy) -> CandidatePool:
    """``blend_candidates`` under ``policy``, kept in ``context`` with their feature rows."""
    key = ("blend", policy.blend_recent_years, policy.new_film_min_votes, policy.new_film_min_rating, policy.as_of)
    return context.pool(key, lambda films: blend_candidates(films, policy))


def seen_in_pool(pool: CandidatePool, seen_keys: pl.DataFrame) -> set[int]:
    """The pool's films a user has seen by title (``seen_keys``: ``core.seen.seen_title_keys``)."""
    return set(seen_by_title(seen_keys, pool.title_keys())["tmdb_id"].to_list())


def blend_candidates(films: pl.DataFrame, policy: ServingPolicy) -> pl.DataFrame:
    """The new films a main list may take: of the last ``blend_recent_years`` years (at least
    the recent ones, ``present.recent_cutoff``), known enough, released by the policy's day."""
    last_year = films["year"].max()
    return films.filter(
        pl.col("year") >= min(recent_cutoff(last_year), (last_year or 0) - policy.blend_recent_years + 1),
        known_enough(policy),
        released_by(policy.as_of),
    )


def _fused(
    out: pl.DataFrame,
    recs: pl.DataFrame,
    explainer: Callable[[pl.DataFrame], pl.Series],
    context: ContentContext,
    policy: ServingPolicy,
    shares: dict[str, float],
    top_n: int,
) -> pl.DataFrame:
    """``out`` and the content rows ``recs`` in one list per user: by the member's recent share
    where ``shares`` knows it, else the fixed-weight fusion; reasons only for the picks kept."""
    trained, films = context.trained, context.films
    weights = BlendWeights(policy.blend_collaborative_weight, policy.blend_content_weight)
    year = pl.col("year")
    extra = with_film_columns(recs, films).with_columns(
        decade(year).alias("decade"),
        year.cast(pl.Int32).alias("year"),
        pl.lit(trained.name).alias("model"),
        pl.lit(trained.version).alias("model_version"),
        pl.lit(out["generated_at"][0] if out.height else now(), dtype=out.schema["generated_at"]).alias("generated_at"),
    )
    recent = set(films.filter(year >= recent_cutoff(films["year"].max()))["tmdb_id"].to_list())
    by_share = pl.col("user_key").is_in(list(shares))
    blended = on_collaborative_scale(
        pl.concat(
            [
                merge_frames(out.filter(by_share), extra.filter(by_share).select(out.columns), recent, shares, top_n),
                blend_frames(out.filter(~by_share), extra.filter(~by_share).select(out.columns), top_n, weights),
            ],
            how="vertical_relaxed",
        )
    )
    picked = blended.filter(pl.col("candidate") == "content")
    if picked.height:
        explained = picked.select("user_key", "tmdb_id").with_columns(_reason=explainer(picked))
        blended = blended.join(explained, on=["user_key", "tmdb_id"], how="left").with_columns(
            pl.coalesce("_reason", "reason").alias("reason")
        )
    return blended.with_columns(pl.col("rank").cast(out.schema["rank"])).select(out.columns)
