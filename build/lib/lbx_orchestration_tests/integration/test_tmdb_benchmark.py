"""The throughput benchmark at a tiny size: it runs, respects the limit and writes its JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import tmdb_throughput  # noqa: E402


def test_run_benchmark_small(tmp_path: Path) -> None:
    out = tmp_path / "results" / "tmdb_throughput.json"
    result = tmdb_throughput.run_benchmark(n=20, rate=50, out=out)
    assert json.loads(out.read_text()) == result
    assert result["films"] == 20
    assert result["requests"] == result["requests_served"] == 20 * 2 + 1  # + /configuration
    assert result["max_requests_in_any_1s_window"] <= 50
    assert result["within_limit"] is True
    assert result["stats"]["retries"] == 0
    line = tmdb_throughput.markdown_line(result)
    assert line.startswith("| tmdb_throughput | films 20/20 | requests 41 |")


def test_max_in_window_counts_half_open_windows() -> None:
    assert tmdb_throughput.max_in_window([0.0, 0.5, 0.999, 1.0, 1.5]) == 3
    assert tmdb_throughput.max_in_window([]) == 0
