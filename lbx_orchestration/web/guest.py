"""``POST /api/guest``: someone without an export types films and gets a list, at once.

A thin layer over ``core/guest.py``. Nothing about the guest is kept: no warehouse write, no
file, and no log line names a film they typed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import polars as pl
from fastapi.responses import JSONResponse

from lbx_orchestration.core.guest import Catalogue, NoServedModel, guest_list, match_films, served_inputs
from lbx_orchestration.core.guest_input import BASES, MAX_FILMS, GuestInputError, apply_ratings, basis_name, parse_films
from lbx_orchestration.core.recsys.serving.recommend import ServingInputs
from lbx_orchestration.web.ratelimit import TokenBuckets

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 30, 50
LETTERBOXD_TMDB = "https://letterboxd.com/tmdb/{}/"


class GuestRefused(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def read_request(body: bytes) -> tuple[list, str, int]:
    """The films, basis and limit of a request body, or GuestRefused naming the cause."""
    if len(body) > MAX_BODY_BYTES:
        raise GuestRefused(413, f"a guest request is at most {MAX_BODY_BYTES:,} bytes; this one is {len(body):,}")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise GuestRefused(400, 'the body is not JSON: send {"films": ["Heat (1995)", "Collateral", ...]}') from None
    if not isinstance(payload, dict) or "films" not in payload:
        raise GuestRefused(422, 'the body must be an object with "films": a list of titles')
    films = payload["films"]
    if isinstance(films, list) and len(films) > MAX_FILMS:
        raise GuestRefused(413, f"{len(films)} films is over the limit of {MAX_FILMS} a request", max_films=MAX_FILMS)
    limit = payload.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise GuestRefused(422, f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    try:
        parsed = apply_ratings(parse_films(films), payload.get("ratings"))
        basis = basis_name(payload.get("basis"))
    except GuestInputError as exc:
        raise GuestRefused(422, str(exc), bases=list(BASES)) from None
    return parsed, basis, limit


def served_path(metrics: pl.DataFrame | None) -> Path | None:
    """The accepted model's folder as the snapshot knows it (core.tables.accepted_model's rule)."""
    if metrics is None or metrics.height == 0:
        return None
    served = metrics.filter(pl.col("served") & pl.col("accepted")).sort("evaluated_at", descending=True)
    return Path(served["path"][0]) if served.height else None


def guest_inputs(state: Any, metrics: pl.DataFrame | None) -> ServingInputs:
    """The served model's inputs: the snapshot names the model, so a cached one needs no
    warehouse connection (a refresh may be writing it)."""
    path = served_path(metrics)
    if path is not None and (cached := state.inputs_cache.get(path)) is not None:
        return cached[1]
    try:
        with state.manager.lock:
            return served_inputs(state.settings.db, state.inputs_cache, wait_seconds=5)
    except NoServedModel as exc:
        raise GuestRefused(503, str(exc)) from None


def answer(state: Any, films: list, basis: str, limit: int) -> dict[str, Any]:
    started = time.perf_counter()
    inputs = guest_inputs(state, getattr(state.manager.current, "model_metrics", None))  # the snapshot is optional
    matches = match_films(state.tmdb_source(), films, Catalogue(inputs))
    path = served_path(getattr(state.manager.current, "model_metrics", None))
    content = state.served.content(path.parents[1]) if path is not None else None
    try:
        result = guest_list(inputs, matches, basis, limit, content)
    except GuestInputError as exc:
        raise GuestRefused(
            422,
            str(exc),
            matches=[m.as_json() for m in matches],
            not_found=[m.film.text for m in matches if not m.tmdb_id],
        ) from None
    recs = result.recommendations.with_columns(pl.format(LETTERBOXD_TMDB, pl.col("tmdb_id")).alias("letterboxd_url"))
    return {
        "basis": basis,
        "basis_means": BASES[basis],
        "matches": [m.as_json() for m in result.matches],
        "not_found": [m.film.text for m in result.matches if m.tmdb_id is None],
        "counted": sum(m.counted for m in result.matches),
        "model": result.model,
        "count": recs.height,
        "recommendations": [{**r, "poster_url": None} for r in recs.iter_rows(named=True)],
        "stored": "nothing: the films you typed are used for this answer only",
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def refuse_early(scope: dict, buckets: TokenBuckets) -> JSONResponse | None:
    """A guest request refused by its headers, before its body is read: no length, too long,
    or too many from one client (guests share the members' rate-limit rule, with their own
    allowance)."""
    length = dict(scope["headers"]).get(b"content-length", b"").decode()
    if not length.isdigit():
        return JSONResponse({"error": "a guest request needs a Content-Length header"}, status_code=411)
    if int(length) > MAX_BODY_BYTES:
        return JSONResponse(
            {"error": f"a guest request is at most {MAX_BODY_BYTES:,} bytes; this one is {int(length):,}"},
            status_code=413,
        )
    client = scope["client"][0] if scope.get("client") else "unknown"
    wait = buckets.take(client)
    if wait > 0:
        return JSONResponse(
            {"error": f"too many guest lists from {client}: try again in {wait:.0f} s"},
            status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    return None
