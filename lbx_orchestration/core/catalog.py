"""Film resolution: give every observed film a TMDb id, and say how sure we are.

A member's corrections (``lbx match``) live in the overrides table and win over search on
every run; a candidate more than a year off is refused and kept, with the reason, for the
member to confirm or correct.

A TV entry (a miniseries or an episode Letterboxd lists among films) is stored as TV:
``media_type`` 'tv', its TMDb TV id in ``tmdb_tv_id`` and ``tmdb_id`` null, because TMDb's TV
ids are another numbering than its film ids: nothing that reads ``tmdb_id`` (interactions,
seen films, lists) can take a show for a film.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import polars as pl

from lbx_orchestration.core.tables import OVERRIDES
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.tmdb.normalize import match_key, title_from_slug
from lbx_orchestration.core.tmdb.resolve import Resolution, resolve_by_search
from lbx_orchestration.core.tmdb.tv import TV_SOURCE, TvMatch, resolve_tv, tv_reason, wants_tv

#: bumped when resolution rules change: stored resolutions of another version are redone
RESOLVER_VERSION = "3"  # 3: a TV title never matches a film, so past fuzzy matches of TV titles are redone

RESOLUTION_SCHEMA: dict[str, pl.DataType] = {
    "film_key": pl.Utf8(),
    "film_title": pl.Utf8(),
    "film_year": pl.Int32(),
    "tmdb_id": pl.Int64(),
    "method": pl.Utf8(),
    "confidence": pl.Float64(),
    "runner_up_id": pl.Int64(),
    "runner_up_confidence": pl.Float64(),
    "candidates": pl.Int32(),
    "ambiguous": pl.Boolean(),
    "candidate_id": pl.Int64(),
    "candidate_title": pl.Utf8(),
    "candidate_year": pl.Int32(),
    "reason": pl.Utf8(),
    "resolver": pl.Utf8(),
    "media_type": pl.Utf8(),  # 'movie' (tmdb_id is a film), 'tv' (tmdb_tv_id is a show), null: unknown
    "tmdb_tv_id": pl.Int64(),
}
MOVIE, TV = "movie", "tv"

OVERRIDES_SCHEMA: dict[str, pl.DataType] = {
    "username": pl.Utf8(),
    "film_title": pl.Utf8(),
    "film_year": pl.Int32(),
    "title_key": pl.Utf8(),
    "tmdb_id": pl.Int64(),
    "created_at": pl.Datetime("us"),
}


def override_map(overrides: pl.DataFrame | None) -> dict[tuple[str, int | None], int]:
    """(match key, year) -> TMDb id; the newest override of a title and year wins."""
    if overrides is None or overrides.is_empty():
        return {}
    rows = overrides.sort("created_at").iter_rows(named=True)
    return {(r["title_key"], r["film_year"]): int(r["tmdb_id"]) for r in rows}


def override_row(username: str, title: str, year: int | None, tmdb_id: int) -> pl.DataFrame:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return pl.DataFrame(
        [
            {
                "username": username,
                "film_title": title,
                "film_year": year,
                "title_key": match_key(title),
                "tmdb_id": int(tmdb_id),
                "created_at": now,
            }
        ],
        schema=OVERRIDES_SCHEMA,
    )


def read_overrides(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    from lbx_orchestration.core.warehouse import read_frame, table_exists

    if not table_exists(con, OVERRIDES):
        return pl.DataFrame(schema=OVERRIDES_SCHEMA)
    return read_frame(con, f"select * from {OVERRIDES}")


def upgrade_resolution_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Add the columns a resolution table written by an older lbx lacks (their rows are
    redone on the next run: their ``resolver`` is null)."""
    from lbx_orchestration.core.warehouse import table_exists

    if not table_exists(con, table):
        return
    types = {
        "Utf8": "varchar",
        "String": "varchar",
        "Int64": "bigint",
        "Int32": "integer",
        "Float64": "double",
        "Boolean": "boolean",
    }
    for column, dtype in RESOLUTION_SCHEMA.items():
        con.execute(f"alter table {table} add column if not exists {column} {types[str(dtype)]}")


def reusable(known: pl.DataFrame | None, overrides: pl.DataFrame | None = None) -> pl.DataFrame:
    """The stored resolutions that still hold: made by this resolver version and not
    contradicted by an override."""
    if known is None or known.is_empty():
        return pl.DataFrame(schema=RESOLUTION_SCHEMA)
    known = known.select(
        [pl.col(c).cast(t) if c in known.columns else pl.lit(None, t).alias(c) for c, t in RESOLUTION_SCHEMA.items()]
    )
    fixed = override_map(overrides)
    current = known.filter(pl.col("resolver") == RESOLVER_VERSION)
    if not fixed:
        return current
    keep = [
        fixed.get((match_key(r["film_title"]), r["film_year"]), r["tmdb_id"]) == r["tmdb_id"]
        for r in current.iter_rows(named=True)
    ]
    return current.filter(pl.Series(keep, dtype=pl.Boolean))


def override_resolutions(films: pl.DataFrame, overrides: pl.DataFrame | None) -> pl.DataFrame:
    """Resolution rows (method ``override``) for the films of ``films`` a correction covers;
    films whose source carries an id are left alone."""
    fixed = override_map(overrides)
    rows = []
    if fixed:
        for film in films.iter_rows(named=True):
            tmdb_id = fixed.get((match_key(film["film_title"]), film["film_year"])) if film["film_title"] else None
            if tmdb_id is not None and film["tmdb_id"] is None:
                rows.append(_row(film, tmdb_id, "override", 1.0))
    return pl.DataFrame(rows, schema=RESOLUTION_SCHEMA)


def resolve_films(
    films: pl.DataFrame, source: TmdbSource, known: pl.DataFrame | None = None, overrides: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One resolution row per ``film_key``.

    ``films`` has film_key, film_title, film_year, tmdb_id (null where the source has none),
    and optionally film_slug (a Letterboxd film link, tried when the title finds nothing),
    tmdb_type and tmdb_tv_id (a source that knows an entry is TV: a Letterboxd film page's
    ``data-tmdb-type``/``/tv/ID/`` link, an RSS item's ``tmdb:tvId``). A film whose title search
    finds no exact title is looked up as TMDb TV too (live TMDb only, see :mod:`core.tmdb.tv`).
    ``known`` holds earlier resolutions by film_key: those of this resolver version with an id
    are kept and not searched again. ``overrides`` (see :data:`OVERRIDES`) win over everything
    but an id the source itself carries.
    """
    films = films.unique(subset=["film_key"], keep="first", maintain_order=True)
    done = {r["film_key"]: r for r in reusable(known, overrides).iter_rows(named=True)}
    fixed = override_map(overrides)
    rows = []
    for film in films.iter_rows(named=True):
        override = (
            fixed.get((match_key(film["film_title"]), film["film_year"])) if fixed and film["film_title"] else None
        )
        if film["tmdb_id"] is not None:
            rows.append(_row(film, int(film["tmdb_id"]), "source", 1.0))
        elif override is not None:
            rows.append(_row(film, override, "override", 1.0))
        elif _tv_from_source(film):
            rows.append(_tv_row(film, film.get("tmdb_tv_id"), TV_SOURCE, 1.0, "the source says this is TV"))
        elif film["film_key"] in done and (
            done[film["film_key"]]["tmdb_id"] is not None or done[film["film_key"]]["media_type"] == TV
        ):
            rows.append(done[film["film_key"]])
        elif film["film_title"] and not match_key(film["film_title"]):
            rows.append(_unsearchable(film, source))
        elif film["film_title"]:
            res = resolve_by_search(source, film["film_title"], film["film_year"])
            if res.tmdb_id is None and film.get("film_slug"):
                slug_title, slug_year = title_from_slug(film["film_slug"])
                by_slug = resolve_by_search(source, slug_title, film["film_year"] or slug_year)
                if by_slug.tmdb_id is not None:
                    res = by_slug
            tv = resolve_tv(source, film["film_title"], film["film_year"]) if wants_tv(res) else None
            if tv is not None:
                rows.append(_tv_search_row(film, tv, res))
                continue
            rows.append(
                _row(
                    film,
                    res.tmdb_id,
                    res.method,
                    res.confidence,
                    res.runner_up,
                    res.runner_up_confidence,
                    res.candidates,
                    res.is_ambiguous,
                    res.candidate_id,
                    res.candidate_title,
                    res.candidate_year,
                    res.reason,
                )
            )
        else:
            rows.append(_row(film, None, "no_title", 0.0))
    return pl.DataFrame(rows, schema=RESOLUTION_SCHEMA)


def _unsearchable(film: dict, source: TmdbSource) -> dict:
    """A title that normalises to nothing ("★", "..."): no search can find it, so try the
    Letterboxd link's slug, else keep the film unresolved with the reason."""
    if film.get("film_slug"):
        slug_title, slug_year = title_from_slug(film["film_slug"])
        if match_key(slug_title):
            res = resolve_by_search(source, slug_title, film["film_year"] or slug_year)
            if res.tmdb_id is not None:
                return _row(film, res.tmdb_id, res.method, res.confidence, candidates=res.candidates)
    reason = (
        f"the title {film['film_title']!r} has no letters or digits to search TMDb with; "
        "fix it with `lbx match USER TITLE YEAR TMDB_ID`"
    )
    return _row(film, None, "unsearchable_title", 0.0, candidates=0, reason=reason)


def _tv_from_source(film: dict) -> bool:
    return film.get("tmdb_tv_id") is not None or film.get("tmdb_type") == TV


def _tv_search_row(film: dict, tv: TvMatch, res: Resolution) -> dict:
    row = _tv_row(film, tv.tmdb_tv_id, tv.method, tv.confidence, tv_reason(tv, res))
    row["candidates"] = res.candidates
    row["candidate_id"] = res.tmdb_id or res.candidate_id  # the film search's best, for the record
    row["candidate_title"] = tv.name
    row["candidate_year"] = tv.first_air_year
    return row


def _tv_row(film: dict, tmdb_tv_id: int | None, method: str, confidence: float, reason: str) -> dict:
    row = _row(film, None, method, confidence, reason=reason)
    row["media_type"] = TV
    row["tmdb_tv_id"] = int(tmdb_tv_id) if tmdb_tv_id is not None else None
    return row


def _row(
    film: dict,
    tmdb_id: int | None,
    method: str,
    confidence: float,
    runner_up: int | None = None,
    runner_up_confidence: float | None = None,
    candidates: int = 1,
    ambiguous: bool = False,
    candidate_id: int | None = None,
    candidate_title: str | None = None,
    candidate_year: int | None = None,
    reason: str | None = None,
) -> dict:
    return {
        "film_key": film["film_key"],
        "film_title": film["film_title"],
        "film_year": film["film_year"],
        "tmdb_id": tmdb_id,
        "method": method,
        "confidence": confidence,
        "runner_up_id": runner_up,
        "runner_up_confidence": runner_up_confidence,
        "candidates": candidates,
        "ambiguous": ambiguous,
        "candidate_id": candidate_id,
        "candidate_title": candidate_title,
        "candidate_year": candidate_year,
        "reason": reason,
        "resolver": RESOLVER_VERSION,
        "media_type": MOVIE if tmdb_id is not None else None,
        "tmdb_tv_id": None,
    }


def is_tv() -> pl.Expr:
    return pl.col("media_type").fill_null("") == TV


def tv_entries(resolutions: pl.DataFrame) -> pl.DataFrame:
    """The entries resolved as TV: counted apart from films, never matched to one."""
    if "media_type" not in resolutions.columns:
        return resolutions.clear()
    return resolutions.filter(is_tv())


def films_only(resolutions: pl.DataFrame) -> pl.DataFrame:
    if "media_type" not in resolutions.columns:
        return resolutions
    return resolutions.filter(~is_tv())


def resolved_share(resolutions: pl.DataFrame, keys: Iterable[str] | None = None) -> float:
    """The share of films (TV entries left out: they are no film to match) with a TMDb id."""
    frame = films_only(resolutions)
    frame = frame if keys is None else frame.filter(pl.col("film_key").is_in(list(keys)))
    if frame.is_empty():
        return 1.0
    return float(frame["tmdb_id"].is_not_null().mean())


def unmatched(resolutions: pl.DataFrame) -> pl.DataFrame:
    """The films a member should look at: no id (refused, not found) or ambiguous; not TV."""
    return films_only(resolutions).filter(pl.col("tmdb_id").is_null() | pl.col("ambiguous"))


def match_summary(observations: pl.DataFrame, resolutions: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """Per kind of observation (rating, watched, diary, ...: one per export file): (films with a
    TMDb id, films). Films are distinct film keys; an id from the source itself counts; TV
    entries are no films (see :func:`tv_summary`)."""
    ids = resolutions.select("film_key", pl.col("tmdb_id").alias("_resolved")).unique("film_key")
    tv = tv_entries(resolutions).select("film_key")
    frame = (
        observations.select("kind", "film_key", "tmdb_id")
        .join(tv, on="film_key", how="anti")
        .join(ids, on="film_key", how="left")
        .group_by("kind", "film_key")
        .agg(pl.coalesce("tmdb_id", "_resolved").is_not_null().any().alias("matched"))
    )
    out = frame.group_by("kind").agg(pl.col("matched").sum(), pl.len()).sort("kind")
    return {r["kind"]: (int(r["matched"]), int(r["len"])) for r in out.iter_rows(named=True)}


def tv_summary(observations: pl.DataFrame, resolutions: pl.DataFrame) -> dict[str, int]:
    """Per kind of observation: how many distinct TV entries (see :func:`tv_entries`)."""
    tv = tv_entries(resolutions).select("film_key").unique()
    out = observations.select("kind", "film_key").unique().join(tv, on="film_key").group_by("kind").len().sort("kind")
    return {r["kind"]: int(r["len"]) for r in out.iter_rows(named=True)}
