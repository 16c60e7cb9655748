"""TMDb client throughput against a loopback server: does it reach, and never pass, its rate?

    python benchmarks/tmdb_throughput.py [--n 1000] [--rate 20] [--out PATH]

Serves a recorded details body (and a providers body) for ``n`` ids on 127.0.0.1, fetches
them all with ``TmdbClient.fetch_many`` and writes a JSON summary. Send times are taken in the
transport, right before each request leaves the client.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

from lbx_orchestration.core.tmdb.client import TmdbClient  # noqa: E402
from lbx_orchestration_tests.support.recorded_server import (  # noqa: E402
    RecordedServer,
    Response,
)

FIXTURES = ROOT / "lbx_orchestration_tests" / "fixtures" / "tmdb"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "tmdb_throughput.json"
JSON_TYPE = "application/json;charset=utf-8"


class _SendTimes(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.times: list[float] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.times.append(time.monotonic())
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most timestamps inside any half-open window [t, t + window)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _routes(n: int) -> dict[str, Response]:
    details = (FIXTURES / "jdrouet-tmdb-api" / "movie-details.json").read_text(encoding="utf-8")
    providers = json.loads((FIXTURES / "jdrouet-tmdb-api" / "movie-watch-providers.json").read_text(encoding="utf-8"))
    us_only = json.dumps({"id": 550, "results": {"US": providers["results"]["US"]}})
    config = FIXTURES / "c-eg-themoviedbapi" / "configuration__details.json"
    routes = {"/configuration": Response(200, config, content_type=JSON_TYPE)}
    for tmdb_id in range(1, n + 1):
        routes[f"/movie/{tmdb_id}"] = Response(200, details, content_type=JSON_TYPE)
        routes[f"/movie/{tmdb_id}/watch/providers"] = Response(200, us_only, content_type=JSON_TYPE)
    return routes


def run_benchmark(n: int, rate: float, out: Path, max_concurrency: int = 4) -> dict[str, Any]:
    if n < 1 or rate <= 0:
        raise ValueError(f"need n >= 1 and rate > 0 (got n={n}, rate={rate})")
    transport = _SendTimes()
    with RecordedServer(_routes(n)) as server:
        client = TmdbClient(
            api_key="benchmark-key",
            base_url=server.base_url,
            rate_limit=rate,
            max_concurrency=max_concurrency,
            transport=transport,
        )
        start = time.monotonic()
        films = sum(1 for _, film in client.fetch_many(range(1, n + 1)) if film is not None)
        elapsed = time.monotonic() - start
        client.close()
        served = len(server.requests)
    times = transport.times
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    result: dict[str, Any] = {
        "n": n,
        "films": films,
        "rate_limit": rate,
        "max_concurrency": max_concurrency,
        "requests": len(times),
        "requests_served": served,
        "elapsed_s": round(elapsed, 3),
        "achieved_rps": round((len(times) - 1) / span, 3) if span > 0 else None,
        "max_requests_in_any_1s_window": max_in_window(times),
        "stats": client.stats.as_dict(),
    }
    result["within_limit"] = result["max_requests_in_any_1s_window"] <= rate
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def markdown_line(result: dict[str, Any]) -> str:
    return (
        f"| tmdb_throughput | films {result['films']}/{result['n']} | "
        f"requests {result['requests']} | elapsed {result['elapsed_s']:.1f} s | "
        f"achieved {result['achieved_rps']} req/s (limit {result['rate_limit']:g}) | "
        f"max in any 1 s window {result['max_requests_in_any_1s_window']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="films to fetch (default 1000)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/second (default 20)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    result = run_benchmark(args.n, args.rate, args.out, args.concurrency)
    print(markdown_line(result))
    return 0 if result["within_limit"] and result["films"] == args.n else 1


if __name__ == "__main__":
    raise SystemExit(main())
