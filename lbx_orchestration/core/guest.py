"""A guest's list: films typed by someone with no export, matched to TMDb and folded into the
served model for this one answer. Nothing about the guest is written anywhere: the films live
in the request and the answer only.

Titles go through the same search and ranking as an export's films (``core/tmdb/resolve.py``:
the year within one, a confidence); a title the search cannot place is then compared, with a
typo's tolerance, to the names of the films the model knows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from difflib import get_close_matches
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lbx_orchestration.core.guest_input import GuestFilm, GuestInputError, in_basis
from lbx_orchestration.core.recsys.models.pipeline import ModelFileError, TrainedModel, load_trained
from lbx_orchestration.core.recsys.serving.content_blend import blend_for_member, candidate_pool, seen_in_pool
from lbx_orchestration.core.recsys.serving.content_serving import ContentContext
from lbx_orchestration.core.recsys.serving.filtered import FilmFilter
from lbx_orchestration.core.recsys.serving.recommend import ServingInputs, fold_in_user, load_serving_inputs
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.seen import seen_title_keys
from lbx_orchestration.core.tables import accepted_model
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.tmdb.normalize import match_key
from lbx_orchestration.core.tmdb.resolve import Resolution, rank_candidates
from lbx_orchestration.core.warehouse import connect

GUEST_KEY = "guest:guest"  # never stored: the fold-in's name for the one user it scores
FUZZY_CUTOFF = 0.8
FUZZY_CANDIDATES = 8
EXACT_METHODS = frozenset({"search_exact_title", "search_exact_original_title", "search_alternative_title"})


@dataclass(frozen=True)
class GuestMatch:
    film: GuestFilm
    tmdb_id: int | None
    title: str | None
    year: int | None
    confidence: float
    method: str
    in_model: bool = False  # the served model knows the film: it shapes the list
    counted: bool = False  # it is in the chosen basis and the model knows it
    suggestion: str | None = None  # not found: the nearest candidate and why it was not used

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.film.text,
            "rating": self.film.rating,
            **{k: v for k, v in asdict(self).items() if k != "film"},
        }


class Catalogue:
    """The served model's films by name, for titles the search cannot place."""

    def __init__(self, inputs: ServingInputs) -> None:
        self.inputs = inputs

    @cached_property
    def ids(self) -> set[int]:
        return set(self.inputs.films["tmdb_id"].to_list())

    @cached_property
    def _by_key(self) -> dict[str, list[int]]:
        full = self.inputs.film_keys.filter(~pl.col("partial")).group_by("key").agg(pl.col("tmdb_id").unique())
        return dict(zip(full["key"].to_list(), full["tmdb_id"].to_list(), strict=True))

    @cached_property
    def _rows(self) -> dict[int, dict[str, Any]]:
        return {r["tmdb_id"]: r for r in self.inputs.films.select("tmdb_id", "title", "year").iter_rows(named=True)}

    @cached_property
    def _raters(self) -> dict[int, float]:
        counts = np.asarray((self.inputs.trained.interactions.matrix > 0).sum(axis=0)).ravel()
        return dict(zip(self.inputs.trained.interactions.item_ids.tolist(), counts.tolist(), strict=True))

    def row(self, tmdb_id: int) -> dict[str, Any] | None:
        return self._rows.get(tmdb_id)

    def near(self, title: str) -> list[dict[str, Any]]:
        """Search-result-shaped films whose names are close to ``title``."""
        keys = get_close_matches(match_key(title), self._by_key, n=FUZZY_CANDIDATES, cutoff=FUZZY_CUTOFF)
        ids = dict.fromkeys(i for k in keys for i in self._by_key[k])
        return [
            {
                "id": i,
                "title": (r := self._rows[i])["title"],
                "release_date": f"{r['year']}-01-01" if r["year"] else "",
                "popularity": self._raters.get(i, 0.0),
            }
            for i in ids
            if i in self._rows
        ]


def match_films(source: TmdbSource, films: list[GuestFilm], catalogue: Catalogue) -> list[GuestMatch]:
    return [_match(source, film, catalogue) for film in films]


def _match(source: TmdbSource, film: GuestFilm, catalogue: Catalogue) -> GuestMatch:
    if film.whole:  # "Alien 3": the number may be the title's, not a rating
        found = _resolve(source, film.whole, film.year, catalogue)
        if found is not None and found[0].method in EXACT_METHODS:
            return _matched(GuestFilm(film.text, film.whole, film.year, None), *found, catalogue)
    resolution, results = _resolve(source, film.title, film.year, catalogue) or (None, [])
    if resolution is None or resolution.tmdb_id is None:
        why = None
        if resolution is not None and resolution.candidate_title:
            year = f" ({resolution.candidate_year})" if resolution.candidate_year else ""
            why = f"{resolution.candidate_title}{year}: {resolution.reason}"
        method = resolution.method if resolution else "empty_title"
        return GuestMatch(film, None, None, None, 0.0, method, suggestion=why)
    return _matched(film, resolution, results, catalogue)


def _resolve(
    source: TmdbSource, title: str, year: int | None, catalogue: Catalogue
) -> tuple[Resolution, list[dict[str, Any]]] | None:
    if not match_key(title):
        return None
    results = source.search_movie(title, year)
    if not results and year is not None:
        results = source.search_movie(title, None)
    resolution = rank_candidates(title, year, results)
    if resolution.tmdb_id is None and (near := catalogue.near(title)):
        fuzzy = rank_candidates(title, year, near)
        if fuzzy.tmdb_id is not None or not results:
            return fuzzy, near
    return resolution, results


def _matched(film: GuestFilm, res: Resolution, results: list[dict[str, Any]], catalogue: Catalogue) -> GuestMatch:
    hit = next((r for r in results if r.get("id") == res.tmdb_id), {})
    known = catalogue.row(int(res.tmdb_id)) or {}
    date = str(hit.get("release_date") or "")
    year = known.get("year") or (int(date[:4]) if date[:4].isdigit() else None)
    title = known.get("title") or hit.get("title")
    return GuestMatch(film, int(res.tmdb_id), title, year, res.confidence, res.method, res.tmdb_id in catalogue.ids)


@dataclass(frozen=True)
class GuestList:
    matches: list[GuestMatch]
    recommendations: pl.DataFrame  # rank, tmdb_id, title, year, genres, decade, score, reason
    model: str


def guest_list(
    inputs: ServingInputs,
    matches: list[GuestMatch],
    basis: str,
    limit: int,
    content: ContentContext | None = None,
) -> GuestList:
    """The guest folded into the served model from the films of ``basis``, with the content
    model's new films (``content``) blended in as a member's list has them: as many as the
    share of recent films among the films they typed; none of the films they typed (by id, or
    by any of their names within a year) is proposed."""
    chosen = in_basis([m.film for m in matches], basis)
    matches = [replace(m, counted=bool(c and m.in_model)) for m, c in zip(matches, chosen, strict=True)]
    counted = [m for m in matches if m.counted]
    if not counted:
        raise GuestInputError(_nothing_counted(matches, basis))
    observations = _observations(counted)
    typed = pl.DataFrame(
        [(GUEST_KEY, m.film.title, m.film.year) for m in matches]
        + [(GUEST_KEY, m.title, m.year) for m in matches if m.title],
        schema={"user_key": pl.Utf8, "film_title": pl.Utf8, "film_year": pl.Int32},
        orient="row",
    )
    recs = fold_in_user(inputs, GUEST_KEY, observations, seen_title_keys(typed))
    given = {m.tmdb_id for m in matches if m.tmdb_id is not None}
    if content is not None:
        recs = _with_new_films(
            recs, inputs, [m for m, c in zip(matches, chosen, strict=True) if c], typed, given, content
        )
    rows = (
        recs.filter(~pl.col("tmdb_id").is_in(list(given)))
        .select("tmdb_id", "title", "year", "genres", "decade", "score", "reason")
        .head(limit)
        .with_row_index("rank", offset=1)
    )
    return GuestList(matches, rows, f"{inputs.trained.name} {inputs.trained.version}")


def _with_new_films(
    recs: pl.DataFrame,
    inputs: ServingInputs,
    chosen: list[GuestMatch],
    typed: pl.DataFrame,
    given: set[int],
    content: ContentContext,
) -> pl.DataFrame:
    """``recs`` with new films blended in, from every film of the basis that was found: a
    2023 film the community has not rated shapes the guest's recent share, if not the fold-in."""
    pool = candidate_pool(content, inputs.policy)
    keep = FilmFilter(excluded_ids=frozenset(given | seen_in_pool(pool, seen_title_keys(typed))))
    observations = _observations([m for m in chosen if m.tmdb_id is not None])
    return blend_for_member(recs, GUEST_KEY, observations, inputs.policy, content, keep, max(recs.height, 1))


def _observations(found: list[GuestMatch]) -> pl.DataFrame:
    """The films as a member's observations (tmdb_id, rating, seen, on_watchlist), one row per
    film with its best rating."""
    return (
        pl.DataFrame(
            {
                "tmdb_id": [m.tmdb_id for m in found],
                "rating": [m.film.rating for m in found],
                "seen": [True] * len(found),
                "on_watchlist": [False] * len(found),
            },
            schema={"tmdb_id": pl.Int64, "rating": pl.Float64, "seen": pl.Boolean, "on_watchlist": pl.Boolean},
        )
        .group_by("tmdb_id", maintain_order=True)
        .agg(pl.col("rating").max(), pl.col("seen").first(), pl.col("on_watchlist").first())
    )


def _nothing_counted(matches: list[GuestMatch], basis: str) -> str:
    if not any(m.tmdb_id for m in matches):
        return "none of the films given was found: check the titles (a year in brackets helps, e.g. 'Heat (1995)')"
    if basis in ("five", "four_up", "three_up") and not any(m.film.rating is not None for m in matches):
        return f"basis {basis!r} chooses films by rating, and no film was given a rating (e.g. 'Heat (1995) 5')"
    if not any(m.in_model for m in matches if m.tmdb_id):
        return "the films given were found, but none is known to the served model (nobody in lbx has rated them)"
    return f"no film given is in basis {basis!r} and known to the served model: choose another basis"


class NoServedModel(RuntimeError):
    pass


def served_inputs(
    db: Path, cache: dict[Path, tuple[TrainedModel, ServingInputs]], wait_seconds: float
) -> ServingInputs:
    """The accepted model's serving inputs, from ``cache`` (shared with ``core.members.onboard``)
    or read once from the warehouse, read-only."""
    with connect(db, read_only=True, wait_seconds=wait_seconds) as con:
        served = accepted_model(con)
        if served is None:
            raise NoServedModel("no accepted model yet: the operator runs `make demo` (or the nightly job) once")
        if (cached := cache.get(served.path)) is not None:
            return cached[1]
        try:
            trained = load_trained(served.path)
        except ModelFileError as exc:
            raise NoServedModel(f"the served model cannot be loaded: {exc}") from exc
        inputs = load_serving_inputs(con, trained, ServingPolicy(), users=[])
    cache.clear()
    cache[served.path] = (trained, inputs)
    return inputs
