"""Walking TMDb's ``/discover/movie`` over a release-date window, within its 500-page cap.

TMDb never serves a page past 500 (20 films a page), so a window whose first page reports
more than 500 pages is split in two halves by date, recursively, until each half fits; a
single day that still does not fit keeps its first 500 pages (counted in ``truncated_days``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_PAGES = 500

#: (first day, last day, page) -> the parsed JSON of that discover page
PageFetcher = Callable[[dt.date, dt.date, int], dict[str, Any]]


@dataclass
class DiscoverStats:
    queries: int = 0
    pages: int = 0
    narrowed: int = 0
    truncated_days: int = 0
    windows: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "pages": self.pages,
            "narrowed": self.narrowed,
            "truncated_days": self.truncated_days,
            "windows": len(self.windows),
        }


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    first = month.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def discover_params(start: dt.date, end: dt.date, page: int, min_votes: int, min_rating: float) -> dict[str, Any]:
    return {
        "primary_release_date.gte": start.isoformat(),
        "primary_release_date.lte": end.isoformat(),
        "vote_count.gte": int(min_votes),
        "vote_average.gte": float(min_rating),
        "include_adult": "false",
        "include_video": "false",
        "sort_by": "primary_release_date.asc",
        "page": int(page),
    }


def _pages(body: dict[str, Any]) -> int:
    try:
        return max(0, int(body.get("total_pages") or 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"TMDb discover answered a non-numeric total_pages: {body.get('total_pages')!r}") from exc


def discover_window(
    fetch: PageFetcher, start: dt.date, end: dt.date, stats: DiscoverStats | None = None
) -> list[dict[str, Any]]:
    """Every discover result released between ``start`` and ``end`` (inclusive), in order."""
    stats = stats if stats is not None else DiscoverStats()
    if end < start:
        raise ValueError(f"empty date window: {start} .. {end}")
    first = fetch(start, end, 1)
    stats.queries += 1
    stats.pages += 1
    total = _pages(first)
    if total > MAX_PAGES and start < end:
        stats.narrowed += 1
        middle = start + (end - start) // 2
        return discover_window(fetch, start, middle, stats) + discover_window(
            fetch, middle + dt.timedelta(days=1), end, stats
        )
    if total > MAX_PAGES:
        stats.truncated_days += 1
    stats.windows.append(f"{start}..{end}")
    results = list(first.get("results") or [])
    for page in range(2, min(total, MAX_PAGES) + 1):
        results += list(fetch(start, end, page).get("results") or [])
        stats.pages += 1
    return results
