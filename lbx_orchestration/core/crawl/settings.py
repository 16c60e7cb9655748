"""Scrapy settings for lbx's opt-in crawler: polite by default, and only loosened explicitly.

Overrides are lowercase keys from OVERRIDE_KEYS, never raw Scrapy settings, so nobody can
drop the delay, robots.txt or the honest user agent by passing `DOWNLOAD_DELAY=0` around.
`download_delay` below MIN_DOWNLOAD_DELAY is for tests against 127.0.0.1; the CLI must not
offer it (use `cli_download_delay` to validate a user's value).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lbx_orchestration.core.settings import CRAWL_SETTINGS_ENV as SETTINGS_ENV
from lbx_orchestration.core.settings import crawl_cache_dir, crawl_settings, crawl_user_agent

DEFAULT_USER_AGENT = "lbx/0.1 (+https://github.com/lbx-recs/lbx; personal recommendations from your own diary)"
MIN_DOWNLOAD_DELAY = 1.0
DEFAULT_RETRY_TIMES = 3
DEFAULT_RETRY_AFTER_MAX = 120.0
DEFAULT_CACHE_EXPIRATION_SECS = 6 * 3600
# A generous ceiling on responses per crawl (a 600-page profile with its diary is ~1,200);
# repeated pages are caught long before it (spiders.LbxSpider.repeats).
DEFAULT_PAGE_LIMIT = 10_000

OVERRIDE_KEYS = {
    "download_delay": "seconds between requests to Letterboxd (>= 1.0 outside tests)",
    "concurrent_requests_per_domain": "1 or 2",
    "retry_times": "retries for 429/5xx/network errors (0-10)",
    "retry_after_max": "longest Retry-After (s) lbx waits; a longer one stops the crawl",
    "httpcache_dir": "directory of the HTTP cache",
    "httpcache_enabled": "bool",
    "httpcache_expiration_secs": "cached pages older than this are fetched again (0 = never)",
    "autothrottle": "bool: AutoThrottle on/off",
    "user_agent": "User-Agent header (default: lbx's honest one, or $LBX_CRAWL_USER_AGENT)",
    "log_level": "Scrapy log level (default WARNING)",
    "page_limit": f"most responses one crawl receives before it stops with an error (default {DEFAULT_PAGE_LIMIT})",
}


def json_object(text: str, source: str) -> dict[str, Any]:
    """``text`` as a JSON object, or ValueError naming ``source`` (a flag or a variable)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source} must be a JSON object, got {text!r}")
    return value


def settings_from_env() -> dict[str, Any]:
    """Overrides from $LBX_CRAWL_SETTINGS (a JSON object of OVERRIDE_KEYS), checked here."""
    raw = crawl_settings()
    if not raw:
        return {}
    value = json_object(raw, SETTINGS_ENV)
    build_settings(value)  # names a bad key or value here, not in the child
    return value


def cli_download_delay(value: float) -> float:
    """The CLI's guard: users may slow the crawler down, never speed it up past 1 s."""
    if value < MIN_DOWNLOAD_DELAY:
        raise ValueError(f"--delay must be at least {MIN_DOWNLOAD_DELAY} s (Letterboxd is crawled politely)")
    return float(value)


def _number(key: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"crawl setting {key!r} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"crawl setting {key!r} must be {bound}, got {value!r}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"crawl setting {key!r} must be true or false, got {value!r}")
    return value


def build_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Scrapy settings dict for one crawl; raises ValueError naming a bad override."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ValueError(
            f"unknown crawl setting(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(OVERRIDE_KEYS))}"
        )
    delay = _number("download_delay", overrides.get("download_delay", MIN_DOWNLOAD_DELAY), 0.0)
    per_domain = int(
        _number("concurrent_requests_per_domain", overrides.get("concurrent_requests_per_domain", 1), 1, 2)
    )
    retry_times = int(_number("retry_times", overrides.get("retry_times", DEFAULT_RETRY_TIMES), 0, 10))
    retry_after_max = _number("retry_after_max", overrides.get("retry_after_max", DEFAULT_RETRY_AFTER_MAX), 0.0)
    expiration = int(
        _number(
            "httpcache_expiration_secs", overrides.get("httpcache_expiration_secs", DEFAULT_CACHE_EXPIRATION_SECS), 0
        )
    )
    page_limit = int(_number("page_limit", overrides.get("page_limit", DEFAULT_PAGE_LIMIT), 1))
    cache_dir = Path(overrides.get("httpcache_dir") or crawl_cache_dir()).expanduser().resolve()
    user_agent = overrides.get("user_agent") or crawl_user_agent() or DEFAULT_USER_AGENT
    autothrottle = _flag("autothrottle", overrides.get("autothrottle", True))
    cache_on = _flag("httpcache_enabled", overrides.get("httpcache_enabled", True))
    mw = "lbx_orchestration.core.crawl.middlewares"
    return {
        "BOT_NAME": "lbx",
        "USER_AGENT": user_agent,
        "ROBOTSTXT_OBEY": True,
        "ROBOTSTXT_USER_AGENT": user_agent,
        "DOWNLOAD_DELAY": float(delay),
        # No jitter: Scrapy's default ±50% would let the real gap drop below the 1 s floor.
        "DOWNLOAD_DELAY_JITTER": 0.0,
        "CONCURRENT_REQUESTS": per_domain,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_domain,
        "AUTOTHROTTLE_ENABLED": autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(float(delay), MIN_DOWNLOAD_DELAY),
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "COOKIES_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": retry_times,
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "LBX_RETRY_AFTER_MAX": float(retry_after_max),
        "HTTPCACHE_ENABLED": cache_on,
        "HTTPCACHE_DIR": str(cache_dir),
        "HTTPCACHE_EXPIRATION_SECS": expiration,
        "HTTPCACHE_IGNORE_HTTP_CODES": [403, 408, 429, 500, 502, 503, 504, 522, 524],
        "HTTPCACHE_POLICY": f"{mw}.NoBlockPagesCachePolicy",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{mw}.RetryAfterMiddleware": 550,
            # Nearer the downloader than retries: a block page stops the crawl, never retried.
            f"{mw}.BlockDetectionMiddleware": 580,
        },
        "CLOSESPIDER_PAGECOUNT": page_limit,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_INSTALL_ROOT_HANDLER": True,
        "LOG_LEVEL": str(overrides.get("log_level", "WARNING")),
    }
