"""The FastAPI app: a JSON API over the served recommendations and the page that uses it.

Requests are answered from memory (``ServingData``), built from a read-only snapshot of the
warehouse that ``SnapshotManager`` refreshes and swaps atomically; see snapshot.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import duckdb
import numpy as np
import polars as pl
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from lbx_orchestration.core import lake
from lbx_orchestration.core.guest_input import BASES
from lbx_orchestration.core.letterboxd.errors import ExportError
from lbx_orchestration.core.letterboxd.lists import read_lists
from lbx_orchestration.core.letterboxd.usernames import is_username
from lbx_orchestration.core.member_films import member_key, member_observations
from lbx_orchestration.core.members import onboard
from lbx_orchestration.core.ownership import NotOwner, WebOwner
from lbx_orchestration.core.processes import pid_exists
from lbx_orchestration.core.recsys.models.pipeline import load_trained
from lbx_orchestration.core.recsys.serving.filtered import FilmFilter, basis_observations, ranked_for_member
from lbx_orchestration.core.recsys.serving.recommend import load_serving_inputs
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.search import RRF_K, most_similar
from lbx_orchestration.core.settings import data_dir
from lbx_orchestration.core.tables import accepted_model
from lbx_orchestration.core.tmdb.base import TmdbError, TmdbRetryLater, TmdbSource
from lbx_orchestration.core.tmdb.sources import tmdb_source_from_env
from lbx_orchestration.core.warehouse import WarehouseBusy, WarehouseError, connect, duckdb_path
from lbx_orchestration.web import guest as guest_route
from lbx_orchestration.web.dagster_events import report_upload
from lbx_orchestration.web.data import (
    LETTERBOXD_TMDB,
    ServingData,
    load_serving_data,
    member_seen,
    read_member_seen,
    resolve_list_films,
    tmdb_online,
)
from lbx_orchestration.web.ranking import ServedInputs
from lbx_orchestration.web.ratelimit import TokenBuckets
from lbx_orchestration.web.snapshot import SnapshotManager

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
MAX_LIMIT = 50
TMDB_FILM = "https://www.themoviedb.org/movie/{}"
PROVIDER_COUNTRY = "US"  # the country TmdbClient asks watch/providers for (its default)
OFFLINE_PROVIDERS = (
    "provider filtering needs live TMDb watch/providers data: set TMDB_API_KEY (or TMDB_READ_TOKEN) "
    "and materialize tmdb_movies; this warehouse's TMDb metadata has no streaming providers"
)
RETRIEVERS = {
    "lexical": "BM25 (k1=1.2, b=0.75) over title x3, original title x2, director x2, cast, keywords, overview",
    "titles": "TF-IDF of character trigrams over title, original title and other names (finds misspellings)",
    "dense": "none in search: LSA and WordLlama both lowered MRR in benchmarks/search_bench.py (docs/search.md)",
    "fusion": f"reciprocal rank fusion, k={RRF_K}, top 100 of each",
    "rules": "a title equal to the query first, then titles starting with it, then a director or cast member "
    "named in full; a language named in the query keeps that original language; weak hits are cut",
}


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="how many films (at most 50)")]
Year = Annotated[int | None, Query(ge=1870, le=2100)]
Decade = Annotated[str | None, Query(max_length=10, description="1970s, 2000s ... or pre_1950")]
Text = Annotated[str | None, Query(max_length=100)]
Country = Annotated[str | None, Query(pattern="^[A-Za-z]{2}$", description="ISO 3166-1 country")]
WatchlistChoice = Annotated[
    Literal["exclude", "include", "only"],
    Query(description="leave the member's watchlist out (default), count it as any film, or rank only it"),
]
BasisChoice = Annotated[
    Literal["all", "latest50", "five", "four_up", "three_up"],
    Query(description="what the list is based on: every film (default), the latest 50, 5★ only, 4★ and up, 3★ and up"),
]
ListName = Annotated[
    str | None,
    Query(alias="list", max_length=200, description="one of the member's Letterboxd lists, by name or slug"),
]


@dataclass
class RecommendationQuery:
    """The query parameters of a member's recommendations (FastAPI reads them from the fields)."""

    limit: Limit = 20
    genre: Text = None
    decade: Decade = None
    min_year: Year = None
    max_year: Year = None
    watchlist: WatchlistChoice = "exclude"
    exclude_watchlist: bool = False  # older clients: the watchlist is left out by default anyway
    provider: Text = None
    country: Country = None
    list_name: ListName = None
    basis: BasisChoice = "all"


@dataclass
class RecommendationCsvQuery(RecommendationQuery):
    limit: Limit = MAX_LIMIT  # the CSV download defaults to every served film


@dataclass
class WebSettings:
    db: Path = field(default_factory=duckdb_path)
    state_dir: Path | None = None  # snapshot side file, uploads' lists; default: beside the warehouse
    max_upload_bytes: int = 20 * 2**20
    imports_burst: float = 3  # imports a client may start at once ...
    imports_per_minute: float = 2  # ... and how fast that allowance refills
    guests_burst: float = 10  # guest lists (POST /api/guest) a client may ask at once ...
    guests_per_minute: float = 10  # ... and how fast that allowance refills
    refresh_seconds: float = 2.0
    settle_seconds: float = 1.0
    background_refresh: bool = True
    warm_imports: bool = True  # prepare the import path (model, TMDb index) at start-up
    write_wait_seconds: float = 15.0  # how long an import waits for a refresh to release the warehouse

    @property
    def directory(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir)
        # a lake has no folder of its own: the snapshot goes to the data folder
        return data_dir() / "web" if lake.is_lake(self.db) else Path(self.db).parent / "web"


class ApiError(HTTPException):
    pass


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> ApiError:
    return ApiError(status_code=status, detail={"error": message, **extra}, headers=headers)


class WebState:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.lists_dir = settings.directory / "lists"
        # members imported since the snapshot: (list, Letterboxd lists, new films, seen ids, observations)
        self.overlays: dict[str, tuple] = {}
        self.swap_lock = threading.Lock()
        self.manager = SnapshotManager(settings.db, settings.directory, self._load, settings.settle_seconds)
        self.imports_ready = False
        self.inputs_cache: dict = {}  # core.members.onboard's: the accepted model and its serving inputs
        self.served = ServedInputs(settings.db, self.inputs_cache, self.manager.lock)  # filtered lists
        self._tmdb: TmdbSource | None = None
        self._tmdb_lock = threading.Lock()
        self.buckets = TokenBuckets(settings.imports_burst, settings.imports_per_minute / 60)
        self.guest_buckets = TokenBuckets(settings.guests_burst, settings.guests_per_minute / 60)

    def _load(self, side_file: Path) -> ServingData:
        previous = self.manager.current
        data = load_serving_data(side_file, self.lists_dir, previous if isinstance(previous, ServingData) else None)
        with self.swap_lock:  # a member imported meanwhile stays served until the snapshot has them
            for user, (recs, lists, new_films, seen, observed) in list(self.overlays.items()):
                have = data.user(user)
                if have is not None and have[1]["generated_at"].max() >= recs["generated_at"].max():
                    del self.overlays[user]
                else:
                    data = data.with_member(recs["username"][0], recs, lists, new_films, seen, observed)
        return data

    def tmdb_source(self) -> TmdbSource:
        """One TMDb source for every import: live with a key in the environment, else the snapshot."""
        with self._tmdb_lock:
            if self._tmdb is None:
                self._tmdb = tmdb_source_from_env()
            return self._tmdb

    def data(self) -> ServingData:
        current = self.manager.current
        if current is None:
            log.warning("nothing to serve yet: %s", self.manager.last_error or "the snapshot is being built")
            raise _error(
                503,
                "nothing to serve yet: the recommendations are being prepared, or the warehouse has not been "
                "built (the operator runs `make demo`); try again in a minute",
                headers={"Retry-After": "60"},
            )
        return current  # type: ignore[return-value]

    def add_member(
        self,
        recs: pl.DataFrame,
        lists: pl.DataFrame | None,
        new_films: pl.DataFrame | None,
        seen: set[int],
        observed: pl.DataFrame | None = None,
    ) -> None:
        user = recs["username"][0]
        with self.swap_lock:
            self.overlays[user.lower()] = (recs, lists, new_films, seen, observed)
            self.manager.current = self.data().with_member(user, recs, lists, new_films, seen, observed)


# --- shaping rows -----------------------------------------------------------------------------
def _film_row(data: ServingData, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "tmdb_id": row["tmdb_id"],
        "title": row["title"],
        "year": row["year"],
        "genres": row.get("genres") or [],
        "poster_url": data.poster(row.get("poster_url"), row.get("poster_path")),
        "letterboxd_url": LETTERBOXD_TMDB.format(row["tmdb_id"]),
    }


def _rec_rows(data: ServingData, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    online = tmdb_online()
    return [
        {
            "rank": r["rank"],
            "tmdb_id": r["tmdb_id"],
            "title": r["title"],
            "year": r["year"],
            "genres": r["genres"],
            "poster_url": data.poster(r["poster_url"], r["poster_path"]) if online else None,
            "letterboxd_url": r["letterboxd_url"],
            "reason": r["reason"],
            "decade": r["decade"],
            "score": r["score"],
        }
        for r in rows
    ]


def _member_or_404(data: ServingData, username: str) -> str:
    """The member's name as stored (names match without regard to case)."""
    found = data.user(username)
    if found is None:
        raise _error(
            404,
            f"unknown user {username!r}: lbx has no recommendations for them; upload their "
            "Letterboxd export (POST /api/imports, or the form on the page)",
        )
    return found[0]


def _canonical(value: str, known: list[str], what: str) -> str:
    match = {k.lower(): k for k in known}.get(value.strip().lower())
    if match is None:
        raise _error(422, f"unknown {what} {value!r}", known=known)
    return match


def _filtered(
    data: ServingData, username: str, query: RecommendationQuery, served: ServedInputs | None = None
) -> tuple[str, list[dict[str, Any]], dict[str, Any], list[str]]:
    """The member's list under ``query``. Unfiltered: the stored list. Filtered (or another
    watchlist choice): ranked on request among every film they have not seen, when ``served``
    can give the model; else filtered within the stored top 50, said in a note."""
    name = _member_or_404(data, username)
    genre, decade, provider, country = query.genre, query.decade, query.provider, query.country
    min_year, max_year, list_name = query.min_year, query.max_year, query.list_name
    applied: dict[str, Any] = {"limit": query.limit, "watchlist": query.watchlist, "basis": query.basis}
    notes: list[str] = []
    if min_year is not None and max_year is not None and min_year > max_year:
        raise _error(422, f"min_year {min_year} is after max_year {max_year}")
    if genre:
        applied["genre"] = _canonical(genre, data.genres, "genre")
    if decade:
        applied["decade"] = _canonical(decade, data.decades, "decade")
    if min_year is not None:
        applied["min_year"] = min_year
    if max_year is not None:
        applied["max_year"] = max_year
    only: set[int] | None = None
    if provider:
        if not data.providers_available:
            raise _error(422, OFFLINE_PROVIDERS)
        if country and country.upper() != PROVIDER_COUNTRY:
            raise _error(
                422,
                f"streaming providers are known for {PROVIDER_COUNTRY} only (TMDb watch/providers "
                f"was asked for that country), not {country.upper()}",
            )
        applied["provider"] = p = _canonical(provider, data.provider_names, "provider")
        applied["country"] = PROVIDER_COUNTRY
        on = data.films.filter(pl.col("providers").list.contains(p))
        only = set(on["tmdb_id"].to_list())
    if list_name:
        slug, films = _member_list(data, name, list_name)
        applied["list"] = slug
        only = films if only is None else only & films
    if not data.providers_available:
        notes.append(OFFLINE_PROVIDERS)
    if not tmdb_online():
        notes.append("TMDb is offline (no TMDB_API_KEY): no poster URLs")
    narrowed = len(applied) > 3 or query.watchlist != "exclude" or query.basis != "all"
    if narrowed and served is not None:
        result = _ranked(data, name, query, applied, only, served)
        if result is not None:
            ranked, blended = result
            if blended or query.basis != "all":  # the stored list is based on every film
                return name, ranked, applied, notes
            return name, _with_stored_picks(ranked, data.rows[name.lower()], applied, only, query), applied, notes
        notes.append(f"the served model could not be loaded just now: filtered within the stored top {MAX_LIMIT}")
    rows = [r for r in data.rows[name.lower()] if _passes(r, applied, only)]
    if query.watchlist == "only":
        watch = data.watchlists.get(name.lower(), set())
        rows = [r for r in rows if r["tmdb_id"] in watch]
    return name, rows[: query.limit], applied, notes


def _with_stored_picks(
    ranked: list[dict[str, Any]],
    stored: list[dict[str, Any]],
    applied: dict[str, Any],
    only: set[int] | None,
    query: RecommendationQuery,
) -> list[dict[str, Any]]:
    """``ranked`` with the stored list's films that pass the filter but were not ranked (the
    content model's recent picks: the collaborative model cannot score them) at their stored rank;
    for the moments the content model cannot be read."""
    if query.watchlist == "only":
        return ranked
    have = {r["tmdb_id"] for r in ranked}
    out = list(ranked)
    for row in stored:
        if row["tmdb_id"] not in have and _passes(row, applied, only):
            out.insert(min(int(row["rank"]) - 1, len(out)), row)
    return [{**row, "rank": n} for n, row in enumerate(out[: query.limit], start=1)]


def _passes(row: dict[str, Any], applied: dict[str, Any], only: set[int] | None) -> bool:
    year = row["year"]
    return (
        ("genre" not in applied or applied["genre"] in row["genres"])
        and ("decade" not in applied or row["decade"] == applied["decade"])
        and ("min_year" not in applied or (year is not None and year >= applied["min_year"]))
        and ("max_year" not in applied or (year is not None and year <= applied["max_year"]))
        and (only is None or row["tmdb_id"] in only)
    )


def _member_list(data: ServingData, name: str, list_name: str) -> tuple[str, set[int]]:
    lists = data.lists.get(name.lower())
    if lists is None:
        raise _error(404, f"{name} has no Letterboxd lists in the export lbx imported")
    wanted = list_name.strip().lower()
    chosen = lists.filter(
        (pl.col("list_slug").str.to_lowercase() == wanted) | (pl.col("list_name").str.to_lowercase() == wanted)
    )
    if chosen.height == 0:
        raise _error(404, f"{name} has no list {list_name!r}", known=sorted(set(lists["list_slug"].to_list())))
    return chosen["list_slug"][0], set(chosen["tmdb_id"].drop_nulls().to_list())


def _ranked(
    data: ServingData,
    name: str,
    query: RecommendationQuery,
    applied: dict[str, Any],
    only: set[int] | None,
    served: ServedInputs,
) -> tuple[list[dict[str, Any]], bool] | None:
    """The member folded into the served model among the films the filter lets through, with
    the content model's new films among them blended in (basis "all", the main list's own
    blend); and whether they were."""
    observations = data.observations.get(name.lower())
    if observations is None or not observations["seen"].any():
        return None
    observations = basis_observations(observations, query.basis)
    if not observations["seen"].any():
        raise _error(422, f"{name} has no films for basis {query.basis!r} ({BASES[query.basis]})")
    inputs = served.get(data.served_path)
    if inputs is None:
        return None
    keep = FilmFilter(
        genre=applied.get("genre"),
        decade=applied.get("decade"),
        min_year=applied.get("min_year"),
        max_year=applied.get("max_year"),
        only_ids=None if only is None else frozenset(only),
        excluded_ids=frozenset(data.seen_by(name)),
    )
    if query.basis == "all" and data.served_path is not None:
        recs, blended = served.rank_member(
            inputs, data.served_path.parents[1], name, observations, keep, query.limit, query.watchlist, data.generation
        )
    else:  # the content model reads every film of the member: it cannot follow a basis
        recs, blended = (
            ranked_for_member(inputs, member_key(name), observations, keep, query.limit, query.watchlist),
            False,
        )
    return (data.plain_rows(data.with_posters(recs)) if recs.height else []), blended


class UploadGuard:
    """Refuses a state-changing request from another origin, and an upload by its headers (size,
    rate), before its body is read. Plain ASGI: a BaseHTTPMiddleware would cost every other
    request a task and a queue."""

    def __init__(self, app, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            refusal = cross_origin_refusal(scope)
            if refusal is None and scope["method"] == "POST" and scope["path"] == "/api/imports":
                refusal = self.refuse(scope)
            elif refusal is None and scope["method"] == "POST" and scope["path"] == "/api/guest":
                refusal = guest_route.refuse_early(scope, self.state.guest_buckets)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refuse(self, scope) -> JSONResponse | None:
        limit = self.state.settings.max_upload_bytes
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"").decode()
        if not length.isdigit():
            return JSONResponse({"error": "an upload needs a Content-Length header"}, status_code=411)
        if int(length) > limit + 64 * 1024:  # the multipart envelope around the file
            return JSONResponse(
                {"error": f"upload of {int(length):,} bytes is over the limit of {limit:,} bytes"}, status_code=413
            )
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.state.buckets.take(client)
        if wait > 0:
            return JSONResponse(
                {"error": f"too many imports from {client}: try again in {wait:.0f} s"},
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        return None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_origin_refusal(scope) -> JSONResponse | None:
    """CSRF: a browser names the page that sent a request (Sec-Fetch-Site, Origin, Referer); a
    state-changing request is refused unless that page is this server's own. Clients that are
    not browsers (curl, scripts) send none of these and are judged by the member key alone."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return _refused_origin(f"the browser says it came from a {site} page")
    sender = headers.get("origin")
    if sender is None and headers.get("referer"):
        parts = urlsplit(headers["referer"])
        sender = f"{parts.scheme}://{parts.netloc}"
    if sender is None:
        return None
    host = headers.get("host", "")
    parts = urlsplit(sender)
    if sender == "null" or parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return _refused_origin(f"it came from {sender[:100]!r}, not from this server's page")
    return None


def _refused_origin(why: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"cross-origin request refused: {why}. Upload from lbx's own page, or from a client that is "
            "not a browser with the member key in the X-Lbx-Member-Key header."
        },
        status_code=403,
    )


KEY_HEADER = "x-lbx-member-key"
KEY_COOKIE = "lbx_key_"  # + the member's name: one HttpOnly cookie per member this browser owns
KEY_COOKIE_SECONDS = 10 * 365 * 24 * 3600
UPLOAD_PREFIX = "upload-"


def _cookie_keys(request: Request) -> dict[str, str]:
    return {
        name[len(KEY_COOKIE) :]: value
        for name, value in request.cookies.items()
        if name.startswith(KEY_COOKIE) and is_username(name[len(KEY_COOKIE) :]) and len(value) <= 200
    }


def _remove_stale_uploads(directory: Path) -> int:
    """Upload folders of a server that was killed mid-upload (their pid is gone)."""
    removed = 0
    for folder in directory.glob(f"{UPLOAD_PREFIX}*"):
        pid = folder.name[len(UPLOAD_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and pid_exists(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _seconds_until(when: dt.datetime | None) -> int:
    if when is None:
        return 60
    now = dt.datetime.now(dt.UTC)
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # TmdbRetryLater's is naive UTC
    return max(1, math.ceil((when - now).total_seconds()))


# --- the app ----------------------------------------------------------------------------------
def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    state = WebState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if removed := _remove_stale_uploads(settings.directory):
            log.info("removed %d upload folder(s) left by a server that was stopped mid-upload", removed)
        await run_in_threadpool(state.manager.start)
        if settings.background_refresh:
            state.manager.run_in_background(settings.refresh_seconds)
        if settings.warm_imports:
            threading.Thread(target=_warm_imports, args=(state,), name="lbx-warm", daemon=True).start()
        try:
            yield
        finally:
            state.manager.stop()

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: /openapi.json is served
        redoc_url=None,
        title="lbx",
        description="Personal film recommendations from Letterboxd diaries: the members' API. "
        "Film metadata from TMDb (this product uses the TMDB API but is not endorsed or certified by TMDB).",
        version="0.1.0",
    )
    app.state.lbx = state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "lbx failed to answer this request (the server log has the details); nothing was changed"},
            status_code=500,
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(
            {
                "error": "bad parameters: " + "; ".join(problems),
                "detail": [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()],
            },
            status_code=422,
        )

    app.add_middleware(UploadGuard, state=state)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        data = state.data()
        return {
            "status": "ok",
            "users": len(data.recommendations),
            "films": data.films.height,
            "imports_ready": state.imports_ready,
            "snapshot": state.manager.public_status(),
        }

    @app.get("/api/meta")
    def meta() -> dict[str, Any]:
        data = state.data()
        letterboxd = sorted(
            v for k, v in data.usernames.items() if data.recommendations[k]["source"][0] == "letterboxd"
        )
        return {
            "genres": data.genres,
            "decades": data.decades,
            "tmdb_online": tmdb_online(),
            "tmdb_sources": data.tmdb_source_kinds,
            "providers_available": data.providers_available,
            "providers": data.provider_names,
            "provider_country": PROVIDER_COUNTRY,
            "letterboxd_members": letterboxd,
            "max_upload_bytes": settings.max_upload_bytes,
            "retrievers": RETRIEVERS,
        }

    def recommendations_frame(
        username: str, query: RecommendationQuery
    ) -> tuple[ServingData, tuple[str, list[dict[str, Any]], dict[str, Any], list[str]]]:
        data = state.data()
        return data, _filtered(data, username, query, state.served)

    @app.get("/api/users/{username}/recommendations", response_class=JSONResponse)
    async def recommendations(username: str, query: Annotated[RecommendationQuery, Depends()]) -> JSONResponse:
        """A member's recommendations (usernames match without regard to case), best first, filtered.
        The unfiltered list is answered from memory on the event loop; a filtered one folds the
        member into the served model (tens of milliseconds) in a worker thread."""
        unfiltered = not (query.genre or query.decade or query.provider or query.list_name) and (
            query.min_year is None and query.max_year is None and query.watchlist == "exclude"
        )
        if unfiltered:
            data, (name, rows, applied, notes) = recommendations_frame(username, query)
        else:
            data, (name, rows, applied, notes) = await run_in_threadpool(recommendations_frame, username, query)
        return JSONResponse(
            {
                **data.headers[name.lower()],
                "filters": applied,
                "count": len(rows),
                "notes": notes,
                "tmdb_online": tmdb_online(),
                "recommendations": _rec_rows(data, rows),
            }
        )

    @app.get("/api/users/{username}/recommendations.csv", response_class=Response)
    def recommendations_csv(username: str, query: Annotated[RecommendationCsvQuery, Depends()]) -> Response:
        """The same list as CSV (rank, tmdb_id, title, year, genres, reason, letterboxd_url)."""
        data, (name, rows, _, _) = recommendations_frame(username, query)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["rank", "tmdb_id", "title", "year", "genres", "reason", "letterboxd_url"])
        for r in _rec_rows(data, rows):
            writer.writerow(
                [
                    r["rank"],
                    r["tmdb_id"],
                    r["title"],
                    r["year"],
                    "|".join(r["genres"]),
                    r["reason"],
                    r["letterboxd_url"],
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="lbx-{name}.csv"'},
        )

    @app.get("/api/users/{username}/new")
    def new_films(username: str) -> dict[str, Any]:
        """A member's new films: recent releases the content model ranks for them, with reasons."""
        data = state.data()
        name = _member_or_404(data, username)
        rows = data.new_films.get(name.lower(), [])
        return {"username": name, "count": len(rows), "films": rows}

    @app.get("/api/users/{username}/lists")
    def member_lists(username: str) -> dict[str, Any]:
        data = state.data()
        name = _member_or_404(data, username)
        lists = data.lists.get(name.lower())
        out = []
        if lists is not None:
            for (slug, title), frame in lists.group_by(["list_slug", "list_name"], maintain_order=True):
                out.append(
                    {
                        "slug": slug,
                        "name": title,
                        "films": frame.height,
                        "films_known": int(frame["tmdb_id"].is_not_null().sum()),
                    }
                )
        return {"username": name, "lists": out}

    @app.get("/api/films/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
        username: Annotated[str | None, Query(max_length=64, description="mark the films this member has seen")] = None,
    ) -> dict[str, Any]:
        """Search titles (any of a film's names, misspelt or not), director, cast, keywords and
        overview; ``limit`` is a maximum: hits under the relevance floor are left out. With
        ``username``, each hit says whether they have seen it."""
        data = state.data()
        seen = data.seen_by(username)
        hits = data.search_index.search(q, limit)
        rows = []
        for h in hits:
            film = data.films.row(h.index, named=True)
            rows.append(
                {
                    **_film_row(data, film),
                    "directors": film.get("directors") or [],
                    "overview": film.get("overview"),
                    "score": round(h.score, 5),
                    "lexical_rank": h.lexical_rank,
                    "dense_rank": h.dense_rank,
                    "title_rank": h.title_rank,
                    "match": h.match,
                    "original_language": film.get("original_language"),
                    **({"seen": int(film["tmdb_id"]) in seen} if username else {}),
                }
            )
        return {"query": q, "count": len(rows), "retrievers": RETRIEVERS, "results": rows}

    def _film_or_404(data: ServingData, tmdb_id: int) -> int:
        index = data.film_index.get(tmdb_id)
        if index is None:
            raise _error(404, f"no film with TMDb id {tmdb_id} in lbx's catalogue")
        return index

    @app.get("/api/films/{tmdb_id}")
    def film(tmdb_id: int) -> dict[str, Any]:
        data = state.data()
        row = data.films.row(_film_or_404(data, tmdb_id), named=True)
        return {
            **_film_row(data, row),
            "original_title": row.get("original_title"),
            "overview": row.get("overview"),
            "directors": row.get("directors") or [],
            "cast": row.get("cast_top") or [],
            "keywords": row.get("keywords") or [],
            "runtime": row.get("runtime") or None,
            "providers": (row.get("providers") or []) if data.providers_available else None,
            "provider_country": PROVIDER_COUNTRY,
            "tmdb_url": TMDB_FILM.format(tmdb_id),
        }

    @app.get("/api/films/{tmdb_id}/similar")
    def similar(
        tmdb_id: int,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
        username: Annotated[str | None, Query(max_length=64, description="leave out this member's films")] = None,
    ) -> dict[str, Any]:
        """Films nearest to this one: collaborative item vectors (truncated SVD of who saw what)
        beside content vectors (LSA of the film's text), cosine. With ``username``, the films that
        member has seen (under any title) are left out."""
        data = state.data()
        index = _film_or_404(data, tmdb_id)
        allowed = None
        if seen := data.seen_by(username):
            allowed = np.ones(data.films.height, dtype=bool)
            allowed[[data.film_index[i] for i in seen if i in data.film_index]] = False
        rows = []
        for j, score in most_similar(data.vectors, index, limit, allowed):
            rows.append({**_film_row(data, data.films.row(j, named=True)), "similarity": round(score, 4)})
        film = data.films.row(index, named=True)
        return {"film": _film_row(data, film), "count": len(rows), "results": rows}

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        """The served model, its card and every model's metrics over time."""
        data = state.data()
        metrics = data.model_metrics
        if metrics is None or metrics.height == 0:
            raise _error(404, "no model has been evaluated yet (serving.model_metrics is empty)")
        cols = [c for c in metrics.columns if c not in ("protocol", "params", "path", "run_id")]
        served = metrics.filter(pl.col("served") & pl.col("accepted")).sort("evaluated_at", descending=True)
        history = metrics.sort("evaluated_at", "model").select(cols)

        def plain(row: dict[str, Any]) -> dict[str, Any]:
            return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}

        return {
            "served": plain(served.select(cols).row(0, named=True)) if served.height else None,
            "card": data.models_card,
            "history": [plain(r) for r in history.iter_rows(named=True)],
        }

    @app.post("/api/imports")
    async def create_import(
        request: Request,
        file: Annotated[UploadFile, File(description="a Letterboxd export .zip")],
        username: Annotated[str | None, Form(max_length=64)] = None,
        member_key: Annotated[str | None, Form(max_length=200)] = None,
    ) -> JSONResponse:
        """Import a Letterboxd export (multipart, field ``file``), fold the member into the served model
        and return their recommendations. Same import and checks as `lbx import`.

        A name lbx does not know yet becomes a member, and the answer carries their member key once
        (also set as an HttpOnly cookie). Changing an existing member needs that key: the cookie, the
        form field ``member_key`` or the header ``X-Lbx-Member-Key``; without it, 403."""
        started = time.perf_counter()
        owner = WebOwner(explicit=member_key or request.headers.get(KEY_HEADER), cookies=_cookie_keys(request))
        settings.directory.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-", dir=settings.directory))
        try:
            target = folder / f"upload-{uuid.uuid4().hex[:12]}.zip"  # never the name of an export in LBX_EXPORT_DIRS
            size = 0
            with target.open("wb") as out:
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise _error(413, f"upload over the limit of {settings.max_upload_bytes:,} bytes")
                    out.write(chunk)
            if size == 0:
                raise _error(422, "the upload is empty: send a Letterboxd export .zip in the field 'file'")
            result = await run_in_threadpool(_import, state, target, username or None, owner)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        data = state.data()
        report, recs, note = result
        rows = data.rows.get(report.username.lower(), []) if recs.height else []
        body = {
            "username": report.username,
            "member_key": owner.issued,  # shown once: only its hash is stored
            "key_note": (
                f"You are the owner of {report.username} on this lbx. Keep this member key: this browser "
                "remembers it, and it is what lets you (and only you) upload a newer export from another one."
            )
            if owner.issued
            else None,
            "status": report.status,
            "note": note or None,
            "counts": report.counts,
            "films": report.films,
            "resolved": report.resolved,
            "resolved_share": round(report.resolved_share, 4),
            "tv_entries": report.tv,  # miniseries and episodes: counted apart, never matched to a film
            "distinct_films": report.distinct_films,  # a film in the diary and rated counts once
            "distinct_matched": report.distinct_matched,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            "recommendations": _rec_rows(data, rows[:MAX_LIMIT]),
            "new_films": data.new_films.get(report.username.lower(), []),
        }
        response = JSONResponse(body)
        key = owner.issued or owner.accepted
        if key:
            response.set_cookie(
                KEY_COOKIE + report.username,
                key,
                max_age=KEY_COOKIE_SECONDS,
                path="/api/imports",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    @app.post("/api/guest")
    async def guest(request: Request) -> dict[str, Any]:
        """A list for someone without an export: JSON ``{"films": ["Heat (1995) 5", "Collateral", ...],
        "ratings": {title: stars} (optional), "basis": "all" | "latest50" | "five" | "four_up" | "three_up",
        "limit": 1-50}``. Each title is matched to TMDb (the answer says what it became, or that it was
        not found); the guest is folded into the served model for this answer only, and none of the
        films given is proposed. Nothing about the guest is stored."""
        try:
            films, basis, limit = guest_route.read_request(await request.body())
            return await run_in_threadpool(guest_route.answer, state, films, basis, limit)
        except guest_route.GuestRefused as exc:
            raise _error(exc.status, exc.message, **exc.extra) from None
        except (WarehouseBusy, WarehouseError) as exc:
            log.warning("guest list refused: %s", type(exc).__name__)
            raise _error(503, "the served model cannot be read right now; try again in a minute") from None
        except TmdbRetryLater as exc:
            wait = _seconds_until(exc.retry_at)
            raise _error(503, f"TMDb is rate limiting this server: try again in {wait} s") from None
        except TmdbError:
            raise _error(502, "TMDb, which lbx asks to identify the films, did not answer usably") from None

    return app


def _warm_imports(state: WebState) -> None:
    """Prepare what every upload needs, so the first one does not pay for it: the TMDb source (the
    offline snapshot's title index takes seconds) and the accepted model with its serving inputs
    (the explanation embeddings take seconds), in the cache ``core.members.onboard`` reads; and
    the content model filtered lists read."""
    try:
        source = state.tmdb_source()
        if source.kind == "snapshot":
            source.search_movie("warm up", None)
        with state.manager.lock, connect(state.settings.db, read_only=True, wait_seconds=0) as con:
            served = accepted_model(con)
            if served is not None and served.path not in state.inputs_cache:
                trained = load_trained(served.path)
                state.inputs_cache[served.path] = (
                    trained,
                    load_serving_inputs(con, trained, ServingPolicy(), users=[]),
                )
        if served is not None:  # and the content model a filtered list blends new films from
            state.served.content(served.path.parents[1])
    except Exception as exc:  # an upload will simply be slower
        log.warning("could not prepare imports: %s", exc)
    finally:
        state.imports_ready = True


def _import(state: WebState, path: Path, username: str | None, owner: WebOwner) -> tuple[Any, pl.DataFrame, str]:
    try:
        lists = read_lists(path)  # refuses a hostile archive before anything is written
    except ExportError as exc:
        raise _error(422, f"export refused: {exc}") from None
    try:
        with state.manager.lock:
            done = onboard(
                path,
                inputs_cache=state.inputs_cache,
                username=username,
                db=state.settings.db,
                tmdb_source=state.tmdb_source(),
                wait_seconds=state.settings.write_wait_seconds,
                owner=owner,
            )
    except NotOwner as exc:
        raise _error(403, f"upload refused, nothing was read into lbx: {exc}") from None
    except (ExportError, FileNotFoundError) as exc:
        raise _error(422, f"export refused: {exc}") from None
    except WarehouseBusy as exc:
        log.warning("upload refused: %s", exc)
        raise _error(
            503,
            "the warehouse is being written by a refresh; nothing was imported, try again in a minute",
            headers={"Retry-After": "60"},
        ) from None
    except WarehouseError as exc:
        log.error("upload refused: %s", exc)
        raise _error(
            503, "the warehouse cannot be used right now (the operator has been told); nothing was imported"
        ) from None
    except TmdbRetryLater as exc:
        wait = _seconds_until(exc.retry_at)
        raise _error(
            503,
            f"TMDb, which lbx asks to identify your films, is rate limiting this server: nothing was imported, "
            f"try again in {wait} s",
            headers={"Retry-After": str(wait)},
        ) from None
    except TmdbError as exc:
        log.warning("upload failed on TMDb: %s", exc)
        raise _error(
            502,
            "TMDb, which lbx asks to identify your films, did not answer usably (the server log has the "
            "details); nothing was imported, try again later",
        ) from None
    report_upload(done)  # the same events in Dagster as `lbx import`
    user = done.report.username
    recs = done.recommendations
    if recs.height:
        data = state.data()
        member_lists = resolve_list_films(lists, data.resolution, data.films) if lists.height else None
        try:  # their seen films at once ("more like this", search); else from the next snapshot
            with state.manager.lock, connect(state.settings.db, read_only=True, wait_seconds=5) as con:
                seen = member_seen(read_member_seen(con, f"letterboxd:{user}"), data.films).get(user, set())
                observed = member_observations(con, member_key(user))  # filtered lists at once
        except (WarehouseError, duckdb.Error) as exc:
            log.warning("seen films of %s not read now: %s", user, exc)
            seen, observed = set(), None
        state.add_member(recs, member_lists, done.new_films, seen, observed)
    return done.report, recs, done.note
