"""Crawler politeness settings and the runner's checks before any process or URL exists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lbx_orchestration.core.crawl.middlewares import parse_retry_after
from lbx_orchestration.core.crawl.runner import run_crawl
from lbx_orchestration.core.crawl.settings import (
    DEFAULT_USER_AGENT,
    build_settings,
    cli_download_delay,
)
from lbx_orchestration_tests.support.recorded_server import RecordedServer


def test_defaults_are_polite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LBX_CRAWL_USER_AGENT", raising=False)
    monkeypatch.setenv("LBX_CRAWL_CACHE_DIR", str(tmp_path / "cache"))
    s = build_settings()
    assert s["ROBOTSTXT_OBEY"] is True
    assert s["AUTOTHROTTLE_ENABLED"] is True
    assert s["DOWNLOAD_DELAY"] == 1.0
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1
    assert (
        s["USER_AGENT"]
        == DEFAULT_USER_AGENT
        == ("lbx/0.1 (+https://github.com/lbx-recs/lbx; personal recommendations from your own diary)")
    )
    assert s["HTTPCACHE_ENABLED"] is True
    assert s["HTTPCACHE_DIR"] == str((tmp_path / "cache").resolve())
    assert 429 in s["RETRY_HTTP_CODES"] and 503 in s["RETRY_HTTP_CODES"]
    assert 403 in s["HTTPCACHE_IGNORE_HTTP_CODES"]


def test_user_agent_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBX_CRAWL_USER_AGENT", "lbx-fork/2 (+mailto:me@example.org)")
    assert build_settings()["USER_AGENT"] == "lbx-fork/2 (+mailto:me@example.org)"


def test_overrides_are_explicit_and_bounded() -> None:
    s = build_settings(
        {"download_delay": 0, "concurrent_requests_per_domain": 2, "retry_times": 5, "autothrottle": False}
    )
    assert (s["DOWNLOAD_DELAY"], s["CONCURRENT_REQUESTS_PER_DOMAIN"], s["RETRY_TIMES"]) == (0.0, 2, 5)
    assert s["AUTOTHROTTLE_ENABLED"] is False
    with pytest.raises(ValueError, match="unknown crawl setting.*'DOWNLOAD_DELAY'"):
        build_settings({"DOWNLOAD_DELAY": 0})
    with pytest.raises(ValueError, match="'concurrent_requests_per_domain' must be between 1"):
        build_settings({"concurrent_requests_per_domain": 8})
    with pytest.raises(ValueError, match="'download_delay' must be >= 0.0"):
        build_settings({"download_delay": -1})


def test_cli_cannot_go_below_one_second() -> None:
    assert cli_download_delay(2.5) == 2.5
    with pytest.raises(ValueError, match="at least 1.0 s"):
        cli_download_delay(0.5)


def test_retry_after_values() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(b"0") == 0.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spider": "rss", "users": ["../admin"]}, "invalid Letterboxd username"),
        ({"spider": "rss", "users": []}, "no Letterboxd usernames"),
        ({"spider": "feeds", "users": ["a"]}, "unknown spider 'feeds'"),
        ({"spider": "rss", "users": ["a"], "settings_override": {"USER_AGENT": "x"}}, "unknown crawl setting"),
        (
            {"spider": "profile", "users": ["a"], "spider_args": {"max_pages": 0}},
            "max_pages must be a whole number >= 1",
        ),
        ({"spider": "rss", "users": ["a"], "spider_args": {"include_diary": True}}, "unknown argument"),
    ],
)
def test_runner_refuses_bad_input_before_crawling(kwargs: dict, message: str) -> None:
    with RecordedServer({}) as server:
        with pytest.raises(ValueError, match=message):
            run_crawl(base_url=server.base_url, **kwargs)
        assert server.requests == []


def test_runner_refuses_a_base_url_with_a_path() -> None:
    with pytest.raises(ValueError, match="base URL must have no path"):
        run_crawl("rss", ["a"], "http://127.0.0.1:9/some/path")
