"""The live TMDb API v3 client: rate-limited, concurrent, retrying, and careful with the key.

Secrets: a v3 key travels as the ``api_key`` query parameter, and httpx logs whole URLs at
INFO. The key is therefore added by a wrapping transport *below* httpx's client layer, so the
URL httpx logs (and attaches to its exceptions) never holds it; every message this module
builds also goes through ``_redact``. A v4 read token travels in the Authorization header,
which httpx does not log.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import duckdb
import httpx

from lbx_orchestration.core.settings import tmdb_api_key, tmdb_read_token
from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError, TmdbRetryLater
from lbx_orchestration.core.tmdb.cache import (
    DETAILS_ENDPOINT,
    CachedResponse,
    TmdbCache,
)
from lbx_orchestration.core.tmdb.ratelimit import RateLimiter

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"
ALT_TITLES_ENDPOINT = "alternative_titles"
APPEND = "credits,keywords,external_ids"
_AUTH_HINT = "set TMDB_API_KEY (a v3 API key) or TMDB_READ_TOKEN (a v4 read access token) to valid credentials"
_IMDB_ID = re.compile(r"^tt\d{5,10}$")
_MAX_BACKOFF = 30.0
# The longest lbx waits on Retry-After for one request, summed over its retries; TMDb asking
# for more (a daily quota: 86400 s) stops at once with the time to try again.
DEFAULT_MAX_RETRY_AFTER = 120.0
_LONGEST_RETRY_AFTER = 366 * 86400.0  # beyond a year is nonsense; also keeps timedelta finite
# Slack (seconds) between a rate-limiter release and the request actually leaving: thread
# wake-ups and GIL switches (5 ms each) must not let an observer count rate + 1 in a second.
SEND_HEADROOM = 0.03


@dataclass
class TmdbStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # HTTP 429
    server_errors: int = 0  # HTTP 5xx
    timeouts: int = 0
    connection_errors: int = 0
    not_found: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _ApiKeyTransport(httpx.BaseTransport):
    """Adds ``api_key`` to a copy of the request, after httpx has logged/kept the original."""

    def __init__(self, inner: httpx.BaseTransport, api_key: str | None) -> None:
        self._inner = inner
        self._api_key = api_key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._api_key:
            request = httpx.Request(
                request.method,
                request.url.copy_merge_params({"api_key": self._api_key}),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def poster_base_url(configuration: dict[str, Any], size: str = "w500") -> str | None:
    """``secure_base_url`` + a poster size TMDb offers (``size`` if offered, else the largest)."""
    images = configuration.get("images") or {}
    base = images.get("secure_base_url") or images.get("base_url")
    sizes = images.get("poster_sizes") or []
    if not base or not sizes:
        return None
    chosen = size if size in sizes else sizes[-1]
    return f"{base}{chosen}"


def compose_details(
    details: dict[str, Any],
    providers: dict[str, Any] | None,
    country: str,
    poster_base: str | None,
) -> dict[str, Any]:
    """Details (with credits/keywords/external_ids) + ``watch_providers`` + ``poster_url``."""
    out = dict(details)
    results = providers.get("results") if isinstance(providers, dict) else None
    out["watch_providers"] = results.get(country) if isinstance(results, dict) else None
    poster_path = out.get("poster_path")
    usable = poster_base and isinstance(poster_path, str) and poster_path
    out["poster_url"] = f"{poster_base}{poster_path}" if usable else None
    return out


class TmdbClient:
    kind = "live"

    def __init__(
        self,
        api_key: str | None = None,
        read_token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        rate_limit: float = 20.0,
        max_concurrency: int = 4,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        country: str = "US",
        transport: httpx.BaseTransport | None = None,
        poster_size: str = "w500",
        cache: TmdbCache | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        if not api_key and not read_token:
            raise TmdbAuthError(f"no TMDb credentials given: {_AUTH_HINT}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1: {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0: {max_retries}")
        if not max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be >= 0 seconds: {max_retry_after}")
        self._secrets = tuple(s for s in (api_key, read_token) if s)
        self._has_api_key = bool(api_key)
        self.base_url = base_url.rstrip("/")
        self.rate_limit = float(rate_limit)
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.country = country.upper()
        self.poster_size = poster_size
        self.cache = cache  # alternative titles are read through it when given
        self.max_retry_after = float(max_retry_after)
        self.limiter = RateLimiter(rate_limit, headroom=SEND_HEADROOM)
        self.stats = TmdbStats()
        self._stats_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._config: dict[str, Any] | None = None
        self._poster_base: str | None = None
        self._poster_base_known = False
        self._config_lock = threading.Lock()
        headers = {"Accept": "application/json"}
        if read_token:
            headers["Authorization"] = f"Bearer {read_token}"
        inner = transport or httpx.HTTPTransport(limits=httpx.Limits(max_connections=self.max_concurrency))
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=self.timeout,
            transport=_ApiKeyTransport(inner, api_key),
            follow_redirects=False,
        )

    @classmethod
    def from_env(cls, **kw: Any) -> TmdbClient:
        api_key = tmdb_api_key()
        read_token = tmdb_read_token()
        if not api_key and not read_token:
            raise TmdbAuthError(
                "no TMDb credentials: neither TMDB_API_KEY nor TMDB_READ_TOKEN is set "
                "(get a key at https://www.themoviedb.org/settings/api)"
            )
        return cls(api_key=api_key, read_token=read_token, **kw)

    def __repr__(self) -> str:
        auth = "api_key=***" if self._has_api_key else "read_token=***"
        return f"TmdbClient(base_url={self.base_url!r}, {auth}, rate_limit={self.rate_limit})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    def _backoff(self, attempt: int) -> float:
        return min(_MAX_BACKOFF, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)

    def _get(self, path: str, params: dict[str, Any] | None = None, *, allow_404: bool = False) -> tuple[int, Any]:
        """GET ``path`` -> (status, parsed JSON); retries 429, 5xx, timeouts, connection errors.

        Waits are bounded: Retry-After is honoured while this request's waits add up to at
        most ``max_retry_after``; a longer one raises TmdbRetryLater at once.
        """
        attempt = 0
        waited = 0.0
        while True:
            failure, retry_after = self._attempt(path, params, allow_404)
            if isinstance(failure, tuple):
                return failure
            if retry_after is not None and waited + retry_after > self.max_retry_after:
                raise self._retry_later(path, retry_after, waited)
            if attempt >= self.max_retries:
                raise TmdbError(self._redact(f"TMDb {path} failed after {attempt + 1} attempts: {failure}"))
            attempt += 1
            self._count("retries")
            if retry_after is not None:
                self.limiter.defer(retry_after)
                waited += retry_after
                delay = 0.0
            else:
                delay = self._backoff(attempt)
            log.warning("TMDb %s: %s; retry %d/%d", path, failure, attempt, self.max_retries)
            if delay > 0:
                time.sleep(delay)

    def _retry_later(self, path: str, retry_after: float, waited: float) -> TmdbRetryLater:
        retry_at = datetime.now(UTC) + timedelta(seconds=retry_after)
        already = f" after waiting {waited:g} s" if waited else ""
        return TmdbRetryLater(
            self._redact(
                f"TMDb rate-limited {path} (HTTP 429) and asked to wait {retry_after:g} s"
                f"{already}, longer than lbx waits ({self.max_retry_after:g} s): try again after "
                f"{retry_at:%Y-%m-%d %H:%M:%S} UTC"
            ),
            retry_at.replace(tzinfo=None),
        )

    def _attempt(
        self, path: str, params: dict[str, Any] | None, allow_404: bool
    ) -> tuple[tuple[int, Any] | str, float | None]:
        """One request. Returns ((status, body), None) on an answer, or (reason, retry_after)."""
        with self._slots:
            # Take the rate slot only once holding a connection slot, so sends stay spaced.
            self.limiter.acquire()
            self._count("requests")
            try:
                response = self._http.get(path, params=params)
                content = response.content
            except httpx.DecodingError as exc:
                # Raised while reading: e.g. "Content-Encoding: gzip" on a body that is not.
                raise TmdbError(
                    self._redact(
                        f"TMDb {path} answered a body that does not decode as its "
                        f"Content-Encoding header says ({exc}); a proxy in between may be "
                        "rewriting responses"
                    )
                ) from None
            except httpx.TimeoutException:
                self._count("timeouts")
                return f"timed out after {self.timeout:g}s", None
            except httpx.TransportError as exc:
                self._count("connection_errors")
                return f"connection failed ({type(exc).__name__})", None
        status = response.status_code
        if status == 401:
            raise TmdbAuthError(
                self._redact(
                    f"TMDb refused the credentials for {path} (HTTP 401{_status_suffix(content)}): {_AUTH_HINT}"
                )
            )
        if status == 429:
            self._count("rate_limited")
            return "HTTP 429 (rate limited)", _retry_after(response.headers.get("Retry-After"))
        if status >= 500:
            self._count("server_errors")
            return f"HTTP {status}", None
        if 300 <= status < 400:
            raise TmdbError(self._redact(self._redirect_message(path, response)))
        try:
            body = response.json()
        except ValueError:
            raise TmdbError(
                self._redact(
                    f"TMDb {path} answered HTTP {status} with a body that is not JSON "
                    f"({response.headers.get('Content-Type', 'no content type')}, "
                    f"{len(content)} bytes)"
                )
            ) from None
        if status < 300 and not isinstance(body, dict):
            raise TmdbError(
                self._redact(
                    f"TMDb {path} answered HTTP {status} with JSON of the wrong shape: "
                    f"{_json_kind(body)} where TMDb always sends an object"
                )
            )
        if status == 404 and allow_404:
            self._count("not_found")
            return (status, body if isinstance(body, dict) else {}), None
        if status >= 300:
            raise TmdbError(self._redact(f"TMDb {path} answered HTTP {status}{_status_suffix(content)}"))
        return (status, body), None

    def _redirect_message(self, path: str, response: httpx.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            return f"TMDb {path} answered HTTP {response.status_code}, a redirect without a Location"
        target = response.request.url.join(location)
        here = response.request.url
        where = "another host" if target.host != here.host else "another address"
        # Never followed: the request carries the credentials, and TMDb's API does not move.
        return (
            f"TMDb {path} answered HTTP {response.status_code}, a redirect to {where}: "
            f"{_without_query(target)}; lbx does not follow redirects (the request carries the "
            f"credentials): check the TMDb base URL ({self.base_url})"
        )

    # -- endpoints ------------------------------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        with self._config_lock:
            if self._config is None:
                _, self._config = self._get("/configuration")
            return self._config

    def poster_base(self) -> str | None:
        """The poster URL prefix from /configuration, fetched once; None if TMDb won't say."""
        if not self._poster_base_known:
            try:
                base = poster_base_url(self.configuration(), self.poster_size)
            except TmdbAuthError:
                raise
            except TmdbError as exc:
                log.warning("no poster URLs: %s", exc)
                base = None
            self._poster_base, self._poster_base_known = base, True
        return self._poster_base

    @property
    def endpoints(self) -> tuple[str, str]:
        """The cache endpoints one film's fetch writes (details first)."""
        return DETAILS_ENDPOINT, f"watch/providers:{self.country}"

    def fetch_raw(self, tmdb_id: int) -> list[CachedResponse]:
        """The raw responses for one film, as the cache stores them (providers cut to country)."""
        tmdb_id = _as_id(tmdb_id)
        status, details = self._get(f"/movie/{tmdb_id}", {"append_to_response": APPEND}, allow_404=True)
        now = _utc_now()
        rows = [CachedResponse(tmdb_id, DETAILS_ENDPOINT, status, details, now)]
        if status == 404:
            return rows
        path = f"/movie/{tmdb_id}/watch/providers"
        p_status, providers = self._get(path, allow_404=True)
        results = providers.get("results") if isinstance(providers, dict) else None
        if results is not None and not isinstance(results, dict):  # one odd field never loses the film
            log.warning("TMDb %s: 'results' is %s, not a JSON object; providers dropped", path, _json_kind(results))
            results = None
        trimmed = {"id": tmdb_id, "results": {self.country: (results or {}).get(self.country)}}
        rows.append(CachedResponse(tmdb_id, self.endpoints[1], p_status, trimmed, _utc_now()))
        return rows

    def compose(self, rows: list[CachedResponse]) -> dict[str, Any] | None:
        by_endpoint = {r.endpoint: r for r in rows}
        details = by_endpoint.get(DETAILS_ENDPOINT)
        if details is None or details.status == 404:
            return None
        providers = by_endpoint.get(self.endpoints[1])
        return compose_details(
            details.body,
            providers.body if providers and providers.status == 200 else None,
            self.country,
            self.poster_base(),
        )

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        return self.compose(self.fetch_raw(tmdb_id))

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        if not title or not title.strip():
            raise ValueError("search_movie needs a non-empty title")
        params: dict[str, Any] = {"query": title.strip(), "include_adult": "false"}
        if year is not None:
            params["year"] = int(year)
        _, body = self._get("/search/movie", params)
        return _objects("/search/movie", _field("/search/movie", body, "results", list) or [])

    def search_tv(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """TV shows by name (``/search/tv``): id, name, original_name, first_air_date, popularity ..."""
        if not title or not title.strip():
            raise ValueError("search_tv needs a non-empty title")
        params: dict[str, Any] = {"query": title.strip(), "include_adult": "false"}
        if year is not None:
            params["first_air_date_year"] = int(year)
        _, body = self._get("/search/tv", params)
        return _objects("/search/tv", _field("/search/tv", body, "results", list) or [])

    def alternative_titles(self, tmdb_id: int) -> list[str]:
        """A film's other titles (``/movie/{id}/alternative_titles``), read through the cache
        when the client has one; a 404 is an empty list (and is cached too)."""
        tmdb_id = _as_id(tmdb_id)
        hit = None
        if self.cache is not None:
            try:
                hit = self.cache.load([tmdb_id], ALT_TITLES_ENDPOINT).get(tmdb_id)
            except (duckdb.Error, TmdbError) as exc:  # a busy cache only costs a request
                log.warning("TMDb cache unreadable, asking TMDb: %s", exc)
        if hit is not None:
            status, body = hit.status, hit.body
        else:
            status, body = self._get(f"/movie/{tmdb_id}/alternative_titles", allow_404=True)
            if self.cache is not None:
                try:
                    self.cache.store(tmdb_id, ALT_TITLES_ENDPOINT, status, body)
                except (duckdb.Error, TmdbError) as exc:
                    log.warning("TMDb cache not written: %s", exc)
        if status != 200 or not isinstance(body, dict):
            return []
        return [t["title"] for t in body.get("titles") or [] if isinstance(t, dict) and t.get("title")]

    def find_by_imdb(self, imdb_id: str) -> int | None:
        imdb_id = (imdb_id or "").strip()
        if not _IMDB_ID.match(imdb_id):
            raise ValueError(f"not an IMDb title id (tt + digits): {imdb_id!r}")
        path = f"/find/{imdb_id}"
        _, body = self._get(path, {"external_source": "imdb_id"})
        movies = _objects(path, _field(path, body, "movie_results", list) or [])
        if not movies:
            return None
        try:
            return _as_id(movies[0].get("id"))
        except ValueError:
            raise TmdbError(
                f"TMDb {path} answered a first movie result without a TMDb id: {movies[0].get('id')!r}"
            ) from None

    def discover_movies(self, params: dict[str, Any]) -> dict[str, Any]:
        """One page of ``/discover/movie`` (through the rate limit and retries)."""
        _, body = self._get("/discover/movie", params)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise TmdbError(f"TMDb /discover/movie answered without a results list (page {params.get('page')})")
        return body

    def fetch_many(
        self,
        ids: Iterable[int],
        cache: TmdbCache | None = None,
        *,
        max_age: timedelta | None = None,
        include_cached: bool = False,
        on_error: Literal["raise", "skip"] = "raise",
        batch_size: int = 25,
        flush_seconds: float = 5.0,
    ) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """Fetch films concurrently, yielding (tmdb_id, details or None) as each completes.

        With a cache, ids it holds fresh are skipped (yielded from the cache only with
        ``include_cached``). Responses are written in small batches (``batch_size`` films or
        ``flush_seconds``, whichever comes first) and once more when the iteration ends for
        any reason (exhausted, stopped by the caller, an error), so an interrupted run keeps
        everything it fetched. ``on_error="skip"`` logs a film whose fetch failed (never a
        401) and carries on; that film is not cached, so the next run asks again.
        """
        wanted = list(dict.fromkeys(_as_id(i) for i in ids))
        todo = cache.missing(wanted, max_age, self.endpoints) if cache else wanted
        if cache is not None and include_cached:
            todo_set = set(todo)
            yield from self._from_cache(cache, [i for i in wanted if i not in todo_set])

        queue = iter(todo)
        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="tmdb")
        pending: dict[Future[list[CachedResponse]], int] = {}
        unsaved: list[CachedResponse] = []
        films_unsaved = 0
        last_flush = time.monotonic()

        def submit_next() -> None:
            for next_id in queue:
                pending[pool.submit(self.fetch_raw, next_id)] = next_id
                return

        def flush() -> None:
            nonlocal films_unsaved, last_flush
            if cache is not None and unsaved:
                cache.store_many(unsaved)
            unsaved.clear()
            films_unsaved, last_flush = 0, time.monotonic()

        try:
            # Keep a small window in flight rather than queueing every id at once.
            for _ in range(2 * self.max_concurrency):
                submit_next()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in [f for f in pending if f in done]:  # in submission order
                    tmdb_id = pending.pop(future)
                    try:
                        rows = future.result()
                    except (TmdbAuthError, TmdbRetryLater):
                        raise
                    except TmdbError as exc:
                        if on_error == "raise":
                            raise
                        log.warning("TMDb film %d skipped: %s", tmdb_id, exc)
                        submit_next()
                        continue
                    submit_next()
                    unsaved.extend(rows)
                    films_unsaved += 1
                    if films_unsaved >= batch_size or time.monotonic() - last_flush >= flush_seconds:
                        flush()
                    yield tmdb_id, self.compose(rows)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            # Films that were in flight when the iteration stopped are kept too.
            for future in pending:
                if future.done() and not future.cancelled() and future.exception() is None:
                    unsaved.extend(future.result())
            flush()

    def _from_cache(self, cache: TmdbCache, ids: list[int]) -> Iterator[tuple[int, dict[str, Any] | None]]:
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            details = cache.load(chunk, DETAILS_ENDPOINT)
            providers = cache.load(chunk, self.endpoints[1])
            for tmdb_id in chunk:
                rows = [r for r in (details.get(tmdb_id), providers.get(tmdb_id)) if r]
                yield tmdb_id, self.compose(rows)


def _as_id(value: Any) -> int:
    try:
        tmdb_id = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a TMDb id: {value!r}") from None
    if tmdb_id <= 0 or str(tmdb_id) != str(value).strip():
        raise ValueError(f"not a TMDb id: {value!r}")
    return tmdb_id


def _field(path: str, body: dict[str, Any], key: str, kind: type) -> Any:
    """``body[key]`` when absent, null or of type ``kind``; a TmdbError naming both otherwise."""
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise TmdbError(
            f"TMDb {path} answered JSON of the wrong shape: {key!r} is {_json_kind(value)}, "
            f"not a {'list' if kind is list else 'JSON object'}"
        )
    return value


def _objects(path: str, values: list[Any]) -> list[dict[str, Any]]:
    for value in values:
        if not isinstance(value, dict):
            raise TmdbError(
                f"TMDb {path} answered JSON of the wrong shape: a result is {_json_kind(value)}, not a JSON object"
            )
    return values


def _json_kind(body: Any) -> str:
    if body is None:
        return "null"
    if isinstance(body, list):
        return f"a list of {len(body)}"
    return f"a {type(body).__name__}"


def _without_query(url: httpx.URL) -> str:
    """A URL to show: the query (which may echo the key) is left out."""
    return str(url.copy_with(query=None, fragment=None))


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _status_suffix(content: bytes) -> str:
    """``, status_code 7: Invalid API key ...`` from a TMDb error body, if it is one."""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code, message = body.get("status_code"), body.get("status_message")
    if message is None and body.get("errors"):
        message = "; ".join(str(e) for e in body["errors"])
    parts = [f"status_code {code}" if code is not None else "", str(message or "")]
    text = ": ".join(p for p in parts if p)
    return f", {text}" if text else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(_LONGEST_RETRY_AFTER, max(0.0, seconds))
