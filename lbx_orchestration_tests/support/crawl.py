"""Crawl settings for tests against the recorded server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fast_crawl_settings(cache_dir: Path, retry_times: int = 0, httpcache: bool = False) -> dict[str, Any]:
    """Test-only loosening: no download delay or AutoThrottle; the HTTP cache (off unless asked) in ``cache_dir``."""
    settings: dict[str, Any] = {"download_delay": 0, "autothrottle": False, "retry_times": retry_times}
    if not httpcache:
        settings["httpcache_enabled"] = False
    settings["httpcache_dir"] = str(cache_dir)
    return settings
