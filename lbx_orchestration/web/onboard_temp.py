"""TEMPORARY — delete at merge once ``lbx_orchestration.core.members.onboard`` is on main.

A stand-in with the lead's announced signature, doing what ingest/onboarding.py does (import
the export, then fold the member into the last accepted served model), without Dagster. The
web app imports ``core.members.onboard`` first and falls back to this only when it is missing.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lbx_orchestration.core.importer import RESOLUTION, REVIEWS, ImportReport, import_export
from lbx_orchestration.core.observations import SEEN_KINDS
from lbx_orchestration.core.recsys.pipeline import load_trained
from lbx_orchestration.core.recsys.serve import ServingPolicy
from lbx_orchestration.core.warehouse import connect, read_frame, replace_rows, table_exists
from lbx_orchestration.serving.recommend import fold_in_user, load_serving_inputs
from lbx_orchestration.web.tables import MODEL_METRICS, RECOMMENDATIONS


@dataclass(frozen=True)
class Onboarded:
    report: ImportReport
    recommendations: pl.DataFrame


class NoServedModel(RuntimeError):
    pass


_CACHE: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


def _tmdb_source():  # noqa: ANN202
    if os.environ.get("TMDB_API_KEY") or os.environ.get("TMDB_READ_TOKEN"):
        from lbx_orchestration.core.tmdb.client import TmdbClient

        return TmdbClient.from_env()
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    with _CACHE_LOCK:  # its title index takes seconds to build: once per process
        if "snapshot" not in _CACHE:
            _CACHE["snapshot"] = TmdbSnapshot()
        return _CACHE["snapshot"]


def _inputs(con, model_path: str):  # noqa: ANN001, ANN202
    """The served model and its serving inputs, kept while the served model stays the same: the
    explanation embeddings alone take seconds, and a new member changes none of it."""
    with _CACHE_LOCK:
        cached = _CACHE.get("inputs")
        if cached is None or cached[0] != model_path:
            trained = load_trained(Path(model_path))
            _CACHE["inputs"] = (model_path, load_serving_inputs(con, trained, ServingPolicy()))
        return _CACHE["inputs"][1]


def warm(db: Path | None = None) -> None:
    """Build the caches before the first upload."""
    with connect(db, read_only=True) as con:
        accepted = read_frame(
            con, f"select path from {MODEL_METRICS} where served and accepted order by evaluated_at desc limit 1"
        )
        if accepted.height:
            _inputs(con, accepted["path"][0])
    source = _tmdb_source()
    getattr(source, "search_movie", lambda *a: None)("warm up", None)


def _observations(con, user_key: str) -> pl.DataFrame:  # noqa: ANN001
    kinds = ", ".join(f"'{k}'" for k in SEEN_KINDS)
    return read_frame(
        con,
        f"""
        with rows as (
            select r.*, coalesce(r.tmdb_id, res.tmdb_id) as resolved_id,
                   max(scrape_date) filter (where source = 'letterboxd_export') over () as latest
            from {REVIEWS} r left join {RESOLUTION} res on r.film_key = res.film_key
            where r.user_key = ?
        )
        select resolved_id as tmdb_id,
               arg_max(rating, event_at) filter (where rating is not null) as rating,
               bool_or(kind in ({kinds})) as seen, bool_or(kind = 'watchlist') as on_watchlist
        from rows where resolved_id is not null and (source <> 'letterboxd_export' or scrape_date = latest)
        group by resolved_id order by resolved_id
        """,
        [user_key],
    )


def onboard(path: Path, *, username: str | None = None, db: Path | None = None) -> Onboarded:
    with connect(db) as con:
        if not table_exists(con, MODEL_METRICS):
            raise NoServedModel("no served model yet: materialize the graph first")
        accepted = read_frame(
            con, f"select * from {MODEL_METRICS} where served and accepted order by evaluated_at desc limit 1"
        )
        if accepted.height == 0:
            raise NoServedModel("no accepted served model in serving.model_metrics")
        report = import_export(con, path, username=username, tmdb_source=_tmdb_source())
        inputs = _inputs(con, accepted["path"][0])
        observations = _observations(con, report.user_key)
        if observations.filter(pl.col("seen")).height == 0:
            raise ValueError(f"{report.username} has no seen film lbx could match to TMDb: nothing to fold in")
        recs = fold_in_user(inputs, report.user_key, observations)
        replace_rows(con, RECOMMENDATIONS, recs, {"user_key": [report.user_key]})
    return Onboarded(report, recs)
