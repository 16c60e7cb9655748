"""Downloader middlewares: stop at the first block, honour Retry-After, never cache block pages."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.httpcache import DummyPolicy
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet.task import deferLater

from lbx_orchestration.core.letterboxd.pages import detect_block

log = logging.getLogger(__name__)

STAT_CAUSE = "lbx/blocked_cause"
STAT_URL = "lbx/blocked_url"


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def block_crawl(crawler: Crawler, cause: str, url: str) -> None:
    """Record the first block in the stats and close the spider; later calls only count."""
    stats = crawler.stats
    assert stats is not None
    stats.inc_value("lbx/blocked_responses")
    if stats.get_value(STAT_CAUSE):
        return
    stats.set_value(STAT_CAUSE, cause)
    stats.set_value(STAT_URL, url)
    log.error("Letterboxd blocked the crawl (%s) at %s: stopping", cause, url)
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        deferred_from_coro(engine.close_spider_async(reason="blocked"))


def record_failure(crawler: Crawler, what: str) -> None:
    stats = crawler.stats
    assert stats is not None
    stats.set_value("lbx/failed_urls", [*(stats.get_value("lbx/failed_urls") or []), what])


class NoBlockPagesCachePolicy(DummyPolicy):
    """An outage page served with 200 must not be replayed from the cache as if it were data."""

    def should_cache_response(self, response: Response, request: Request) -> bool:
        if not super().should_cache_response(response, request):
            return False
        return detect_block(response.status, dict(response.headers), response.body) is None


class BlockDetectionMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BlockDetectionMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        # After a block nothing more goes out (e.g. requests that were waiting on robots.txt).
        stats = self.crawler.stats
        if stats is not None and stats.get_value(STAT_CAUSE):
            raise IgnoreRequest("the crawl was blocked")
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        cause = detect_block(response.status, dict(response.headers), response.body)
        if cause is None:
            return response
        block_crawl(self.crawler, cause, response.url)
        raise IgnoreRequest(f"Letterboxd blocked the crawl: {cause}")


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retries for 429/5xx, waiting as long as Retry-After says (capped).

    Without Retry-After the wait doubles from DOWNLOAD_DELAY on each attempt. A Retry-After
    longer than LBX_RETRY_AFTER_MAX, or a 429 that outlasts every retry, stops the crawl:
    pressing on would be impolite.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("LBX_RETRY_AFTER_MAX", 120.0)
        self.base_delay = settings.getfloat("DOWNLOAD_DELAY", 1.0)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        wait = parse_retry_after(response.headers.get(b"Retry-After"))
        if wait is not None and wait > self.retry_after_max:
            block_crawl(
                self.crawler,
                f"{response.status} with Retry-After {wait:.0f} s (longer than lbx waits)",
                response.url,
            )
            raise IgnoreRequest("Retry-After too long")
        attempt = request.meta.get("retry_times", 0)
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            record_failure(self.crawler, f"{response.url} ({response.status})")
            if response.status == 429:
                block_crawl(self.crawler, f"429 rate limited after {attempt} retries", response.url)
                raise IgnoreRequest("rate limited")
            return response
        if wait is None:
            wait = self.base_delay * (2**attempt)
        if wait > 0:
            from twisted.internet import reactor  # the one Scrapy installed, imported late

            await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
        return retry

    def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if result is None and isinstance(exception, self.exceptions_to_retry):
            record_failure(self.crawler, f"{request.url} ({type(exception).__name__})")
        return result
