"""Real Scrapy crawls in a child process against recorded Letterboxd pages on 127.0.0.1.

Each crawl spawns a Python process (about a second), so scenarios share crawls sparingly.
No 403 / challenge / 429 response was ever recorded: those are built here (a Cloudflare-style
403 with `Server: cloudflare` and `cf-ray`, the "Just a moment..." interstitial, a bare 429).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from lbx_orchestration.core.crawl.runner import CrawlBlocked, CrawlError, run_crawl
from lbx_orchestration.core.crawl.settings import DEFAULT_USER_AGENT
from lbx_orchestration.core.letterboxd.pages import parse_films_grid, parse_members
from lbx_orchestration.core.letterboxd.rss import parse_feed
from lbx_orchestration_tests.support.crawl import fast_crawl_settings
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

LB = Path(__file__).resolve().parents[1] / "fixtures" / "letterboxd"
GRID = LB / "html" / "user-films-grid"
THEBIGAL = GRID / "2025-12_thebigal_films_p1.raw.html"
SAMTEST = GRID / "2025-11_samtestacct_films_p1.rendered.html"
OLD_2023 = LB / "html" / "list" / "2023-06_dave_official-top-250_p1.reserialized.html"
DIARY = LB / "html" / "diary" / "2025-10_hyumiguel_diary_p1.rendered.htm"
MULHOLLAND = LB / "html" / "film" / "2026-01_mulholland-drive.raw.html"
TV_PAGE = LB / "html" / "film" / "2026-01_unbelievable-2019_tv-miniseries.raw.html"
MEMBERS = LB / "html" / "members" / "2025-11_members_popular_this_week_p1.rendered.html"
OUTAGE = LB / "html" / "error" / "2026-08_maintenance_outage_instead_of_rss.html"
SDIAMOND = LB / "rss" / "2026-08_sdiamond.rss.xml"
ARON = LB / "rss" / "2022-10_aron.rss.xml"

ROBOTS = Response(200, "User-agent: *\nDisallow: /search/\n", content_type="text/plain")
RSS_TYPE = "application/rss+xml; charset=utf-8"
CF_HEADERS = {"Server": "cloudflare", "cf-ray": "8f0c0ffee0000000-AMS"}
CHALLENGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    "<noscript>Enable JavaScript and cookies to continue</noscript>"
    "<script>(function(){window._cf_chl_opt={cType: 'managed'};var a=document.createElement("
    "'script');a.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f0c';"
    "document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>"
)


@pytest.fixture
def fast(tmp_path: Path) -> dict:
    return fast_crawl_settings(tmp_path / "httpcache", retry_times=2, httpcache=True)


def _empty_grid() -> str:
    """A real grid page with every poster and the pagination cut out (a member with no films)."""
    text = THEBIGAL.read_text(encoding="utf-8")
    text = re.sub(r'<li class="griditem">.*?</li>', "", text, flags=re.S)
    return re.sub(r'<div class="pagination">.*?</ul> </div> </div>', "", text, flags=re.S)


def test_rss_crawl_rows_and_stats(fast: dict, tmp_path: Path) -> None:
    routes = {
        "/robots.txt": ROBOTS,
        "/sdiamond/rss/": Response(200, SDIAMOND, content_type=RSS_TYPE),
        "/aron/rss/": Response(200, ARON, content_type=RSS_TYPE),
    }
    out = tmp_path / "out" / "items.jsonl"
    with RecordedServer(routes) as server:
        result = run_crawl("rss", ["sdiamond", "aron"], server.base_url, out=out, settings_override=fast)
        agents = {headers.get("User-Agent") for _, _, headers in server.requests}

    expected = parse_feed(SDIAMOND.read_bytes(), "sdiamond") + parse_feed(ARON.read_bytes(), "aron")
    key = lambda r: r["guid"]  # noqa: E731
    assert sorted(result.items, key=key) == sorted(expected, key=key)
    assert isinstance(result.items[0]["watched_date"], date)
    assert len(out.read_text().splitlines()) == 100
    assert agents == {DEFAULT_USER_AGENT}
    stats = result.stats
    assert (stats["requests"], stats["responses"], stats["items"], stats["pages"]) == (3, 3, 100, 2)
    assert (stats["status_403"], stats["status_429"], stats["retries"]) == (0, 0, 0)
    assert stats["empty_pages"] == 0 and stats["blocked_cause"] is None
    assert stats["finish_reason"] == "finished"


def test_profile_pagination_with_429_retry(fast: dict) -> None:
    # Page 2 is another real grid file served at /thebigal/films/page/2/; its own "next" link
    # (to /samtestacct/...) lies beyond max_pages and must not be fetched.
    routes = {
        "/robots.txt": ROBOTS,
        "/thebigal/films/": Response(200, THEBIGAL),
        "/thebigal/films/page/2/": [
            Response(429, b"Too Many Requests", headers={"Retry-After": "0"}),
            Response(200, SAMTEST),
        ],
    }
    with RecordedServer(routes) as server:
        result = run_crawl(
            "profile", ["thebigal"], server.base_url, settings_override=fast, spider_args={"max_pages": 2}
        )
        assert server.hits("/thebigal/films/page/2/") == 2
        assert server.hits("/samtestacct/films/page/2/") == 0

    expected = [i["slug"] for i in parse_films_grid(THEBIGAL.read_bytes(), "thebigal").items]
    expected += [i["slug"] for i in parse_films_grid(SAMTEST.read_bytes(), "thebigal").items]
    watched = [i for i in result.items if i["kind"] == "watched"]
    assert len(watched) == 144
    assert sorted(i["slug"] for i in watched) == sorted(expected)
    assert {i["page"] for i in watched} == {1, 2}
    assert all(i["username"] == "thebigal" for i in watched)
    by_slug = {i["slug"]: i for i in watched if i["page"] == 1}
    assert by_slug["one-battle-after-another"]["rating"] == 4.5
    stats = result.stats
    assert (stats["status_429"], stats["retries"], stats["pages"]) == (1, 1, 2)
    assert stats["finish_reason"] == "finished"


def test_profile_2023_markup_and_empty_grid(fast: dict) -> None:
    routes = {
        "/robots.txt": ROBOTS,
        "/dave/films/": Response(200, OLD_2023),
        "/nobody_yet/films/": Response(200, _empty_grid()),
    }
    with RecordedServer(routes) as server:
        result = run_crawl(
            "profile", ["dave", "nobody_yet"], server.base_url, settings_override=fast, spider_args={"max_pages": 1}
        )

    dave = [i for i in result.items if i["username"] == "dave"]
    expected = re.findall(r'data-film-slug="/film/([^/"]+)/"', OLD_2023.read_text("utf-8"))
    assert [i["slug"] for i in dave] == expected and len(dave) == 100
    assert not [i for i in result.items if i["username"] == "nobody_yet"]
    assert (result.stats["pages"], result.stats["empty_pages"]) == (2, 1)
    assert result.stats["finish_reason"] == "finished"


def test_profile_diary_film_pages_and_robots(fast: dict) -> None:
    grid = parse_films_grid(THEBIGAL.read_bytes(), "thebigal").items
    movie_slug, tv_slug = grid[0]["slug"], grid[1]["slug"]
    # robots.txt lets lbx fetch two film pages only; the pages served there are real film
    # pages (of other films: no recorded page matches these slugs).
    robots = f"User-agent: *\nAllow: /film/{movie_slug}/\nAllow: /film/{tv_slug}/\nDisallow: /film/\n"
    routes = {
        "/robots.txt": Response(200, robots, content_type="text/plain"),
        "/thebigal/films/": Response(200, THEBIGAL),
        # /thebigal/diary/ is not recorded (404): the spider falls back to the old diary URL.
        "/thebigal/films/diary/": Response(200, DIARY),
        f"/film/{movie_slug}/": Response(200, MULHOLLAND),
        f"/film/{tv_slug}/": Response(200, TV_PAGE),
    }
    with RecordedServer(routes) as server:
        result = run_crawl(
            "profile",
            ["thebigal"],
            server.base_url,
            settings_override=fast,
            spider_args={"max_pages": 1, "include_diary": True, "include_film_pages": True},
        )
        film_paths = [p for _, p, _ in server.requests if p.startswith("/film/")]
        diary_paths = [p for _, p, _ in server.requests if "diary" in p]

    diary = [i for i in result.items if i["kind"] == "diary"]
    films = [i for i in result.items if i["kind"] == "film_page"]
    assert len(diary) == 50 and diary[0]["watched_date"] == date(2025, 9, 19)
    assert sorted(film_paths) == sorted([f"/film/{movie_slug}/", f"/film/{tv_slug}/"])
    assert films == [
        {
            "kind": "film_page",
            "requested_slug": movie_slug,
            "slug": "mulholland-drive",
            "tmdb_id": 1018,
            "tmdb_type": "movie",
            "imdb_id": "tt0166924",
            "title": "Mulholland Drive",
            "year": 2001,
        }
    ]
    all_slugs = {i["slug"] for i in grid} | {d["film_slug"] for d in diary}
    stats = result.stats
    assert stats["tv_pages_skipped"] == 1
    assert stats["robots_forbidden"] == len(all_slugs) - 2
    assert stats["not_found"] == []
    assert diary_paths == ["/thebigal/diary/", "/thebigal/films/diary/"]


def test_members_seed_profiles(fast: dict) -> None:
    names, _ = parse_members(MEMBERS.read_bytes())
    routes = {"/robots.txt": ROBOTS, "/members/popular/this/week/": Response(200, MEMBERS)}
    routes.update({f"/{n}/films/": Response(200, _empty_grid()) for n in names})
    with RecordedServer(routes) as server:
        result = run_crawl("profile", [], server.base_url, settings_override=fast, spider_args={"members_pages": 1})
        grid_hits = {n: server.hits(f"/{n}/films/") for n in names}

    assert [i["username"] for i in result.items if i["kind"] == "member"] == names
    assert grid_hits == {n: 1 for n in names}
    assert result.stats["empty_pages"] == 30
    assert server.hits("/members/popular/this/week/page/2/") == 0


def test_403_blocks_and_records_nothing(fast: dict, tmp_path: Path) -> None:
    routes = {
        "/robots.txt": ROBOTS,
        "/private_one/rss/": Response(403, "<html><body>Forbidden</body></html>", headers=CF_HEADERS),
    }
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        with pytest.raises(CrawlBlocked) as info:
            run_crawl("rss", ["private_one"], server.base_url, out=out, settings_override=fast)
        url = f"{server.base_url}/private_one/rss/"

    exc = info.value
    assert exc.cause == "403 blocked or private profile" and exc.url == url
    assert str(exc) == (
        f"Letterboxd answered 403 (blocked, or the profile is private) at {url}: "
        "use your data export (Settings > Data > Export) and `lbx import`"
    )
    assert exc.items == [] and not out.exists()
    assert (exc.stats["status_403"], exc.stats["items"], exc.stats["pages"]) == (1, 0, 0)
    assert exc.stats["finish_reason"] == "blocked"


def test_challenge_page_stops_the_child_with_exit_3(fast: dict, tmp_path: Path) -> None:
    routes = {
        "/robots.txt": ROBOTS,
        "/someone/films/": Response(503, CHALLENGE, headers=CF_HEADERS),
    }
    out, report_path = tmp_path / "items.jsonl", tmp_path / "report.json"
    with RecordedServer(routes) as server:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lbx_orchestration.core.crawl.child",
                "--spider",
                "profile",
                "--users",
                "someone",
                "--base-url",
                server.base_url,
                "--out",
                str(out),
                "--report",
                str(report_path),
                "--settings",
                json.dumps(fast),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        hits = server.hits("/someone/films/")

    assert proc.returncode == 3, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "blocked" and report["items"] == 0
    assert report["message"].startswith("Letterboxd answered a Cloudflare challenge page")
    stats = report["stats"]
    assert stats["blocked_cause"] == "Cloudflare challenge page"
    assert stats["blocked_url"] == f"{server.base_url}/someone/films/"
    assert hits == 1 and stats["retries"] == 0  # a challenge is never retried
    assert out.read_text() == ""
    assert set(stats) >= {
        "requests",
        "responses",
        "items",
        "status_403",
        "status_429",
        "retries",
        "empty_pages",
        "pages",
        "blocked_cause",
        "blocked_url",
        "finish_reason",
    }


def test_outage_page_blocks_and_is_never_cached(fast: dict) -> None:
    # Letterboxd served its outage page with 200 in place of the feed (recorded 2026-08).
    routes = {
        "/robots.txt": ROBOTS,
        "/sdiamond/rss/": [Response(200, OUTAGE), Response(200, SDIAMOND, content_type=RSS_TYPE)],
    }
    with RecordedServer(routes) as server:
        with pytest.raises(CrawlBlocked, match="outage page") as info:
            run_crawl("rss", ["sdiamond"], server.base_url, settings_override=fast)
        assert info.value.cause == "Letterboxd outage page" and info.value.items == []
        # Next run: the outage page was not cached, so the feed is fetched and parsed ...
        again = run_crawl("rss", ["sdiamond"], server.base_url, settings_override=fast)
        # ... and the run after that is answered from the HTTP cache.
        cached = run_crawl("rss", ["sdiamond"], server.base_url, settings_override=fast)
        feed_hits = server.hits("/sdiamond/rss/")

    assert len(again.items) == 50
    assert cached.items == again.items
    assert feed_hits == 2  # the outage page, then the feed once
    assert cached.stats["cache_hits"] == again.stats["cache_hits"] + 1


def test_server_errors_outlasting_retries_fail_the_crawl(fast: dict, tmp_path: Path) -> None:
    routes = {
        "/robots.txt": ROBOTS,
        "/sdiamond/rss/": Response(502, "<html>Bad Gateway</html>"),
    }
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        with pytest.raises(CrawlError) as info:
            run_crawl("rss", ["sdiamond"], server.base_url, out=out, settings_override={**fast, "retry_times": 1})
        hits = server.hits("/sdiamond/rss/")

    assert hits == 2  # the request and one retry
    assert f"failed after retries: {server.base_url}/sdiamond/rss/ (502)" in str(info.value)
    assert not out.exists()
