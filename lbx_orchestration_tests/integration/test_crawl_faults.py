"""Crawls that must stop with a reason (issue 16, items 7, 9 and 10), for real on 127.0.0.1.

Each case is built from a recorded grid page (thebigal, December 2025): a page served again
under the next page's address (a "next" loop), posters whose markup was mangled, and a
robots.txt that disallows everything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lbx_orchestration.cli import main
from lbx_orchestration.core.crawl.runner import CrawlError, child_pythonpath, run_crawl
from lbx_orchestration.core.letterboxd.pages import EXPORT_HINT, parse_films_grid
from lbx_orchestration_tests.support.crawl import fast_crawl_settings
from lbx_orchestration_tests.support.processes import children_of, outlives
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

LB = Path(__file__).resolve().parents[1] / "fixtures" / "letterboxd"
THEBIGAL = LB / "html" / "user-films-grid" / "2025-12_thebigal_films_p1.raw.html"
SDIAMOND = LB / "rss" / "2026-08_sdiamond.rss.xml"
DIARY = LB / "html" / "diary" / "2025-10_hyumiguel_diary_p1.rendered.htm"
RSS_TYPE = "application/rss+xml; charset=utf-8"
ROBOTS = Response(200, "User-agent: *\nDisallow: /search/\n", content_type="text/plain")
ROBOTS_NO = Response(200, "User-agent: *\nDisallow: /\n", content_type="text/plain")
SLUG = re.compile(r'data-item-slug="([^"]+)"')


@pytest.fixture
def fast(tmp_path: Path) -> dict:
    return fast_crawl_settings(tmp_path / "httpcache")


@pytest.fixture
def cli_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LBX_CRAWL_CACHE_DIR", str(tmp_path / "cli-cache"))


def grid_page(page: int, *, next_page: int | None, distinct: bool = False) -> str:
    """thebigal's page 1, its next link pointing at ``next_page``; ``distinct`` renames its
    films per page (so a long profile is not taken for a loop)."""
    text = THEBIGAL.read_text(encoding="utf-8")
    target = f'href="/thebigal/films/page/{next_page}/"' if next_page else 'href="#"'
    text = text.replace('<a class="next" href="/thebigal/films/page/2/"', f'<a class="next" {target}')
    if next_page is None:
        text = text.replace('<a class="next" href="#">Older</a>', "")
    if distinct:
        text = SLUG.sub(lambda m: f'data-item-slug="{m.group(1)}-p{page}"', text)
    return text


def grid_route(page: int) -> str:
    return "/thebigal/films/" if page == 1 else f"/thebigal/films/page/{page}/"


def mangle(text: str, count: int) -> str:
    """The first ``count`` posters lose their slug (to "<<<") and their name."""
    chunks = text.split('<li class="griditem">')
    for i in range(1, count + 1):
        chunk = SLUG.sub('data-item-slug="&lt;&lt;&lt;"', chunks[i], count=1)
        chunks[i] = re.sub(r'data-item-(full-display-)?name="[^"]*"', "", chunk)
    return '<li class="griditem">'.join(chunks)


# --- item 7: robots.txt disallowing everything ---------------------------------------------


def test_robots_txt_disallowing_everything_is_an_error(fast: dict, tmp_path: Path) -> None:
    routes = {"/robots.txt": ROBOTS_NO, "/sdiamond/rss/": Response(200, SDIAMOND, content_type=RSS_TYPE)}
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        with pytest.raises(CrawlError) as caught:
            run_crawl("rss", ["sdiamond"], server.base_url, out=out, settings_override=fast)
        assert server.hits("/sdiamond/rss/") == 0
        base = server.base_url

    assert str(caught.value).startswith(
        f"crawl 'rss' failed (exit 1): robots.txt at {base}/robots.txt disallows {base}/sdiamond/rss/ "
        f"for lbx's user agent, and lbx obeys it: {EXPORT_HINT}"
    )
    assert caught.value.stats["robots_forbidden"] == 1 and caught.value.items == []
    assert not out.exists()  # no empty file that looks like a crawl of nobody's diary


def test_robots_refusal_through_the_cli_exits_1(cli_cache: None, tmp_path: Path, capsys) -> None:
    routes = {"/robots.txt": ROBOTS_NO, "/thebigal/films/": Response(200, THEBIGAL)}
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        code = main(["crawl", "profile", "thebigal", "--base-url", server.base_url, "--out", str(out)])
        base = server.base_url
    err = capsys.readouterr().err
    assert code == 1
    assert f"robots.txt at {base}/robots.txt disallows {base}/thebigal/films/ for lbx's user agent" in err
    assert not out.exists()


def test_robots_refusing_optional_film_pages_is_not_an_error(fast: dict) -> None:
    routes = {
        "/robots.txt": Response(200, "User-agent: *\nDisallow: /film/\n", content_type="text/plain"),
        "/thebigal/films/": Response(200, grid_page(1, next_page=None)),
    }
    with RecordedServer(routes) as server:
        result = run_crawl(
            "profile", ["thebigal"], server.base_url, settings_override=fast, spider_args={"include_film_pages": True}
        )
    assert len(result.items) == 72
    assert result.stats["robots_forbidden"] == 72 and result.stats["robots_refused_urls"] == []


# --- item 9: an endless "next page" loop, and long profiles --------------------------------


def test_a_next_page_loop_stops_at_the_first_repeated_page(fast: dict, tmp_path: Path) -> None:
    # Every page serves the same 72 films and links to a new page number, forever.
    routes = {"/robots.txt": ROBOTS}
    routes.update({grid_route(n): Response(200, grid_page(n, next_page=n + 1)) for n in range(1, 40)})
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        result = run_crawl("profile", ["thebigal"], server.base_url, out=out, settings_override=fast)
        hits = [server.hits(grid_route(n)) for n in (1, 2, 3)]
        url = f"{server.base_url}/thebigal/films/page/2/"

    assert hits == [1, 1, 0]
    expected = [i["slug"] for i in parse_films_grid(THEBIGAL.read_bytes(), "thebigal").items]
    assert [i["slug"] for i in result.items] == expected  # page 1 kept, nothing twice
    assert len(out.read_text(encoding="utf-8").splitlines()) == 72
    assert result.notes == [
        f"{url}: page 2 of thebigal's films repeats page 1 (the same 72 entries); stopped following its next link"
    ]


def test_a_diary_loop_stops_too(fast: dict) -> None:
    diary = DIARY.read_text(encoding="utf-8")
    old = 'class="next" href="https://letterboxd.com/hyumiguel/films/diary/page/2/"'
    assert old in diary

    def diary_page(next_page: int) -> str:
        return diary.replace(old, f'class="next" href="https://letterboxd.com/thebigal/diary/page/{next_page}/"')

    routes = {"/robots.txt": ROBOTS, "/thebigal/films/": Response(200, grid_page(1, next_page=None)),
              "/thebigal/diary/": Response(200, diary_page(2))}  # fmt: skip
    routes.update({f"/thebigal/diary/page/{n}/": Response(200, diary_page(n + 1)) for n in range(2, 10)})
    with RecordedServer(routes) as server:
        result = run_crawl("profile", ["thebigal"], server.base_url, settings_override=fast,
                           spider_args={"include_diary": True})  # fmt: skip
        assert server.hits("/thebigal/diary/page/2/") == 1
        assert server.hits("/thebigal/diary/page/3/") == 0
        url = f"{server.base_url}/thebigal/diary/page/2/"

    assert len([i for i in result.items if i["kind"] == "diary"]) == 50
    assert result.notes == [
        f"{url}: page 2 of thebigal's diary repeats page 1 (the same 50 entries); stopped following its next link"
    ]


def test_a_next_page_loop_through_the_cli_says_why(cli_cache: None, tmp_path: Path, capsys) -> None:
    routes = {"/robots.txt": ROBOTS}
    routes.update({grid_route(n): Response(200, grid_page(n, next_page=n + 1)) for n in range(1, 5)})
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        code = main(["crawl", "profile", "thebigal", "--base-url", server.base_url, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert "note: " in captured.err and "repeats page 1 (the same 72 entries)" in captured.err
    assert captured.out.startswith("72 items from 1 pages")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 72


def test_a_long_crawl_is_not_cut_off_while_pages_keep_coming(fast: dict) -> None:
    # Six distinct pages, 1.5 s each: 9 s in all, well past the 5 s idle limit, and finished,
    # because the limit is on silence, not on length (a 600-page profile takes its time).
    routes = {"/robots.txt": ROBOTS}
    for n in range(1, 7):
        routes[grid_route(n)] = Response(
            200, grid_page(n, next_page=n + 1 if n < 6 else None, distinct=True), delay=1.5
        )
    with RecordedServer(routes) as server:
        result = run_crawl("profile", ["thebigal"], server.base_url, settings_override=fast, idle_timeout=5)
    assert len(result.items) == 6 * 72 and result.notes == []
    assert result.stats["pages"] == 6


def test_a_hung_server_stops_the_crawl_after_the_idle_limit(fast: dict) -> None:
    routes = {"/robots.txt": ROBOTS, "/thebigal/films/": Response(200, THEBIGAL, delay=25)}
    with RecordedServer(routes) as server, pytest.raises(CrawlError) as caught:
        run_crawl("profile", ["thebigal"], server.base_url, settings_override=fast, idle_timeout=5)
    assert str(caught.value).startswith("crawl 'profile' stopped: it received nothing for ")
    assert "(idle limit 5 s)" in str(caught.value)


def test_the_page_limit_stops_with_an_error_that_names_the_setting(fast: dict) -> None:
    routes = {"/robots.txt": ROBOTS}
    routes.update({grid_route(n): Response(200, grid_page(n, next_page=n + 1, distinct=True)) for n in range(1, 9)})
    with RecordedServer(routes) as server, pytest.raises(CrawlError) as caught:
        run_crawl("profile", ["thebigal"], server.base_url, settings_override={**fast, "page_limit": 4})
    assert "the crawl's page limit (raise it with --page-limit or the crawl setting page_limit)" in str(caught.value)
    assert caught.value.stats["finish_reason"] == "closespider_pagecount"
    assert caught.value.items and len(caught.value.items) % 72 == 0  # what it read is handed back


# --- item 10: malformed grid HTML ----------------------------------------------------------


def test_mangled_posters_are_skipped_and_counted(fast: dict) -> None:
    routes = {"/robots.txt": ROBOTS, "/thebigal/films/": Response(200, mangle(grid_page(1, next_page=None), 2))}
    with RecordedServer(routes) as server:
        result = run_crawl("profile", ["thebigal"], server.base_url, settings_override=fast)
        url = f"{server.base_url}/thebigal/films/"

    assert len(result.items) == 70
    assert all(re.fullmatch(r"[a-z0-9-]+", i["slug"]) and i["name"] for i in result.items)
    assert result.stats["invalid_items"] == 2
    assert result.notes == [f"{url}: 2 skipped (slug '<<<' is not a Letterboxd film slug)"]


def test_a_page_of_only_junk_fails_clearly(cli_cache: None, tmp_path: Path, capsys) -> None:
    junk = '<html><body><ul><li class="griditem"><div class="react-component" data-item-slug="<<<"></div></li>'
    routes = {"/robots.txt": ROBOTS, "/thebigal/films/": Response(200, junk)}
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        code = main(["crawl", "profile", "thebigal", "--base-url", server.base_url, "--out", str(out)])
        url = f"{server.base_url}/thebigal/films/"
    err = capsys.readouterr().err
    assert code == 1
    assert (
        f"not a page lbx can read: {url} (none of the 1 posters on this page is a film lbx can read "
        "(slug '<<<' is not a Letterboxd film slug))"
    ) in err
    assert not out.exists()


def test_the_child_reports_robots_and_junk_in_its_json(fast: dict, tmp_path: Path) -> None:
    """The same child speaks plain JSON to the CLI; the RSS asset test covers its Pipes side."""
    report_path = tmp_path / "report.json"
    with RecordedServer({"/robots.txt": ROBOTS_NO}) as server:
        cmd = [
            sys.executable, "-m", "lbx_orchestration.core.crawl.child", "--spider", "rss", "--users", "aron",
            "--base-url", server.base_url, "--out", str(tmp_path / "items.jsonl"),
            "--report", str(report_path), "--settings", json.dumps(fast),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert proc.returncode == 1
    assert report["outcome"] == "error" and report["items"] == 0
    assert report["message"].startswith(f"robots.txt at {server.base_url}/robots.txt disallows")


def test_the_cli_page_limit(cli_cache: None, tmp_path: Path, capsys) -> None:
    routes = {"/robots.txt": ROBOTS}
    routes.update({grid_route(n): Response(200, grid_page(n, next_page=n + 1, distinct=True)) for n in range(1, 9)})
    out = tmp_path / "items.jsonl"
    with RecordedServer(routes) as server:
        code = main(["crawl", "profile", "thebigal", "--base-url", server.base_url, "--out", str(out),
                     "--page-limit", "3"])  # fmt: skip
        assert server.hits(grid_route(5)) == 0
    assert code == 1
    err = capsys.readouterr().err
    assert "the crawl's page limit (raise it with --page-limit or the crawl setting page_limit)" in err
    assert not out.exists()


# --- a crawl child never outlives the process that launched it ------------------------------


def test_the_child_dies_with_its_killed_parent(fast: dict) -> None:
    routes = {"/robots.txt": ROBOTS, "/thebigal/films/": Response(200, THEBIGAL, delay=30)}
    with RecordedServer(routes) as server:
        script = (
            "from lbx_orchestration.core.crawl.runner import run_crawl; "
            f"run_crawl('profile', ['thebigal'], {server.base_url!r}, settings_override={fast!r})"
        )
        parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": child_pythonpath()})
        try:
            deadline = time.monotonic() + 60
            while not server.hits("/thebigal/films/") and time.monotonic() < deadline:
                time.sleep(0.2)
            [child] = children_of(parent.pid)
            parent.kill()
            parent.wait()
            assert not outlives(child, 15, poll=0.2), "the crawl child outlived its killed parent"
        finally:
            parent.kill()
