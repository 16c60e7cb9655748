"""Load benchmark of `lbx serve` on loopback.

    python benchmarks/web_load.py [--db data/lbx.duckdb] [--clients 50] [--seconds 15]

Copies the warehouse into ``benchmarks/work/web/`` (the served model's files are only read),
starts `lbx serve` on it in a child process, and measures, with ``--clients`` concurrent
keep-alive clients asking for random members' recommendations (a third of them with a genre
or decade filter):

1. steady state;
2. while another process holds a write connection to the DuckDB file and rewrites the
   recommendations table every second (what a nightly refresh does to a reader);
3. one upload of a synthetic 1,000-film export (films drawn from the catalogue), answered with
   the member's recommendations.

Writes ``benchmarks/results/web_load.json`` and ``web_load.md`` with targets met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

from lbx_orchestration.core.settings import child_environment, duckdb_path  # noqa: E402
from lbx_orchestration.core.tables import RECOMMENDATIONS, TMDB_MOVIES  # noqa: E402
from lbx_orchestration_tests.support.web import free_port, start_lbx_serve  # noqa: E402

WORK = Path(__file__).resolve().parent / "work" / "web"
OUT = Path(__file__).resolve().parent / "results"
P95_TARGET_MS = 100.0
UPLOAD_TARGET_S = 5.0
WRITER = f"""
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    con.execute("create or replace table {RECOMMENDATIONS} as select * from {RECOMMENDATIONS}")
    time.sleep(1)
con.close()
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _client(
    host: str, port: int, paths: list[str], stop: float, latencies: list[float], errors: dict[str, int]
) -> None:
    """One keep-alive HTTP/1.1 connection asking for ``paths`` in turn until ``stop``. Raw
    asyncio streams: a Python client library would spend more of the shared CPU than the server."""
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError, StopIteration) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
    finally:
        writer.close()


def load(base: str, users: list[str], genres: list[str], decades: list[str], clients: int, seconds: float) -> dict:
    host, port = base.removeprefix("http://").split(":")
    rng = random.Random(11)

    def path() -> str:
        params = {"limit": 20}
        roll = rng.random()
        if roll < 0.17:
            params["genre"] = rng.choice(genres)
        elif roll < 0.33:
            params["decade"] = rng.choice(decades)
        return f"/api/users/{quote(rng.choice(users))}/recommendations?{urlencode(params)}"

    plans = [[path() for _ in range(200)] for _ in range(clients)]
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def run() -> None:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(host, int(port), plan, stop, latencies, errors) for plan in plans))

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def synthetic_export(db: Path, films: int, username: str) -> bytes:
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        f"select title, year from {TMDB_MOVIES} where title is not null and year is not null "
        "order by vote_count desc nulls last, tmdb_id limit ?",
        [films],
    ).fetchall()
    con.close()
    rng = random.Random(7)
    ratings = ["Date,Name,Year,Letterboxd URI,Rating"]
    watched = ["Date,Name,Year,Letterboxd URI"]
    for i, (title, year) in enumerate(rows):
        name = '"' + title.replace('"', '""') + '"'
        uri = f"https://boxd.it/bench{i:05d}"
        ratings.append(f"2024-01-{1 + i % 28:02d},{name},{year},{uri},{rng.choice([2, 2.5, 3, 3.5, 4, 4.5, 5])}")
        watched.append(f"2024-01-{1 + i % 28:02d},{name},{year},{uri}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("profile.csv", f"Date Joined,Username\n2020-01-01,{username}\n")
        zf.writestr("ratings.csv", "\n".join(ratings) + "\n")
        zf.writestr("watched.csv", "\n".join(watched) + "\n")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=str(duckdb_path()))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--films", type=int, default=1000)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    source = Path(args.db)
    if not source.exists():
        print(f"no warehouse at {source}: run `make demo` first", file=sys.stderr)
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    db = WORK / "lbx.duckdb"
    shutil.copyfile(source, db)
    con = duckdb.connect(str(db), read_only=True)
    users = [r[0] for r in con.execute(f"select distinct username from {RECOMMENDATIONS}").fetchall()]
    con.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**child_environment(str(ROOT)), "OPENBLAS_NUM_THREADS": "1"}
    server = start_lbx_serve(db, port, WORK / "state", env, cwd=ROOT)
    results: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "note": "client and server share the machine (and it is shared with other work)",
            "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
        },
        "warehouse_users": len(users),
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:  # up, and done preparing the import path (which takes the CPU for seconds)
                r = httpx.get(f"{base}/api/health", timeout=2)
                if r.status_code == 200 and r.json().get("imports_ready"):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("lbx serve did not come up")
            time.sleep(0.5)
        meta = httpx.get(f"{base}/api/meta").json()
        genres, decades = meta["genres"], meta["decades"]
        load(base, users, genres, decades, 10, 2)  # warm-up
        results["steady"] = load(base, users, genres, decades, args.clients, args.seconds)
        print("steady", results["steady"])

        before = httpx.get(f"{base}/api/health").json()["snapshot"]["refreshes"]
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(args.seconds + 2)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout.readline().strip() == "locked"
        results["during_write"] = load(base, users, genres, decades, args.clients, args.seconds)
        busy = httpx.get(f"{base}/api/health").json()["snapshot"]
        writer.wait(timeout=60)
        results["during_write"]["server_saw_busy_warehouse"] = bool(busy["warehouse_busy_since"])
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/api/health").json()["snapshot"]["refreshes"] == before:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        results["during_write"]["snapshot_refreshed_after_write"] = (
            httpx.get(f"{base}/api/health").json()["snapshot"]["refreshes"] > before
        )
        print("during write", results["during_write"])

        payload = synthetic_export(db, args.films, "bench_member")
        uploads = []
        for i in range(3):  # three members (the rate limit allows three at once)
            started = time.perf_counter()
            r = httpx.post(
                f"{base}/api/imports",
                files={"file": ("export.zip", payload, "application/zip")},
                data={"username": f"bench_member_{i}"},
                timeout=120,
            )
            elapsed = time.perf_counter() - started
            body = r.json()
            uploads.append(
                {
                    "status_code": r.status_code,
                    "seconds": round(elapsed, 2),
                    "films_resolved": body.get("resolved"),
                    "recommendations": len(body.get("recommendations", [])),
                    "error": body.get("error"),
                }
            )
        results["upload"] = {
            "films_in_export": args.films,
            "bytes": len(payload),
            "runs": uploads,
            "status_code": max(u["status_code"] for u in uploads),
            "seconds": max(u["seconds"] for u in uploads),
            "films_resolved": uploads[0]["films_resolved"],
            "recommendations": uploads[0]["recommendations"],
        }
        print("upload", results["upload"])
    finally:
        server.terminate()
        server.wait(timeout=30)

    results["machine"]["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    results["targets"] = {
        "p95_steady_ms<=100": results["steady"]["p95_ms"] <= P95_TARGET_MS and results["steady"]["errors"] == 0,
        "p95_during_write_ms<=100": results["during_write"]["p95_ms"] <= P95_TARGET_MS
        and results["during_write"]["errors"] == 0,
        "upload_1000_films_s<=5": results["upload"]["status_code"] == 200
        and results["upload"]["seconds"] <= UPLOAD_TARGET_S,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "web_load.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "web_load.md").write_text(markdown(results))
    print(json.dumps(results["targets"]))
    return 0


def markdown(r: dict) -> str:
    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    t = r["targets"]
    lines = [
        "# Web load benchmark",
        "",
        "Generated by `python benchmarks/web_load.py` (`make bench-web`): `lbx serve` on a copy of the demo "
        f"warehouse ({r['warehouse_users']} members), {r['steady']['clients']} concurrent keep-alive clients on "
        f"127.0.0.1 asking for random members' recommendations (a third filtered). {r['machine']['cores']} cores, "
        "client and server on the same machine, which other work shares (load average "
        f"{r['machine']['load_average_at_start'][0]} at the start, "
        f"{r['machine']['load_average_at_end'][0]} at the end).",
        "",
        "| phase | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | target p95 <= 100 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label, ok in (
        ("steady", "steady", t["p95_steady_ms<=100"]),
        ("during_write", "another process writing the warehouse", t["p95_during_write_ms<=100"]),
    ):
        p = r[key]
        lines.append(
            f"| {label} | {p['requests']:,} | {p['requests_per_second']} | {p['p50_ms']} | {p['p95_ms']} | "
            f"{p['p99_ms']} | {p['max_ms']} | {p['errors']} | {mark(ok)} |"
        )
    u = r["upload"]
    lines += [
        "",
        f"During the write the server saw the warehouse busy: {r['during_write'].get('server_saw_busy_warehouse')}; "
        f"its snapshot refreshed once the writer let go: {r['during_write'].get('snapshot_refreshed_after_write')}.",
        "",
        f"Upload of a {u['films_in_export']:,}-film export ({u['bytes']:,} bytes), three new members one after "
        f"the other: {', '.join(str(x['seconds']) + ' s' for x in u['runs'])} (HTTP "
        f"{', '.join(str(x['status_code']) for x in u['runs'])}), {u['films_resolved']} films resolved, "
        f"{u['recommendations']} recommendations each (target <= 5 s, slowest counted: "
        f"{mark(t['upload_1000_films_s<=5'])}). The server prepares the import path (served model, "
        "serving inputs, TMDb title index) at start-up, before the benchmark begins.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
