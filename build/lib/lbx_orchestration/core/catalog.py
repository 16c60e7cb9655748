"""Film resolution: give every observed film a TMDb id, and say how sure we are."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.tmdb.resolve import resolve_by_search

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
}


def resolve_films(films: pl.DataFrame, source: TmdbSource, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """One resolution row per ``film_key``.

    ``films`` has film_key, film_title, film_year, tmdb_id (null where the source has none).
    ``known`` holds earlier resolutions by film_key: those are kept and not searched again.
    """
    films = films.unique(subset=["film_key"], keep="first", maintain_order=True)
    done = {} if known is None else {r["film_key"]: r for r in known.iter_rows(named=True)}
    rows = []
    for film in films.iter_rows(named=True):
        if film["tmdb_id"] is not None:
            rows.append(_row(film, int(film["tmdb_id"]), "source", 1.0))
        elif film["film_key"] in done and done[film["film_key"]]["tmdb_id"] is not None:
            rows.append(done[film["film_key"]])
        elif film["film_title"]:
            res = resolve_by_search(source, film["film_title"], film["film_year"])
            rows.append(
                _row(film, res.tmdb_id, res.method, res.confidence, res.runner_up,
                     res.runner_up_confidence, res.candidates, res.is_ambiguous)
            )
        else:
            rows.append(_row(film, None, "no_title", 0.0))
    return pl.DataFrame(rows, schema=RESOLUTION_SCHEMA)


def _row(film: dict, tmdb_id: int | None, method: str, confidence: float, runner_up: int | None = None,
         runner_up_confidence: float | None = None, candidates: int = 1, ambiguous: bool = False) -> dict:
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
    }


def resolved_share(resolutions: pl.DataFrame, keys: Iterable[str] | None = None) -> float:
    frame = resolutions if keys is None else resolutions.filter(pl.col("film_key").is_in(list(keys)))
    if frame.is_empty():
        return 1.0
    return float(frame["tmdb_id"].is_not_null().mean())
