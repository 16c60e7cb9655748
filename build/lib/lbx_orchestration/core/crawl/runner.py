"""Run a crawl in a child Python process and read back its items and stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import lbx_orchestration
from lbx_orchestration.core.crawl.child import EXIT_BLOCKED, EXIT_OK
from lbx_orchestration.core.crawl.settings import build_settings
from lbx_orchestration.core.crawl.spiders import SPIDERS, normalize_base_url, parse_users
from lbx_orchestration.core.letterboxd.pages import CrawlBlocked

__all__ = ["CrawlBlocked", "CrawlError", "CrawlResult", "run_crawl"]

SPIDER_ARGS = {
    "rss": set(),
    "profile": {"include_diary", "include_film_pages", "max_pages", "members_pages"},
}
_DATE_KEYS = ("watched_date",)


class CrawlError(RuntimeError):
    """The crawl failed for a reason other than a block (the message carries the child's words)."""


@dataclass
class CrawlResult:
    items: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def _check_spider_args(spider: str, args: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(args) - SPIDER_ARGS[spider])
    if unknown:
        allowed = ", ".join(sorted(SPIDER_ARGS[spider])) or "none"
        raise ValueError(f"unknown argument(s) {unknown} for spider {spider!r}; allowed: {allowed}")
    for key in ("max_pages", "members_pages"):
        value = args.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f"{key} must be a whole number >= 1, got {value!r}")
    for key in ("include_diary", "include_film_pages"):
        if key in args and not isinstance(args[key], bool):
            raise ValueError(f"{key} must be true or false, got {args[key]!r}")
    return args


def _read_items(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    items: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        for key in _DATE_KEYS:
            if isinstance(item.get(key), str):
                item[key] = date.fromisoformat(item[key])
        items.append(item)
    return items


def _write_atomically(items_path: Path, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(items_path.read_bytes())
    os.replace(tmp, out)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _failure_message(spider: str, code: int, stats: dict[str, Any], stderr: str) -> str:
    reasons = []
    if stats.get("failed_urls"):
        reasons.append("failed after retries: " + ", ".join(stats["failed_urls"][:5]))
    if stats.get("unparsable_urls"):
        reasons.append("not a page lbx can read: " + ", ".join(stats["unparsable_urls"][:5]))
    if stats.get("spider_errors"):
        reasons.append(f"{stats['spider_errors']} parser errors")
    if stats.get("finish_reason") != "finished":
        reasons.append(f"finish reason {stats.get('finish_reason')!r}")
    detail = "; ".join(reasons) or "unknown cause"
    return f"crawl {spider!r} failed (exit {code}): {detail}\n{_tail(stderr)}"


def run_crawl(
    spider: str,
    users: list[str],
    base_url: str = "https://letterboxd.com",
    out: Path | None = None,
    settings_override: dict[str, Any] | None = None,
    timeout: float = 600,
    *,
    spider_args: dict[str, Any] | None = None,
) -> CrawlResult:
    """Crawl in a child process; raise CrawlBlocked when Letterboxd blocks, CrawlError otherwise.

    `out`, when given, receives the items as JSON lines only after a successful crawl.
    """
    if spider not in SPIDERS:
        raise ValueError(f"unknown spider {spider!r}; choose one of {', '.join(SPIDERS)}")
    users = parse_users(list(users))  # validated before any URL is built
    args = _check_spider_args(spider, dict(spider_args or {}))
    if not users and not args.get("members_pages"):
        raise ValueError("no Letterboxd usernames to crawl")
    base_url = normalize_base_url(base_url)
    build_settings(settings_override)  # fail here, not in the child, on a bad override

    root = str(Path(lbx_orchestration.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="lbx-crawl-") as tmp:
        items_path, stats_path = Path(tmp) / "items.jsonl", Path(tmp) / "stats.json"
        cmd = [
            sys.executable, "-m", "lbx_orchestration.core.crawl.child",
            "--spider", spider,
            "--users", ",".join(users),
            "--base-url", base_url,
            "--out", str(items_path),
            "--stats", str(stats_path),
            "--settings", json.dumps(settings_override or {}),
            "--args", json.dumps(args),
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            raise CrawlError(f"crawl {spider!r} timed out after {timeout:g} s") from None
        if not stats_path.exists():
            raise CrawlError(
                f"crawl {spider!r} failed (exit {proc.returncode}) before writing stats:\n"
                f"{_tail(proc.stderr)}"
            )
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        items = _read_items(items_path)
        if proc.returncode == EXIT_BLOCKED:
            raise CrawlBlocked(
                stats.get("blocked_cause") or "blocked",
                stats.get("blocked_url"),
                items=items,
                stats=stats,
            )
        if proc.returncode != EXIT_OK:
            raise CrawlError(_failure_message(spider, proc.returncode, stats, proc.stderr))
        if out is not None:
            _write_atomically(items_path, Path(out))
    return CrawlResult(items=items, stats=stats)
