"""A crawl as a Dagster Pipes child process (Scrapy's reactor cannot restart in the run's process).

    python -m lbx_orchestration.ingest.crawl_pipes --spider rss --users a,b \\
        --base-url URL --out items.jsonl [--settings JSON]

Writes the items as JSON lines to --out and reports the crawl stats to the launching asset as a
Pipes custom message ``{"stats": {...}, "outcome": "ok" | "blocked" | "error", "items": N}``.
A blocked or failed crawl still exits 0 after reporting, so the asset can name the cause; an
exception (bad arguments, a crash) is reported by Pipes and exits 1.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from dagster_pipes import open_dagster_pipes

from lbx_orchestration.core.crawl.child import EXIT_BLOCKED, EXIT_OK, crawl, exit_code

OUTCOMES = {EXIT_OK: "ok", EXIT_BLOCKED: "blocked"}


def _object(text: str, flag: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lbx-crawl-pipes", description=__doc__.split("\n")[0])
    parser.add_argument("--spider", default="rss")
    parser.add_argument("--users", required=True)
    parser.add_argument("--base-url", default="https://letterboxd.com")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--settings", default="{}", help="JSON object of crawl overrides")
    ns = parser.parse_args(argv)
    with open_dagster_pipes() as pipes:
        users = [u for u in ns.users.split(",") if u.strip()]
        with tempfile.TemporaryDirectory(prefix="lbx-pipes-") as tmp:
            stats = crawl(ns.spider, users, ns.base_url, ns.out, Path(tmp) / "stats.json",
                          settings=_object(ns.settings, "--settings"))
        items = sum(1 for line in ns.out.read_text(encoding="utf-8").splitlines() if line.strip())
        outcome = OUTCOMES.get(exit_code(stats), "error")
        pipes.log.info(f"crawl {ns.spider!r} of {len(users)} user(s): {outcome}, {items} items "
                       f"from {stats.get('pages', 0)} pages ({stats.get('requests', 0)} requests)")
        pipes.report_custom_message({"stats": stats, "outcome": outcome, "items": items})
    return 0


if __name__ == "__main__":
    sys.exit(main())
