"""A member's list ranked on request inside a filter (genre, decade, years, a set of films) and
a watchlist choice.

The stored list holds the top 50 of everything: filtering it leaves a handful of films for a
narrow filter ("Horror, 1970s" kept one). Here the filter narrows the films the model may pick
before ranking, and the member is folded into the served model (tens of milliseconds), so a
filter returns as many films as asked whenever the catalogue holds that many.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from lbx_orchestration.core.guest_input import BASES, LATEST, MIN_RATING_OF
from lbx_orchestration.core.recsys.serving.recommend import ServingInputs, fold_in_user
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy

Watchlist = Literal["exclude", "include", "only"]
WATCHLIST_CHOICES: tuple[str, ...] = ("exclude", "include", "only")


@dataclass(frozen=True)
class FilmFilter:
    genre: str | None = None
    decade: str | None = None
    min_year: int | None = None
    max_year: int | None = None
    only_ids: frozenset[int] | None = None  # a list's or a provider's films; None: any film
    excluded_ids: frozenset[int] = frozenset()  # films the member has seen under another id or title


def film_mask(films: pl.DataFrame, keep: FilmFilter) -> np.ndarray:
    """Which of ``films`` (tmdb_id, year, genres, decade; the model's items in order) pass."""
    expr = pl.lit(True)
    if keep.genre:
        expr &= pl.col("genres").list.contains(keep.genre)
    if keep.decade:
        expr &= pl.col("decade") == keep.decade
    if keep.min_year is not None:
        expr &= pl.col("year") >= keep.min_year
    if keep.max_year is not None:
        expr &= pl.col("year") <= keep.max_year
    if keep.only_ids is not None:
        expr &= pl.col("tmdb_id").is_in(list(keep.only_ids))
    if keep.excluded_ids:
        expr &= ~pl.col("tmdb_id").is_in(list(keep.excluded_ids))
    return films.select(expr.fill_null(False)).to_series().to_numpy().astype(bool)


def watchlist_ids(observations: pl.DataFrame) -> frozenset[int]:
    """The member's watchlist films they have not seen yet."""
    rows = observations.filter(pl.col("on_watchlist") & ~pl.col("seen"))
    return frozenset(int(i) for i in rows["tmdb_id"].to_list())


def basis_observations(observations: pl.DataFrame, basis: str) -> pl.DataFrame:
    """The member's observations a list is based on (``core.guest_input.BASES``): the seen films
    of the basis, and every watchlist row (the watchlist choice still applies). Films outside the
    basis are no signal; they stay out of the list through the filter's ``excluded_ids``."""
    if basis == "all":
        return observations
    seen = pl.col("seen")
    floor = MIN_RATING_OF.get(basis)
    if floor is not None:
        chosen = seen & (pl.col("rating").fill_null(0) >= floor)
    elif basis == "latest50" and "last_at" in observations.columns:
        latest = observations.filter(seen).sort("last_at", descending=True, nulls_last=True).head(LATEST)
        chosen = pl.col("tmdb_id").is_in(latest["tmdb_id"].to_list())
    elif basis == "latest50":
        chosen = seen  # no dates to order by (an upload before the next snapshot): every film
    else:
        raise ValueError(f"basis must be one of {list(BASES)}, not {basis!r}")
    on_list = pl.col("on_watchlist").fill_null(False) & ~seen
    return observations.filter(chosen | on_list)


def narrowed_filter(keep: FilmFilter, observations: pl.DataFrame, watchlist: Watchlist) -> FilmFilter:
    """``keep``, narrowed to the member's watchlist when only it is ranked."""
    if watchlist not in WATCHLIST_CHOICES:
        raise ValueError(f"watchlist must be one of {WATCHLIST_CHOICES}, not {watchlist!r}")
    if watchlist != "only":
        return keep
    wanted = watchlist_ids(observations)
    return dataclasses.replace(keep, only_ids=wanted if keep.only_ids is None else keep.only_ids & wanted)


def watchlist_policy(policy: ServingPolicy, watchlist: Watchlist) -> ServingPolicy:
    """``policy`` with the list's watchlist choice: left out, or any film ("include", "only")."""
    return dataclasses.replace(policy, watchlist="exclude" if watchlist == "exclude" else "ignore")


def ranked_for_member(
    inputs: ServingInputs,
    user_key: str,
    observations: pl.DataFrame,
    keep: FilmFilter,
    limit: int,
    watchlist: Watchlist = "exclude",
) -> pl.DataFrame:
    """Up to ``limit`` films for the member (``observations``: tmdb_id, rating, seen,
    on_watchlist) among the films ``keep`` lets through, best first, with reasons; the rows of
    serving.user_recommendations. ``watchlist``: leave it out, treat it as any film, or rank
    only it."""
    keep = narrowed_filter(keep, observations, watchlist)
    allowed = inputs.allowed & film_mask(inputs.films, keep)
    policy = dataclasses.replace(
        watchlist_policy(inputs.policy, watchlist), top_n=limit, candidates=max(inputs.policy.candidates, 4 * limit)
    )
    narrowed = dataclasses.replace(inputs, allowed=allowed, policy=policy)
    return fold_in_user(narrowed, user_key, observations)
