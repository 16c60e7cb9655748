"""One crawl in its own process (Twisted's reactor cannot be restarted inside a long-lived one).

    python -m lbx_orchestration.core.crawl.child --spider rss --users a,b \\
        --base-url URL --out items.jsonl --stats stats.json [--settings JSON] [--args JSON]

Writes the items as JSON lines and a stats JSON; exit code 0 on success, 3 when Letterboxd
blocked the crawl (stats still written), 1 on any other error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BLOCKED = 3


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def summarize_stats(raw: dict[str, Any]) -> dict[str, Any]:
    """Scrapy's stats reduced to the numbers lbx reports."""

    def count(key: str) -> int:
        return int(raw.get(key) or 0)

    finish_reason = raw.get("finish_reason")
    return {
        "requests": count("downloader/request_count"),
        "responses": count("downloader/response_count"),
        "items": count("item_scraped_count"),
        "status_403": count("downloader/response_status_count/403"),
        "status_429": count("downloader/response_status_count/429"),
        "retries": count("retry/count"),
        "failed_requests": count("retry/max_reached"),
        "empty_pages": count("lbx/empty_pages"),
        "pages": count("lbx/pages"),
        "not_found": list(raw.get("lbx/not_found_urls") or []),
        "unparsable_pages": count("lbx/unparsable_pages"),
        "unparsable_urls": list(raw.get("lbx/unparsable_urls") or []),
        "failed_urls": list(raw.get("lbx/failed_urls") or []),
        "tv_pages_skipped": count("lbx/tv_pages_skipped"),
        "robots_forbidden": count("robotstxt/forbidden"),
        "cache_hits": count("httpcache/hit"),
        "spider_errors": sum(
            int(v) for k, v in raw.items() if k.startswith("spider_exceptions/")
        ),
        "log_errors": count("log_count/ERROR"),
        "blocked_cause": raw.get("lbx/blocked_cause"),
        "blocked_url": raw.get("lbx/blocked_url"),
        "finish_reason": str(finish_reason) if finish_reason is not None else None,
    }


def crawl(
    spider: str,
    users: list[str],
    base_url: str,
    out: Path,
    stats_path: Path,
    settings: dict[str, Any] | None = None,
    spider_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one crawl to completion; write items (JSON lines) and stats; return the stats."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from lbx_orchestration.core.crawl.settings import build_settings
    from lbx_orchestration.core.crawl.spiders import SPIDERS, normalize_base_url, parse_users

    if spider not in SPIDERS:
        raise ValueError(f"unknown spider {spider!r}; choose one of {', '.join(SPIDERS)}")
    users = parse_users(users)
    base_url = normalize_base_url(base_url)
    process = CrawlerProcess(build_settings(settings))
    crawler = process.create_crawler(SPIDERS[spider])
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as fh:

        def write_item(item: Any, **_: Any) -> None:
            fh.write(json.dumps(dict(item), default=_json_default, ensure_ascii=False) + "\n")

        crawler.signals.connect(write_item, signal=signals.item_scraped)
        process.crawl(crawler, users=users, base_url=base_url, **(spider_args or {}))
        process.start()
    os.replace(partial, out)
    stats = summarize_stats(crawler.stats.get_stats() if crawler.stats else {})
    stats_path.write_text(json.dumps(stats, indent=2, default=_json_default), encoding="utf-8")
    return stats


def exit_code(stats: dict[str, Any]) -> int:
    if stats.get("blocked_cause"):
        return EXIT_BLOCKED
    if stats.get("finish_reason") != "finished" or stats.get("spider_errors"):
        return EXIT_ERROR
    # Pages that still failed after every retry, or that parsed as nothing lbx knows:
    # the data would be silently incomplete.
    if stats.get("failed_requests") or stats.get("unparsable_pages"):
        return EXIT_ERROR
    return EXIT_OK


def _json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"{flag} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{flag} must be a JSON object")
    return value


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="lbx-crawl-child", description=summary)
    parser.add_argument("--spider", required=True)
    parser.add_argument("--users", default="")
    parser.add_argument("--base-url", default="https://letterboxd.com")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--settings", default="{}", help="JSON object of crawl overrides")
    parser.add_argument("--args", default="{}", help="JSON object of spider arguments")
    ns = parser.parse_args(argv)
    try:
        stats = crawl(
            ns.spider,
            [u for u in ns.users.split(",") if u.strip()],
            ns.base_url,
            ns.out,
            ns.stats,
            settings=_json_object(ns.settings, "--settings"),
            spider_args=_json_object(ns.args, "--args"),
        )
    except Exception as exc:  # the parent reads stderr: one clear line, then exit 1
        print(f"lbx crawl failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return exit_code(stats)


if __name__ == "__main__":
    sys.exit(main())
