"""The live TMDb client against a loopback server replaying recorded TMDb responses."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError, TmdbRetryLater
from lbx_orchestration.core.tmdb.cache import TmdbCache
from lbx_orchestration.core.tmdb.client import TmdbClient, _retry_after
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tmdb"
JD = FIXTURES / "jdrouet-tmdb-api"
KEY = "k3y-5ecret-0123456789abcdef"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.t0ken-5ecret"
JSON = "application/json;charset=utf-8"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def fight_club_appended() -> dict[str, Any]:
    """/movie/550?append_to_response=credits,keywords,external_ids, assembled from the
    recorded sub-responses the way TMDb nests them (sub-bodies lose their top-level id)."""
    body = load(JD / "movie-details.json")
    for key, name in (("credits", "movie-credits"), ("keywords", "movie-keywords")):
        part = load(JD / f"{name}.json")
        part.pop("id")
        body[key] = part
    external = load(JD / "movie-external-ids.json")
    external.pop("id")
    body["external_ids"] = external
    return body


def ok(body: Any) -> Response:
    text = body.read_text(encoding="utf-8") if isinstance(body, Path) else json.dumps(body)
    return Response(200, text, content_type=JSON)


def error(status: int, fixture: Path, headers: dict[str, str] | None = None) -> Response:
    return Response(status, fixture, headers=headers or {}, content_type=JSON)


UNAUTHORIZED = FIXTURES / "adamayoung-TMDb" / "error-status-401.json"
NOT_FOUND = JD / "resource-not-found.json"
RATE_LIMITED = FIXTURES / "issue-logs" / "radarr-2017-429-rate-limit.json"
CONFIG = FIXTURES / "c-eg-themoviedbapi" / "configuration__details.json"
PROVIDERS = JD / "movie-watch-providers.json"


def film_routes(tmdb_id: int, title: str) -> dict[str, Response]:
    body = {"id": tmdb_id, "title": title, "poster_path": f"/p{tmdb_id}.jpg", "genres": []}
    providers = {"id": tmdb_id, "results": {"US": {"link": "x", "flatrate": []}}}
    return {f"/movie/{tmdb_id}": ok(body), f"/movie/{tmdb_id}/watch/providers": ok(providers)}


def films_server_routes(ids: Iterable[int]) -> dict[str, Response]:
    """TMDb's configuration and, for each id, a film called "Film <id>" with its providers."""
    routes = {"/configuration": ok(CONFIG)}
    for tmdb_id in ids:
        routes.update(film_routes(tmdb_id, f"Film {tmdb_id}"))
    return routes


def client_for(server: RecordedServer, **kw: Any) -> TmdbClient:
    kw.setdefault("api_key", KEY)
    kw.setdefault("rate_limit", 200.0)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 2.0)
    return TmdbClient(base_url=server.base_url, **kw)


def query_of(server: RecordedServer, path: str) -> dict[str, list[str]]:
    for _, raw, _ in server.requests:
        parts = urlsplit(raw)
        if parts.path == path:
            return parse_qs(parts.query)
    raise AssertionError(f"{path} was never requested")


def test_movie_details_merges_credits_keywords_providers_and_poster_url() -> None:
    routes = {
        "/movie/550": ok(fight_club_appended()),
        "/movie/550/watch/providers": ok(PROVIDERS),
        "/configuration": ok(CONFIG),
    }
    with RecordedServer(routes) as server, client_for(server) as client:
        film = client.movie_details(550)
        again = client.movie_details(550)
        params = query_of(server, "/movie/550")

    assert film is not None and again == film
    assert film["title"] == "Fight Club"
    assert [g["name"] for g in film["genres"]] == ["Drama"]
    assert [c["name"] for c in film["credits"]["crew"] if c["job"] == "Director"] == ["David Fincher"]
    assert len(film["keywords"]["keywords"]) == 14
    assert "nihilism" in {k["name"] for k in film["keywords"]["keywords"]}
    assert film["external_ids"]["imdb_id"] == "tt0137523"
    assert film["poster_url"] == "https://image.tmdb.org/t/p/w500/pB8BM7pdSp6B6Ih7QZ4DrQ3PmJK.jpg"
    # Only the configured country's providers are kept.
    assert [p["provider_name"] for p in film["watch_providers"]["flatrate"]] == ["Peacock Premium"]
    assert params["append_to_response"] == ["credits,keywords,external_ids"]
    assert params["api_key"] == [KEY]
    assert server.hits("/configuration") == 1  # fetched once, then remembered


def test_real_appended_response_and_another_country() -> None:
    body = load(FIXTURES / "c-eg-themoviedbapi" / "movies__details_with_append_to_response.json")
    providers = {"id": 12313, "results": body.pop("watch/providers")["results"]}
    routes = {
        "/movie/12313": ok(body),
        "/movie/12313/watch/providers": ok(providers),
        "/configuration": ok(CONFIG),
    }
    with RecordedServer(routes) as server, client_for(server, country="de") as client:
        film = client.movie_details(12313)

    assert film is not None
    assert (film["title"], film["original_title"]) == ("Rock Crystal", "Bergkristall")
    assert [c["name"] for c in film["credits"]["crew"] if c["job"] == "Director"] == ["Joseph Vilsmaier"]
    assert film["watch_providers"]["link"].endswith("locale=DE")
    assert film["poster_url"] == "https://image.tmdb.org/t/p/w500/8GFxp1rAoJRRN5OGeHRClWGVief.jpg"


def test_read_token_goes_in_the_authorization_header_only() -> None:
    with RecordedServer({"/configuration": ok(CONFIG)}) as server:
        client = client_for(server, api_key=None, read_token=TOKEN)
        config = client.configuration()
        _, raw, headers = server.requests[0]

    assert config["images"]["secure_base_url"] == "https://image.tmdb.org/t/p/"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "api_key" not in raw
    assert TOKEN not in repr(client)


def test_search_sends_query_and_year() -> None:
    with RecordedServer({"/search/movie": ok(JD / "search-movie.json")}) as server:
        with client_for(server) as client:
            results = client.search_movie("RRRrrrr!!!", 2004)
        params = query_of(server, "/search/movie")

    assert [(r["id"], r["title"], r["release_date"]) for r in results] == [(21778, "RRRrrrr!!!", "2004-01-28")]
    assert params["query"] == ["RRRrrrr!!!"]
    assert params["year"] == ["2004"]


def test_find_by_imdb() -> None:
    empty = {"movie_results": [], "person_results": [], "tv_results": []}
    routes = {
        "/find/tt0137523": ok(FIXTURES / "adamayoung-TMDb" / "find-imdb-id-movie.json"),
        "/find/tt31193180": ok(JD / "find-by-id-movie.json"),
        "/find/tt0000001": ok(empty),
    }
    with RecordedServer(routes) as server, client_for(server) as client:
        assert client.find_by_imdb("tt0137523") == 550
        assert client.find_by_imdb("tt31193180") == 1233413
        assert client.find_by_imdb("tt0000001") is None
        assert query_of(server, "/find/tt0137523")["external_source"] == ["imdb_id"]
        with pytest.raises(ValueError, match="not an IMDb title id"):
            client.find_by_imdb("0137523")


def test_401_stops_at_once_and_names_the_variables() -> None:
    with RecordedServer({"/movie/550": error(401, UNAUTHORIZED)}) as server:
        client = client_for(server, max_retries=5)
        with pytest.raises(TmdbAuthError) as caught:
            client.movie_details(550)
        assert len(server.requests) == 1

    assert str(caught.value) == (
        "TMDb refused the credentials for /movie/550 (HTTP 401, status_code 7: Invalid API key: "
        "You must be granted a valid key.): set TMDB_API_KEY (a v3 API key) or TMDB_READ_TOKEN "
        "(a v4 read access token) to valid credentials"
    )
    assert client.stats.retries == 0


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("TMDB_READ_TOKEN", raising=False)
    with pytest.raises(TmdbAuthError, match="neither TMDB_API_KEY nor TMDB_READ_TOKEN is set"):
        TmdbClient.from_env()
    monkeypatch.setenv("TMDB_API_KEY", KEY)
    with RecordedServer({"/configuration": ok(CONFIG)}) as server:
        client = TmdbClient.from_env(base_url=server.base_url)
        client.configuration()
    assert client.kind == "live"
    assert query_of(server, "/configuration")["api_key"] == [KEY]


def test_404_is_none_cached_and_not_asked_again(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "tmdb.duckdb")
    with RecordedServer({"/movie/999999": error(404, NOT_FOUND)}) as server:
        client = client_for(server)
        assert client.movie_details(999999) is None
        assert list(client.fetch_many([999999], cache)) == [(999999, None)]
        assert list(client.fetch_many([999999], cache)) == []
        assert server.hits("/movie/999999") == 2  # movie_details + the first fetch_many
        # Once the 404 is older than max_age it is asked again.
        refreshed = list(client.fetch_many([999999], cache, max_age=timedelta(0)))
        assert refreshed == [(999999, None)]
        assert server.hits("/movie/999999") == 3
        assert server.hits("/movie/999999/watch/providers") == 0

    row = cache.load([999999], "movie")[999999]
    assert row.status == 404
    assert row.body["status_code"] == 34


def test_429_honours_retry_after_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = {
        "/configuration": [
            error(429, RATE_LIMITED, {"Retry-After": "1"}),
            ok(CONFIG),
        ]
    }
    with RecordedServer(routes) as server:
        client = client_for(server)
        deferred: list[float] = []
        real_defer = client.limiter.defer

        def spy(seconds: float) -> None:
            deferred.append(seconds)
            real_defer(seconds)

        monkeypatch.setattr(client.limiter, "defer", spy)
        config = client.configuration()
        assert server.hits("/configuration") == 2

    assert config["images"]["poster_sizes"][-1] == "original"
    assert deferred == [1.0]
    assert (client.stats.rate_limited, client.stats.retries, client.stats.requests) == (1, 1, 2)


def test_retry_after_header_forms() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after("0") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert _retry_after("soon") is None
    assert _retry_after(None) is None
    assert _retry_after("86400") == 86400.0  # the client decides, not the parser
    assert _retry_after("nan") is None
    assert _retry_after("1e300") == 366 * 86400.0  # nonsense is cut to a year


def test_500_then_success() -> None:
    routes = {
        "/search/movie": [
            Response(500, "Internal error", content_type="text/plain"),
            ok(JD / "search-movie.json"),
        ]
    }
    with RecordedServer(routes) as server, client_for(server) as client:
        assert [r["id"] for r in client.search_movie("RRRrrrr!!!")] == [21778]
        assert server.hits("/search/movie") == 2
    assert (client.stats.server_errors, client.stats.retries) == (1, 1)


def test_persistent_5xx_gives_up_with_a_clear_error() -> None:
    routes = {"/search/movie": Response(503, "busy", content_type="text/plain")}
    with RecordedServer(routes) as server, client_for(server, max_retries=2) as client:
        with pytest.raises(TmdbError) as caught:
            client.search_movie("Heat")
        assert server.hits("/search/movie") == 3
    assert str(caught.value) == "TMDb /search/movie failed after 3 attempts: HTTP 503"


def test_timeout_then_success() -> None:
    slow = Response(200, CONFIG, delay=0.6, content_type=JSON)
    with RecordedServer({"/configuration": [slow, ok(CONFIG)]}) as server:
        with client_for(server, timeout=0.2) as client:
            config = client.configuration()
        assert server.hits("/configuration") == 2
    assert config["images"]["secure_base_url"] == "https://image.tmdb.org/t/p/"
    assert (client.stats.timeouts, client.stats.retries) == (1, 1)


def test_body_that_is_not_json_is_a_clear_error() -> None:
    html = Response(200, "<html><body>Maintenance</body></html>", content_type="text/html")
    with (
        RecordedServer({"/movie/550": html}) as server,
        client_for(server) as client,
        pytest.raises(TmdbError) as caught,
    ):
        client.movie_details(550)
    assert str(caught.value) == ("TMDb /movie/550 answered HTTP 200 with a body that is not JSON (text/html, 37 bytes)")


def test_connection_refused_is_retried_then_reported() -> None:
    with RecordedServer() as server:
        base_url = server.base_url
    client = TmdbClient(api_key=KEY, base_url=base_url, max_retries=1, backoff_base=0.01)
    with pytest.raises(TmdbError, match=r"failed after 2 attempts: connection failed \(Connect"):
        client.configuration()
    assert client.stats.connection_errors == 2


def test_the_key_never_reaches_logs_errors_or_results(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    routes = {
        "/movie/1": [error(429, RATE_LIMITED, {"Retry-After": "0"}), ok({"id": 1, "title": "A"})],
        "/movie/1/watch/providers": [Response(502, "bad gateway"), ok(PROVIDERS)],
        "/movie/2": error(404, NOT_FOUND),
        "/movie/3": Response(200, "not json"),
        "/movie/4": error(401, UNAUTHORIZED),
        "/search/movie": Response(200, CONFIG, delay=0.5, content_type=JSON),
        "/configuration": ok(CONFIG),
    }
    texts: list[str] = []
    with RecordedServer(routes) as server:
        client = client_for(server, timeout=0.2, max_retries=1)
        film = client.movie_details(1)
        texts += [json.dumps(film), repr(client), repr(client.stats)]
        assert client.movie_details(2) is None
        for call in (
            lambda: client.movie_details(3),
            lambda: client.movie_details(4),
            lambda: client.search_movie("Heat"),
        ):
            with pytest.raises(TmdbError) as caught:
                call()
            texts.append("".join(traceback.format_exception(caught.value)))
        received = [raw for _, raw, _ in server.requests]

    assert all(f"api_key={KEY}" in raw for raw in received)  # the key was really in use
    assert "HTTP Request: GET" in caplog.text  # httpx's URL logging was captured ...
    assert "retry 1/1" in caplog.text
    assert KEY not in caplog.text  # ... and never shows the key
    for text in texts:
        assert KEY not in text
    assert film is not None and film["title"] == "A"


def test_fetch_many_stays_within_max_concurrency() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    class Counting(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                response = self.inner.handle_request(request)
                response.read()
                return response
            finally:
                with lock:
                    in_flight -= 1

    routes = films_server_routes(range(1, 13))
    for path, response in routes.items():
        if path.startswith("/movie/"):
            response.delay = 0.02
    with RecordedServer(routes) as server:
        client = client_for(server, max_concurrency=3, transport=Counting())
        got = dict(client.fetch_many(range(1, 13)))

    assert sorted(got) == list(range(1, 13))
    assert got[7]["title"] == "Film 7"
    assert got[7]["poster_url"] == "https://image.tmdb.org/t/p/w500/p7.jpg"
    assert 1 < peak <= 3
    assert client.stats.requests == 12 * 2 + 1


def test_fetch_many_skip_mode_carries_on_past_a_broken_film() -> None:
    routes = {**film_routes(1, "One"), **film_routes(3, "Three"), "/configuration": ok(CONFIG)}
    routes["/movie/2"] = Response(200, "garbage")
    with RecordedServer(routes) as server, client_for(server) as client:
        got = dict(client.fetch_many([1, 2, 3], on_error="skip"))
    assert sorted(got) == [1, 3]


def test_interrupted_by_401_resumes_with_only_the_rest(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "tmdb.duckdb")
    ids = list(range(1, 9))
    routes = films_server_routes(ids)
    routes["/movie/4"] = error(401, UNAUTHORIZED)
    with RecordedServer(routes) as first:
        client = client_for(first, max_concurrency=1)
        seen = []
        with pytest.raises(TmdbAuthError):
            for tmdb_id, _ in client.fetch_many(ids, cache):
                seen.append(tmdb_id)
        first_hits = {i: first.hits(f"/movie/{i}") for i in ids}

    left = cache.missing(ids, None, client.endpoints)
    assert seen == [1, 2, 3]
    assert 4 in left and 8 in left  # stopped at once: the tail was never fetched
    assert set(ids) - set(left) >= {1, 2, 3}  # everything fetched before the 401 was kept

    routes["/movie/4"] = film_routes(4, "Film 4")["/movie/4"]
    with RecordedServer(routes) as second:
        client = client_for(second, max_concurrency=2)
        resumed = dict(client.fetch_many(ids, cache))
        second_hits = {i: second.hits(f"/movie/{i}") for i in ids}

    assert sorted(resumed) == left
    assert {i for i, n in second_hits.items() if n} == set(left)
    successful_first = {i for i, n in first_hits.items() if n and i != 4}
    assert all(first_hits[i] + second_hits[i] == 1 for i in successful_first | set(left) - {4})
    assert cache.missing(ids, None, client.endpoints) == []


def test_stopping_the_iteration_loses_nothing(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "tmdb.duckdb")
    ids = list(range(1, 21))
    routes = films_server_routes(ids)
    with RecordedServer(routes) as first:
        client = client_for(first)
        for n, _ in enumerate(client.fetch_many(ids, cache), start=1):
            if n == 5:
                break
        first_hits = {i: first.hits(f"/movie/{i}") for i in ids}

    fetched_first = {i for i, n in first_hits.items() if n}
    left = cache.missing(ids, None, client.endpoints)
    assert len(fetched_first) >= 5 and left  # stopped early, kept what it had fetched
    assert set(left) == set(ids) - fetched_first

    with RecordedServer(routes) as second:
        client = client_for(second)
        got = dict(client.fetch_many(ids, cache, include_cached=True))
        second_hits = {i: second.hits(f"/movie/{i}") for i in ids}

    assert sorted(got) == ids  # cached films come back from the cache ...
    assert got[1]["title"] == "Film 1" and got[1]["poster_url"].endswith("/w500/p1.jpg")
    assert all(first_hits[i] + second_hits[i] == 1 for i in ids)  # ... each asked once only


# --- faults: bounded waits, wrong shapes, encodings, redirects (issue 16, items 6 and 8) -------


def test_429_with_a_day_long_retry_after_stops_at_once_and_says_when() -> None:
    routes = {"/movie/550": error(429, RATE_LIMITED, {"Retry-After": "86400"})}
    with RecordedServer(routes) as server, client_for(server, max_retries=5) as client:
        before = datetime.now(UTC).replace(tzinfo=None)
        with pytest.raises(TmdbRetryLater) as caught:
            client.movie_details(550)
        assert server.hits("/movie/550") == 1  # no retry loop at all

    message = str(caught.value)
    retry_at = caught.value.retry_at
    assert abs((retry_at - before).total_seconds() - 86400) < 60
    assert message == (
        "TMDb rate-limited /movie/550 (HTTP 429) and asked to wait 86400 s, longer than lbx "
        f"waits (120 s): try again after {retry_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert (client.stats.rate_limited, client.stats.retries) == (1, 0)
    assert isinstance(caught.value, TmdbError)


def test_retry_after_waits_add_up_to_the_configured_limit() -> None:
    limited = error(429, RATE_LIMITED, {"Retry-After": "1"})
    routes = {"/configuration": [limited, limited, ok(CONFIG)]}
    with RecordedServer(routes) as server:
        client = client_for(server, max_retry_after=1.5)
        with pytest.raises(TmdbRetryLater) as caught:
            client.configuration()
        assert "asked to wait 1 s after waiting 1 s, longer than lbx waits (1.5 s)" in str(caught.value)
        assert server.hits("/configuration") == 2  # waited once (1 s), refused the second wait


def test_retry_after_as_an_http_date_far_ahead() -> None:
    when = datetime.now(UTC) + timedelta(days=2)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    routes = {"/search/movie": error(429, RATE_LIMITED, {"Retry-After": header})}
    with RecordedServer(routes) as server, client_for(server) as client, pytest.raises(TmdbRetryLater) as caught:
        client.search_movie("Heat")
    assert abs((caught.value.retry_at - when.replace(tzinfo=None)).total_seconds()) < 5
    assert f"try again after {when:%Y-%m-%d %H:%M}" in str(caught.value)


def test_fetch_many_stops_the_whole_batch_on_a_long_retry_after(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "tmdb.duckdb")
    routes = films_server_routes(range(1, 7))
    routes["/movie/3"] = error(429, RATE_LIMITED, {"Retry-After": "86400"})
    with RecordedServer(routes) as server:
        client = client_for(server, max_concurrency=1)
        seen = []
        with pytest.raises(TmdbRetryLater, match="try again after"):
            for tmdb_id, _ in client.fetch_many(range(1, 7), cache, on_error="skip"):
                seen.append(tmdb_id)
        never_asked = [server.hits(f"/movie/{i}") for i in (5, 6)]

    assert seen == [1, 2]
    assert never_asked == [0, 0]  # stopped, not skipped film after film (4 was in flight)
    missing = set(cache.missing(range(1, 7), None, client.endpoints))
    assert {3, 5, 6} <= missing and not {1, 2} & missing  # what was fetched is kept


@pytest.mark.parametrize(("body", "kind"), [("null", "null"), ("[1, 2]", "a list of 2"), ('"x"', "a str")])
def test_details_of_the_wrong_shape_name_the_endpoint(body: str, kind: str) -> None:
    routes = {"/movie/550": Response(200, body, content_type=JSON)}
    with RecordedServer(routes) as server, client_for(server) as client, pytest.raises(TmdbError) as caught:
        client.movie_details(550)
    assert type(caught.value) is TmdbError
    assert str(caught.value) == (
        f"TMDb /movie/550 answered HTTP 200 with JSON of the wrong shape: {kind} where TMDb always sends an object"
    )


def test_nested_fields_of_the_wrong_shape_name_the_endpoint() -> None:
    routes = {
        "/search/movie": ok({"page": 1, "results": {"id": 1}}),
        "/find/tt0137523": ok({"movie_results": [None]}),
        "/movie/550": ok({"id": 550, "title": "Fight Club"}),
        "/movie/550/watch/providers": ok({"id": 550, "results": []}),
    }
    calls = (
        lambda client: client.search_movie("Heat"),
        lambda client: client.find_by_imdb("tt0137523"),
    )
    messages = []
    with RecordedServer(routes) as server, client_for(server) as client:
        for call in calls:
            with pytest.raises(TmdbError) as caught:
                call(client)
            messages.append(str(caught.value))
        film = client.movie_details(550)  # odd providers lose the providers, never the film
    assert messages == [
        "TMDb /search/movie answered JSON of the wrong shape: 'results' is a dict, not a list",
        "TMDb /find/tt0137523 answered JSON of the wrong shape: a result is null, not a JSON object",
    ]
    assert film["title"] == "Fight Club" and film["watch_providers"] is None


def test_gzip_header_on_a_plain_body_is_a_clear_error() -> None:
    plain = Response(200, CONFIG, headers={"Content-Encoding": "gzip"}, content_type=JSON)
    with RecordedServer({"/configuration": plain}) as server, client_for(server) as client:
        with pytest.raises(TmdbError) as caught:
            client.configuration()
        assert server.hits("/configuration") == 1
    message = str(caught.value)
    assert message.startswith(
        "TMDb /configuration answered a body that does not decode as its Content-Encoding header says ("
    )
    assert "proxy" in message and KEY not in message


def test_a_real_gzip_body_is_decoded() -> None:
    packed = gzip.compress(CONFIG.read_bytes())
    routes = {"/configuration": Response(200, packed, headers={"Content-Encoding": "gzip"}, content_type=JSON)}
    with RecordedServer(routes) as server, client_for(server) as client:
        assert client.configuration()["images"]["secure_base_url"] == "https://image.tmdb.org/t/p/"


def test_a_redirect_to_another_host_is_never_followed_and_names_the_target() -> None:
    with RecordedServer({"/movie/550": ok({"id": 550})}) as elsewhere:
        target = f"{elsewhere.base_url}/3/movie/550?api_key={KEY}"
        routes = {
            "/movie/550": Response(301, "", headers={"Location": target}, content_type=JSON),
            "/movie/551": Response(302, "", headers={"Location": "https://evil.example/3/movie/551"}),
        }
        with RecordedServer(routes) as server, client_for(server) as client:
            with pytest.raises(TmdbError) as moved:
                client.movie_details(550)
            with pytest.raises(TmdbError) as found:
                client.movie_details(551)
        assert elsewhere.requests == []  # the key never went there

    assert str(moved.value) == (
        f"TMDb /movie/550 answered HTTP 301, a redirect to another address: {elsewhere.base_url}"
        "/3/movie/550; lbx does not follow redirects (the request carries the credentials): "
        f"check the TMDb base URL ({server.base_url})"
    )
    assert KEY not in str(moved.value)
    assert str(found.value).startswith(
        "TMDb /movie/551 answered HTTP 302, a redirect to another host: https://evil.example/3/movie/551;"
    )
