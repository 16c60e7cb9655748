"""Live matching through TMDb's alternative titles, read through the DuckDB cache (127.0.0.1)."""

import json
from pathlib import Path

from lbx_orchestration.core.tmdb.cache import TmdbCache
from lbx_orchestration.core.tmdb.client import ALT_TITLES_ENDPOINT, TmdbClient
from lbx_orchestration.core.tmdb.resolve import resolve_by_search
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

RECORDED = (
    Path(__file__).parents[1]
    / "fixtures"
    / "tmdb"
    / "c-eg-themoviedbapi"
    / "movies__details_with_append_to_response.json"
)
JSON = "application/json;charset=utf-8"


def recorded_routes() -> dict[str, Response]:
    """The recorded details of "Rock Crystal" (2004): its alternative_titles part is what
    /movie/{id}/alternative_titles answers, and its summary fields are a search result."""
    details = json.loads(RECORDED.read_text(encoding="utf-8"))
    alternatives = {"id": details["id"], **details["alternative_titles"]}
    result = {k: details[k] for k in ("id", "title", "original_title", "release_date", "popularity")}
    return {
        f"/movie/{details['id']}/alternative_titles": Response(200, json.dumps(alternatives), content_type=JSON),
        "/search/movie": Response(
            200, json.dumps({"page": 1, "results": [result], "total_results": 1}), content_type=JSON
        ),
    }


def test_a_title_known_only_as_an_alternative_title_is_matched_and_cached(tmp_path: Path) -> None:
    details = json.loads(RECORDED.read_text(encoding="utf-8"))
    alternative = details["alternative_titles"]["titles"][0]["title"]
    year = int(details["release_date"][:4])
    cache = TmdbCache(tmp_path / "lbx.duckdb")
    with RecordedServer(recorded_routes()) as server:
        client = TmdbClient(api_key="k3y-5ecret", base_url=server.base_url, rate_limit=200.0, cache=cache)
        got = resolve_by_search(client, alternative, year)
        again = resolve_by_search(client, alternative, year)
        alt_path = f"/movie/{details['id']}/alternative_titles"
        calls = sum(1 for _, raw, _ in server.requests if raw.split("?")[0].endswith(alt_path))
        client.close()
    assert (got.tmdb_id, got.method, got.confidence) == (details["id"], "search_alternative_title", 1.0)
    assert again == got
    assert calls == 1  # the second resolution read the alternative titles from the cache
    assert cache.count(ALT_TITLES_ENDPOINT) == 1
    assert cache.load([details["id"]], ALT_TITLES_ENDPOINT)[details["id"]].body["titles"][0]["title"] == alternative


def test_a_title_matching_exactly_needs_no_alternative_titles(tmp_path: Path) -> None:
    details = json.loads(RECORDED.read_text(encoding="utf-8"))
    with RecordedServer(recorded_routes()) as server:
        client = TmdbClient(api_key="k3y-5ecret", base_url=server.base_url, rate_limit=200.0)
        got = resolve_by_search(client, details["title"], int(details["release_date"][:4]))
        paths = [raw for _, raw, _ in server.requests]
        client.close()
    assert (got.tmdb_id, got.method) == (details["id"], "search_exact_title")
    assert not any("alternative_titles" in p for p in paths)
