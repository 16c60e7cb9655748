"""The RSS branch of `reviews`: a real crawl child through Dagster Pipes against 127.0.0.1."""

import datetime as dt
import gc
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.letterboxd.rss import parse_feed
from lbx_orchestration.core.observations import title_film_key
from lbx_orchestration.ingest.assets import reviews
from lbx_orchestration.ingest.checks import rss_pages_with_items, rss_resolved_share
from lbx_orchestration.metadata.assets import film_catalog
from lbx_orchestration.partitions import add_scrape_date
from lbx_orchestration.resources import LetterboxdResource, build_resources
from lbx_orchestration_tests.support.crawl import fast_crawl_settings
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

RSS = Path(__file__).resolve().parents[1] / "fixtures" / "letterboxd" / "rss"
FEEDS = {"sdiamond": RSS / "2026-08_sdiamond.rss.xml", "aron": RSS / "2022-10_aron.rss.xml"}
RSS_TYPE = "application/rss+xml; charset=utf-8"
ROBOTS = Response(200, "User-agent: *\nDisallow: /search/\n", content_type="text/plain")
DAY = "2026-11-20"


@pytest.fixture(autouse=True)
def fast_crawl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LBX_CRAWL_SETTINGS", json.dumps(fast_crawl_settings(tmp_path / "cache")))


def _materialize(db: Path, base_url: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    resources = build_resources(
        {
            "duckdb": DuckDBResource(database=str(db)),
            "letterboxd": LetterboxdResource(
                export_dirs=[],
                rss_users=list(FEEDS),
                crawl_enabled=True,
                base_url=base_url,
                inbox_dir=str(db.parent / "inbox"),
            ),
        }
    )
    add_scrape_date(instance, DAY)
    return dg.materialize(
        [reviews, rss_pages_with_items], resources=resources, partition_key=DAY, instance=instance, raise_on_error=False
    )


def _rows(db: Path) -> list[tuple]:
    # dagster-duckdb leaves a failed step's connection open until it is collected, and DuckDB
    # refuses a differently configured one beside it in the same process
    gc.collect()
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select username, observation_id, film_key, tmdb_id, rating, event_date "
            "from ingest.reviews where scrape_date = ? order by all",
            [dt.date.fromisoformat(DAY)],
        ).fetchall()
    finally:
        con.close()


def _feed_routes() -> dict[str, Response]:
    return {f"/{u}/rss/": Response(200, p, content_type=RSS_TYPE) for u, p in FEEDS.items()}


def _stored_once(db: Path, instance: dg.DagsterInstance) -> list[tuple]:
    """The feeds crawled once, successfully: the rows a failing run afterwards must leave alone."""
    with RecordedServer({"/robots.txt": ROBOTS, **_feed_routes()}) as server:
        assert _materialize(db, server.base_url, instance).success
    rows = _rows(db)
    assert rows
    return rows


def _step_failure(result: dg.ExecuteInProcessResult) -> tuple[str, dg.DagsterEvent]:
    """The message of the run's one step failure, and the event."""
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.error.message, failure


def _expected() -> list[tuple]:
    out = set()
    for user, path in FEEDS.items():
        for item in parse_feed(path.read_bytes(), user):
            key = (
                f"tmdb:{item['tmdb_id']}"
                if item["tmdb_id"] is not None
                else title_film_key(item["film_title"], item["film_year"])
            )
            out.add((user, f"rss:{user}:{item['guid']}", key, item["tmdb_id"], item["rating"], item["watched_date"]))
    return sorted(out)


def test_rss_rows_stats_and_idempotence(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    routes = {"/robots.txt": ROBOTS, **_feed_routes()}
    instance = dg.DagsterInstance.ephemeral()
    with RecordedServer(routes) as server:
        first = _materialize(db, server.base_url, instance)
        assert first.success
        rows = _rows(db)
        second = _materialize(db, server.base_url, instance)
        assert second.success
        assert server.hits("/aron/rss/") == 2

    expected = _expected()
    assert rows == expected
    assert _rows(db) == rows  # the same date again replaces its rows
    per_user = {u: sum(1 for r in rows if r[0] == u) for u in FEEDS}
    assert per_user == {u: len({i["guid"] for i in parse_feed(p.read_bytes(), u)}) for u, p in FEEDS.items()}
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert meta["rss_pages"].value == 2 and meta["rss_empty_pages"].value == 0
    assert meta["rss_requests"].value == 3  # robots.txt and two feeds
    assert meta["rss_items"].value == len(rows)
    assert meta["rss_users"].value == per_user
    assert meta["rss_films_with_tmdb_id"].value == len({r[2] for r in rows if r[3] is not None})
    assert meta["rows_by_source"].value == {"letterboxd_rss": len(rows)}
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert all(c.passed for c in checks.values())
    assert checks["rss_pages_with_items"].metadata["share_with_items"].value == 1.0
    assert checks["unique_observations"].metadata["duplicate_keys"].value == 0

    # films without a feed id (aron's 2022 feed) go through resolution in film_catalog
    catalog = dg.materialize(
        [film_catalog, rss_resolved_share],
        instance=instance,
        resources=build_resources({"duckdb": DuckDBResource(database=str(db))}),
    )
    assert catalog.success
    [check] = [c for c in catalog.get_asset_check_evaluations() if c.check_name == "rss_resolved_share"]
    con = duckdb.connect(str(db), read_only=True)
    unresolved = {
        r[0] for r in con.execute("select film_key from metadata.film_resolution where tmdb_id is null").fetchall()
    }
    con.close()
    film_keys = {r[2] for r in rows}
    assert check.metadata["rss_films"].value == len(film_keys)
    assert check.metadata["resolved"].value == len(film_keys - unresolved)
    assert all(k.startswith("title:") for k in unresolved & film_keys)
    assert check.passed == (len(film_keys - unresolved) / len(film_keys) >= 0.5)


def test_a_403_fails_the_run_and_keeps_the_dates_rows(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    feeds = _feed_routes()
    instance = dg.DagsterInstance.ephemeral()
    before = _stored_once(db, instance)
    blocked = {
        **feeds,
        "/aron/rss/": Response(
            403,
            "<html><body>Forbidden</body></html>",
            headers={"Server": "cloudflare", "cf-ray": "8f0c0ffee0000000-AMS"},
        ),
    }
    with RecordedServer({"/robots.txt": ROBOTS, **blocked}) as server:
        result = _materialize(db, server.base_url, instance)
        url = f"{server.base_url}/aron/rss/"

    assert not result.success
    message, failure = _step_failure(result)
    assert (
        f"RSS crawl blocked: Letterboxd answered 403 (blocked, or the profile is private) "
        f"at {url}: use your data export (Settings > Data > Export) and `lbx import`. "
        f"Nothing was written for {DAY}"
    ) in message
    assert failure.step_failure_data.user_failure_data.metadata["status_403"].value == 1
    assert _rows(db) == before


def test_robots_txt_refusing_the_feeds_fails_the_run_with_the_crawl_message(tmp_path: Path) -> None:
    # The asset runs the same child as `lbx crawl` (through Pipes) and shows the same message.
    db = tmp_path / "lbx.duckdb"
    feeds = _feed_routes()
    instance = dg.DagsterInstance.ephemeral()
    before = _stored_once(db, instance)
    robots = Response(200, "User-agent: *\nDisallow: /\n", content_type="text/plain")
    with RecordedServer({"/robots.txt": robots, **feeds}) as server:
        result = _materialize(db, server.base_url, instance)
        base = server.base_url
        assert server.hits("/aron/rss/") == 0

    assert not result.success
    message, _ = _step_failure(result)
    assert f"RSS crawl 'rss' failed (exit 1): robots.txt at {base}/robots.txt disallows " in message
    assert f"{base}/sdiamond/rss/" in message and f"{base}/aron/rss/" in message
    assert "for lbx's user agent, and lbx obeys it: use your data export" in message
    assert f"Nothing was written for {DAY}" in message
    assert _rows(db) == before
