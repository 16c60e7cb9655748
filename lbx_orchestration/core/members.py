"""Members: the Letterboxd users lbx recommends to, and how one is onboarded.

``onboard`` is what `lbx import`, the inbox job and the web upload run: read the export (no
lock held), import it (one short write), fold the member into the accepted model without
retraining, and write their list to serving.user_recommendations. ``member_recommendations``
is what a refresh runs: every member ever onboarded gets a list from the new model, trained
into it or folded in.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from lbx_orchestration.core.importer import (
    ImportReport,
    prepare_import,
    read_state,
    resolve_import,
    write_import,
)
from lbx_orchestration.core.member_films import MEMBER_PREFIX, member_key, member_keys, member_observations
from lbx_orchestration.core.ownership import WebOwner
from lbx_orchestration.core.recsys.models.pipeline import ModelFileError, TrainedModel, load_trained
from lbx_orchestration.core.recsys.serving.changed import changed_since_training
from lbx_orchestration.core.recsys.serving.content_blend import blend_main_list
from lbx_orchestration.core.recsys.serving.content_serving import ContentContext, new_films_for
from lbx_orchestration.core.recsys.serving.recommend import (
    OUTPUT_COLUMNS,
    ServingInputs,
    fold_in_user,
    load_serving_inputs,
    read_seen_title_keys,
    recommend_trained,
)
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.settings import duckdb_path
from lbx_orchestration.core.tables import MEMBER_KEYS, NEW_FOR_YOU, RECOMMENDATIONS, accepted_model
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.warehouse import connect, replace_rows, table_exists
from lbx_orchestration.core.warehouse import exists as warehouse_exists


def member_recommendations(con: duckdb.DuckDBPyConnection, inputs: ServingInputs) -> tuple[pl.DataFrame, dict]:
    """Lists for every member: those the model was trained on, with the films it was trained on, in
    one batch; the others (onboarded, or with new films, since the last training) folded in one by
    one, so a rating logged today counts tonight. Returns the rows and counts for metadata."""
    members = member_keys(con)
    trained = {str(k) for k in inputs.trained.interactions.user_ids}
    changed = changed_since_training(con, inputs.trained.interactions, [m for m in members if m in trained])
    in_model = [m for m in members if m in trained and m not in changed]
    parts = [recommend_trained(inputs, in_model)] if in_model else []
    folded, empty = 0, []
    for key in members:
        if key in trained and key not in changed:
            continue
        observations = member_observations(con, key)
        if observations.filter(pl.col("seen")).height == 0:
            empty.append(key.removeprefix(MEMBER_PREFIX))
            continue
        parts.append(fold_in_user(inputs, key, observations))
        folded += 1
    frame = pl.concat(parts, how="vertical_relaxed") if parts else empty_recommendations()
    counts = {"members": len(members), "trained": len(in_model), "folded_in": folded, "no_seen_films": empty}
    return frame, {**counts, "changed_since_training": len(changed)}


def empty_recommendations() -> pl.DataFrame:
    return pl.DataFrame(schema={c: None for c in OUTPUT_COLUMNS}).cast(
        {"rank": pl.Int32, "tmdb_id": pl.Int64, "score": pl.Float64, "year": pl.Int32}, strict=False
    )


@dataclass(frozen=True)
class Onboarded:
    report: ImportReport
    recommendations: pl.DataFrame  # serving.user_recommendations rows of this member
    model: str | None  # "ease 20261130T...": the model the list came from, None when there is none yet
    note: str = ""  # why there is no list, when there is none
    seconds: float = 0.0
    new_films: pl.DataFrame | None = None  # serving.new_for_you rows of this member (content model)


def onboard(
    path: str | os.PathLike[str],
    *,
    username: str | None = None,
    db: Path | None = None,
    tmdb_source: TmdbSource | None = None,
    policy: ServingPolicy | None = None,
    min_vote_count: int = 0,
    wait_seconds: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
    scrape_date: dt.date | None = None,
    inputs_cache: dict[Path, tuple[TrainedModel, ServingInputs]] | None = None,
    models_dir: Path | None = None,
    owner: WebOwner | None = None,
) -> Onboarded:
    """Import an export and give the member their list from the accepted model, at once.

    Raises ExportError (nothing written) for a bad or older export, WarehouseBusy when another
    process holds the warehouse for longer than ``wait_seconds``. ``inputs_cache`` (served model
    path -> its loaded model and serving inputs) spares a long-lived caller reloading them, and
    the explanation embeddings, for every member while the accepted model stays the same.
    """
    started = time.perf_counter()
    db = Path(db) if db is not None else duckdb_path()
    prepared = prepare_import(path, username, scrape_date)  # parse with no lock held
    if warehouse_exists(db):
        with connect(db, read_only=True, wait_seconds=wait_seconds, on_wait=on_wait) as con:
            if owner is not None:  # refuse a stranger before any TMDb look-up
                owner.check(con, prepared.username)
            previous, known = read_state(con, prepared)
    else:
        previous, known = None, pl.DataFrame()
    if known.width == 0:
        from lbx_orchestration.core.catalog import RESOLUTION_SCHEMA

        known = pl.DataFrame(schema=RESOLUTION_SCHEMA)
    plan = resolve_import(prepared, previous, known, tmdb_source)  # TMDb look-ups, no lock held
    with connect(db, wait_seconds=wait_seconds, on_wait=on_wait) as con:
        claim = None
        if owner is not None:  # again under the write lock: another upload may have created them
            owner.check(con, prepared.username)
            rows = owner.claim_rows(prepared.username)
            claim = {MEMBER_KEYS: (rows, {"username": [rows["username"][0]]})} if rows is not None else None
        report = write_import(con, plan, claim)
        served = accepted_model(con)
        if served is None:
            return Onboarded(
                report,
                empty_recommendations(),
                None,
                "no accepted model yet: run `make demo` (or materialize the graph) once",
                time.perf_counter() - started,
            )
        cached = inputs_cache.get(served.path) if inputs_cache is not None else None
        if cached is not None:
            trained, inputs = cached
        else:
            try:
                trained = load_trained(served.path)
            except ModelFileError as exc:
                return Onboarded(
                    report,
                    empty_recommendations(),
                    None,
                    f"the served model cannot be loaded: {exc}",
                    time.perf_counter() - started,
                )
            inputs = load_serving_inputs(con, trained, policy or ServingPolicy(), min_vote_count, users=[])
            if inputs_cache is not None:  # a long-lived caller (the web app) keeps one model's inputs
                inputs_cache.clear()
                inputs_cache[served.path] = (trained, inputs)
        key = member_key(report.username)
        observations = member_observations(con, key)
        if observations.filter(pl.col("seen")).height == 0:
            return Onboarded(
                report,
                empty_recommendations(),
                _describe(trained),
                "none of the films in this export could be matched to TMDb, so there is "
                "nothing to recommend from yet (see `lbx unmatched`)",
                time.perf_counter() - started,
            )
        recs = fold_in_user(inputs, key, observations, read_seen_title_keys(con, key))
        # the same blend and new films as the refresh, from the content model
        # the content model lives beside the served one (<models_dir>/<name>/<version>)
        policy, models_dir = policy or ServingPolicy(), models_dir or served.path.parents[1]
        try:
            content: ContentContext | None = ContentContext.load(con, models_dir)
        except FileNotFoundError:
            content = None  # before the first content model: the list as is, no new films
        if content is not None:
            recs = blend_main_list(con, recs, policy, models_dir, content)
        replace_rows(con, RECOMMENDATIONS, recs, {"user_key": [key]})
        new = _new_films(con, models_dir, key, policy, content) if content is not None else None
    return Onboarded(report, recs, _describe(trained), seconds=time.perf_counter() - started, new_films=new)


def _new_films(
    con: duckdb.DuckDBPyConnection, models_dir: Path, key: str, policy: ServingPolicy, content: ContentContext
) -> pl.DataFrame | None:
    """The member's serving.new_for_you rows, written now rather than at the next refresh;
    None before the first new_for_you run."""
    if not table_exists(con, NEW_FOR_YOU):
        return None
    rows = new_films_for(con, models_dir, [key], policy, content).rows
    replace_rows(con, NEW_FOR_YOU, rows, {"user_key": [key]})
    return rows


def _describe(trained: TrainedModel) -> str:
    return f"{trained.name} {trained.version}"
