"""The one crawl child process, for the CLI and for Dagster assets alike.

    python -m lbx_orchestration.core.crawl.child --spider rss --users a,b --base-url URL \\
        --out items.jsonl [--report report.json] [--heartbeat FILE] [--settings JSON] [--args JSON]

Twisted's reactor cannot restart inside a long-lived process, so every crawl runs here. The
items go to --out as JSON lines (also those of a crawl that stopped early), and one report
``{"outcome": "ok" | "blocked" | "error", "message", "notes", "items", "stats"}`` goes back:

- launched by Dagster's PipesSubprocessClient (``DAGSTER_PIPES_CONTEXT`` is set), as a Pipes
  custom message, exit 0, so the asset names the cause itself;
- launched by the CLI (``runner.run_crawl``), as JSON in --report, exit 0 when ok, 3 when
  Letterboxd blocked the crawl, 1 on any other failure.

--heartbeat is touched on every response, so a parent can tell a slow crawl from a hung one;
the child ends itself when its parent dies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lbx_orchestration.core.crawl.settings import json_object
from lbx_orchestration.core.letterboxd.pages import EXPORT_HINT, blocked_message
from lbx_orchestration.core.settings import under_dagster_pipes

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BLOCKED = 3
EXIT_CODES = {"ok": EXIT_OK, "blocked": EXIT_BLOCKED, "error": EXIT_ERROR}
_SHOWN = 5


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
        "invalid_items": count("lbx/invalid_items"),
        "invalid_item_notes": list(raw.get("lbx/invalid_item_notes") or []),
        "repeated_pages": list(raw.get("lbx/repeated_pages") or []),
        "tv_pages_skipped": count("lbx/tv_pages_skipped"),
        "robots_forbidden": count("robotstxt/forbidden"),
        "robots_refused_urls": list(raw.get("lbx/robots_refused_urls") or []),
        "cache_hits": count("httpcache/hit"),
        "spider_errors": sum(int(v) for k, v in raw.items() if k.startswith("spider_exceptions/")),
        "log_errors": count("log_count/ERROR"),
        "blocked_cause": raw.get("lbx/blocked_cause"),
        "blocked_url": raw.get("lbx/blocked_url"),
        "finish_reason": str(finish_reason) if finish_reason is not None else None,
    }


def _listed(urls: list[str]) -> str:
    more = f" and {len(urls) - _SHOWN} more" if len(urls) > _SHOWN else ""
    return ", ".join(urls[:_SHOWN]) + more


def _robots_message(urls: list[str]) -> str:
    parts = urlsplit(urls[0])
    robots = f"{parts.scheme}://{parts.netloc}/robots.txt"
    return f"robots.txt at {robots} disallows {_listed(urls)} for lbx's user agent, and lbx obeys it: {EXPORT_HINT}"


def crawl_report(stats: dict[str, Any], items: int) -> dict[str, Any]:
    """The outcome of a finished crawl, with the one message every launcher shows."""
    notes = list(stats.get("repeated_pages") or []) + list(stats.get("invalid_item_notes") or [])
    report: dict[str, Any] = {"outcome": "ok", "message": None, "notes": notes, "items": items, "stats": stats}
    if stats.get("blocked_cause"):
        report.update(outcome="blocked", message=blocked_message(stats["blocked_cause"], stats.get("blocked_url")))
        return report
    reasons = []
    if stats.get("robots_refused_urls"):
        reasons.append(_robots_message(stats["robots_refused_urls"]))
    if stats.get("finish_reason") == "closespider_pagecount":
        reasons.append(
            f"stopped after {stats.get('responses', 0)} pages, the crawl's page limit "
            "(raise it with --page-limit or the crawl setting page_limit)"
        )
    elif stats.get("finish_reason") != "finished":
        reasons.append(f"finish reason {stats.get('finish_reason')!r}")
    # Pages that still failed after every retry, or that parsed as nothing lbx knows:
    # the data would be silently incomplete.
    if stats.get("failed_urls") or stats.get("failed_requests"):
        reasons.append("failed after retries: " + (_listed(stats.get("failed_urls") or []) or "some pages"))
    if stats.get("unparsable_urls") or stats.get("unparsable_pages"):
        reasons.append("not a page lbx can read: " + (_listed(stats.get("unparsable_urls") or []) or "some pages"))
    if stats.get("spider_errors"):
        reasons.append(f"{stats['spider_errors']} parser errors")
    if reasons:
        report.update(outcome="error", message="; ".join(reasons))
    return report


def crawl(
    spider: str,
    users: list[str],
    base_url: str,
    out: Path,
    settings: dict[str, Any] | None = None,
    spider_args: dict[str, Any] | None = None,
    heartbeat: Path | None = None,
) -> dict[str, Any]:
    """Run one crawl to completion, write its items (JSON lines) to ``out``; return the stats."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from lbx_orchestration.core.crawl.settings import build_settings
    from lbx_orchestration.core.crawl.spiders import SPIDERS, check_spider_args, normalize_base_url, parse_users

    args = check_spider_args(spider, dict(spider_args or {}))
    users = parse_users(users)
    base_url = normalize_base_url(base_url)
    process = CrawlerProcess(build_settings(settings))
    crawler = process.create_crawler(SPIDERS[spider])
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as fh:

        def write_item(item: Any, **_: Any) -> None:
            fh.write(json.dumps(dict(item), default=_json_default, ensure_ascii=False) + "\n")

        def beat(**_: Any) -> None:
            if heartbeat is not None:
                heartbeat.touch()

        crawler.signals.connect(write_item, signal=signals.item_scraped)
        crawler.signals.connect(beat, signal=signals.response_received)
        process.crawl(crawler, users=users, base_url=base_url, **args)
        process.start()
    os.replace(partial, out)
    return summarize_stats(crawler.stats.get_stats() if crawler.stats else {})


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lbx-crawl-child", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--spider", required=True)
    parser.add_argument("--users", default="")
    parser.add_argument("--base-url", default="https://letterboxd.com")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", type=Path, help="where the JSON report goes (outside Dagster Pipes)")
    parser.add_argument("--heartbeat", type=Path, help="a file touched on every response")
    parser.add_argument("--settings", default="{}", help="JSON object of crawl overrides")
    parser.add_argument("--args", default="{}", help="JSON object of spider arguments")
    return parser.parse_args(argv)


def run(ns: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """The crawl the flags describe, as a report; an exception becomes an error report."""
    try:
        stats = crawl(
            ns.spider,
            [u for u in ns.users.split(",") if u.strip()],
            ns.base_url,
            ns.out,
            settings=json_object(ns.settings, "--settings"),
            spider_args=json_object(ns.args, "--args"),
            heartbeat=ns.heartbeat,
        )
    except Exception as exc:  # one clear line for the launcher, not a traceback
        message = f"{type(exc).__name__}: {exc}"
        log(f"lbx crawl failed: {message}")
        return {"outcome": "error", "message": message, "notes": [], "items": 0, "stats": {}}
    report = crawl_report(stats, _count_lines(ns.out))
    log(
        f"crawl {ns.spider!r}: {report['outcome']}, {report['items']} items from {stats.get('pages', 0)} "
        f"pages ({stats.get('requests', 0)} requests)"
    )
    return report


def _main_pipes(ns: argparse.Namespace) -> int:
    # dagster_pipes is Dagster's dependency-free protocol library for external processes,
    # imported only when Dagster launched this process.
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        report = run(ns, pipes.log.info)
        pipes.report_custom_message(report)
    return EXIT_OK


def exit_with_parent(poll: float = 1.0) -> None:
    """End this process when the one that launched it dies (kill -9 leaves no one to stop us):
    a crawl nobody will read must not go on sending requests."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(EXIT_ERROR)

    threading.Thread(target=watch, name="lbx-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    exit_with_parent()
    if under_dagster_pipes():
        return _main_pipes(ns)
    if ns.report is None:
        print("lbx crawl failed: --report is required outside Dagster Pipes", file=sys.stderr)
        return EXIT_ERROR
    report = run(ns, lambda line: print(line, file=sys.stderr))
    ns.report.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
    return EXIT_CODES[report["outcome"]]


if __name__ == "__main__":
    sys.exit(main())
