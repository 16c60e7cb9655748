"""The parent's side of a crawl: check the request, launch the one child, read its items and report.

The CLI runs the child with ``run_crawl``; the RSS asset launches the same command through
Dagster Pipes and turns the same report into a result or an error with ``result_from_report``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lbx_orchestration.core.crawl.child import EXIT_CODES
from lbx_orchestration.core.crawl.settings import build_settings
from lbx_orchestration.core.crawl.spiders import check_spider_args, normalize_base_url, parse_users
from lbx_orchestration.core.letterboxd.pages import CrawlBlocked
from lbx_orchestration.core.settings import DAGSTER_PIPES_ENV, REPO_ROOT, child_environment, python_path

__all__ = ["CrawlBlocked", "CrawlError", "CrawlJob", "CrawlResult", "plan_crawl", "run_crawl"]

CHILD_MODULE = "lbx_orchestration.core.crawl.child"
# A crawl that receives nothing for this long is hung: the longest honest gap is a
# Retry-After (at most 120 s by default) plus a download timeout (30 s).
DEFAULT_IDLE_TIMEOUT = 600.0
_DATE_KEYS = ("watched_date",)
_POLL_SECONDS = 0.5


class CrawlError(RuntimeError):
    """The crawl failed for a reason other than a block; ``items`` holds what it read."""

    def __init__(self, message: str, *, items: list[dict[str, Any]] | None = None, stats: dict[str, Any] | None = None):
        super().__init__(message)
        self.items = items or []
        self.stats = stats or {}


@dataclass
class CrawlResult:
    items: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. a repeated page that ended a listing


@dataclass(frozen=True)
class CrawlJob:
    """A checked crawl request: every name and setting was validated before a URL exists."""

    spider: str
    users: tuple[str, ...]
    base_url: str
    settings: dict[str, Any]
    args: dict[str, Any]

    def command(self, out: Path, report: Path | None = None, heartbeat: Path | None = None) -> list[str]:
        cmd = [
            sys.executable, "-m", CHILD_MODULE,
            "--spider", self.spider,
            "--users", ",".join(self.users),
            "--base-url", self.base_url,
            "--out", str(out),
            "--settings", json.dumps(self.settings),
            "--args", json.dumps(self.args),
        ]  # fmt: skip
        if report is not None:
            cmd += ["--report", str(report)]
        if heartbeat is not None:
            cmd += ["--heartbeat", str(heartbeat)]
        return cmd


def plan_crawl(
    spider: str,
    users: list[str] | tuple[str, ...],
    base_url: str = "https://letterboxd.com",
    settings_override: dict[str, Any] | None = None,
    spider_args: dict[str, Any] | None = None,
) -> CrawlJob:
    """Validate everything the child would (ValueError names the bad part)."""
    args = check_spider_args(spider, dict(spider_args or {}))
    names = parse_users(list(users))
    if not names and not args.get("members_pages"):
        raise ValueError("no Letterboxd usernames to crawl")
    build_settings(settings_override)  # fail here, not in the child, on a bad override
    return CrawlJob(spider, tuple(names), normalize_base_url(base_url), dict(settings_override or {}), args)


def child_pythonpath() -> str:
    """PYTHONPATH for the child: this checkout first, so the child runs the same code."""
    root = str(REPO_ROOT)
    return os.pathsep.join(p for p in (root, python_path()) if p)


def read_items(path: Path) -> list[dict[str, Any]]:
    """The child's JSON lines, dates as ``date``."""
    if not path.exists():
        return []
    items: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            item = json.loads(line)
            for key in _DATE_KEYS:
                if isinstance(item.get(key), str):
                    item[key] = date.fromisoformat(item[key])
            items.append(item)
    return items


def result_from_report(
    spider: str, report: dict[str, Any], items: list[dict[str, Any]], detail: str = ""
) -> CrawlResult:
    """The child's report as a result, or CrawlBlocked / CrawlError carrying what was read."""
    stats = report.get("stats") or {}
    outcome = report.get("outcome")
    if outcome == "blocked":
        raise CrawlBlocked(stats.get("blocked_cause") or "blocked", stats.get("blocked_url"), items=items, stats=stats)
    if outcome != "ok":
        code = EXIT_CODES.get(str(outcome), EXIT_CODES["error"])
        message = f"crawl {spider!r} failed (exit {code}): {report.get('message') or 'unknown cause'}"
        raise CrawlError(message + (f"\n{detail}" if detail else ""), items=items, stats=stats)
    return CrawlResult(items=items, stats=stats, notes=list(report.get("notes") or []))


def _write_atomically(items_path: Path, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(items_path.read_bytes())
    os.replace(tmp, out)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _wait(proc: subprocess.Popen[str], heartbeat: Path, idle_timeout: float, timeout: float | None) -> str | None:
    """Wait for the child; kill it and say why when it hangs or outlives ``timeout``."""
    started = time.monotonic()
    while proc.poll() is None:
        time.sleep(_POLL_SECONDS)
        now = time.monotonic()
        idle = time.time() - heartbeat.stat().st_mtime
        reason = None
        if idle > idle_timeout:
            reason = f"received nothing for {idle:.0f} s (idle limit {idle_timeout:g} s)"
        elif timeout is not None and now - started > timeout:
            reason = f"ran longer than its {timeout:g} s limit"
        if reason:
            proc.kill()
            proc.wait()
            return reason
    return None


def run_crawl(
    spider: str,
    users: list[str],
    base_url: str = "https://letterboxd.com",
    out: Path | None = None,
    settings_override: dict[str, Any] | None = None,
    *,
    spider_args: dict[str, Any] | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    timeout: float | None = None,
) -> CrawlResult:
    """Crawl in a child process; raise CrawlBlocked when Letterboxd blocks, CrawlError otherwise.

    The child is stopped when it receives no response for ``idle_timeout`` seconds (a hang),
    never merely for being long: a 600-page profile takes as long as it takes. ``timeout``
    adds a hard limit when a caller wants one. ``out``, when given, receives the items as JSON
    lines only after a successful crawl.
    """
    job = plan_crawl(spider, users, base_url, settings_override, spider_args)
    # this child reports to us in JSON, even inside a Pipes process
    env = child_environment(child_pythonpath(), drop=(DAGSTER_PIPES_ENV,))
    with tempfile.TemporaryDirectory(prefix="lbx-crawl-") as tmp:
        items_path, report_path, heartbeat = Path(tmp) / "items.jsonl", Path(tmp) / "report.json", Path(tmp) / "beat"
        heartbeat.touch()
        stderr_path = Path(tmp) / "stderr.txt"
        with stderr_path.open("w", encoding="utf-8") as stderr:
            proc = subprocess.Popen(
                job.command(items_path, report_path, heartbeat),
                stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env, cwd=tmp,
            )  # fmt: skip
            stopped = _wait(proc, heartbeat, idle_timeout, timeout)
        errors = stderr_path.read_text(encoding="utf-8", errors="replace")
        if stopped:
            raise CrawlError(f"crawl {spider!r} stopped: it {stopped}\n{_tail(errors)}".rstrip())
        if not report_path.exists():
            raise CrawlError(f"crawl {spider!r} failed (exit {proc.returncode}) before reporting:\n{_tail(errors)}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
        result = result_from_report(spider, report, read_items(items_path), _tail(errors))
        if out is not None:
            _write_atomically(items_path, Path(out))
    return result
