"""`make demo-distributed`: the bundled data through Celery workers, into DuckLake on Postgres + S3.

Starts Postgres, Redis and an S3 stand-in on loopback (scripts/services.sh), a Dagster daemon
and Celery workers on an instance kept in Postgres, queues the release-month catalogue and the
full refresh of the bundled scrape date, waits for them, asks `lbx recs` and `lbx serve` for a
member's list from the lake, and writes data/distributed/summary.json. Every process and service
it started is stopped at the end, also when something fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICES = REPO / "scripts" / "services.sh"
PARTITION = "2026-11-01"  # the bundled sample's scrape date (settings.SAMPLE_SCRAPE_DATE)
MEMBER = "patrickmjones"


def log(message: str) -> None:
    print(f"demo-distributed: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_services(folder: Path) -> dict[str, str]:
    subprocess.run(["bash", str(SERVICES), "install"], check=True)
    out = subprocess.run(["bash", str(SERVICES), "start", str(folder)], check=True, capture_output=True, text=True)
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def profile_env(out: Path, services: dict[str, str]) -> dict[str, str]:
    """The distributed profile: the same variables for the daemon, the workers and the CLI."""
    dsn = services["LBX_PG_DSN"]
    # the password reaches libpq through PGPASSWORD, so the warehouse setting holds none
    no_password = " ".join(p for p in dsn.split() if not p.startswith("password="))
    return {
        **services,
        "PGPASSWORD": services["LBX_DAGSTER_PG_PASSWORD"],
        "DAGSTER_HOME": str(out / "dagster_home"),
        "LBX_WAREHOUSE": f"ducklake:postgres:{no_password}",
        "LBX_WAREHOUSE_DATA": f"s3://{services['LBX_S3_BUCKET']}/lake/",
        "LBX_EXECUTOR": "celery",
        "LBX_DATA_DIR": str(out / "data"),
        "LBX_INBOX_DIR": str(out / "inbox"),
        "OPENBLAS_NUM_THREADS": "1",
        # dagster-celery starts `celery` by name: the venv's bin must be on the PATH
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


class Processes:
    """Children started here, stopped (SIGTERM, then SIGKILL) in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        handle = (self.logs / f"{name}.log").open("w")
        child = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, child))
        return child

    def stop(self) -> None:
        for _name, child in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, child in reversed(self.children):
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group too: the daemon's code servers outlive a SIGTERM to it
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()


def launch(job: str, tags: dict[str, str], env: dict[str, str]) -> None:
    argv = [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", job, "--tags", json.dumps(tags)]
    subprocess.run(argv, env=env, cwd=REPO, check=True, capture_output=True, text=True)


def wait_for_runs(instance, origin: str, count: int, timeout: float) -> list:
    import dagster as dg

    deadline = time.monotonic() + timeout
    while True:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"lbx/origin": origin}))
        if len(runs) >= count and all(r.is_finished for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs {origin} not finished after {timeout:.0f} s: {[r.status.value for r in runs]}")
        time.sleep(3)


def steps_by_worker(instance, run_ids: list[str]) -> tuple[dict[str, int], int]:
    """Steps per Celery worker (its engine event names it), and the most steps that ran at once."""
    from dagster import DagsterEventType

    workers: Counter[str] = Counter()
    spans: list[tuple[float, int]] = []
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id, limit=100_000).records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == DagsterEventType.ENGINE_EVENT:
                found = event.engine_event_data.metadata.get("Celery worker")
                if found is not None:
                    workers[str(found.value).split("@")[0]] += 1
            elif event.event_type == DagsterEventType.STEP_START:
                spans.append((entry.timestamp, 1))
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                spans.append((entry.timestamp, -1))
    running = most = 0
    for _, change in sorted(spans, key=lambda s: (s[0], s[1])):
        running += change
        most = max(most, running)
    return dict(sorted(workers.items())), most


def runs_in_postgres(services: dict[str, str]) -> int:
    import psycopg2

    with (
        psycopg2.connect(
            host=services["LBX_DAGSTER_PG_HOST"],
            port=services["LBX_DAGSTER_PG_PORT"],
            user=services["LBX_DAGSTER_PG_USER"],
            password=services["LBX_DAGSTER_PG_PASSWORD"],
            dbname=services["LBX_DAGSTER_PG_DB"],
        ) as con,
        con.cursor() as cur,
    ):
        cur.execute("select count(*) from runs where status = 'SUCCESS'")
        return int(cur.fetchone()[0])


def check_recs(env: dict[str, str], member: str) -> int:
    out = subprocess.run(
        [str(BIN / "lbx"), "recs", member, "--limit", "10"], env=env, cwd=REPO, capture_output=True, text=True
    )
    rows = [line for line in out.stdout.splitlines() if line[:1].isdigit()]
    if out.returncode != 0 or not rows:
        raise RuntimeError(f"lbx recs {member} gave no list from the lake: {out.stderr.strip()[-400:]}")
    return len(rows)


def check_serve(procs: Processes, env: dict[str, str], member: str) -> int:
    port = free_port()
    procs.start("serve", [str(BIN / "lbx"), "serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}/api/users/{member}/recommendations"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.loads(answer.read())
            items = body.get("recommendations") or body.get("items") or []
            if items:
                return len(items)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"lbx serve gave no list for {member} from the lake within 120 s")
        time.sleep(1)


def run_timing(instance, run) -> dict:
    """Wall time of a run (from its record in Postgres) and each step's time."""
    record = instance.get_run_record_by_id(run.run_id)
    steps = {
        s.step_key: round(s.end_time - s.start_time, 3)
        for s in instance.get_run_step_stats(run.run_id)
        if s.start_time and s.end_time
    }
    return {"seconds": round(record.end_time - record.start_time, 1), "steps": steps}


def run(out: Path, workers: int, timeout: float, extra_env: dict[str, str] | None = None, member: str = MEMBER) -> dict:
    started = time.perf_counter()
    if out.exists():
        subprocess.run(["bash", str(SERVICES), "stop", str(out / "services")], check=False)
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)
    procs = Processes(out / "logs")
    try:
        services = start_services(out / "services")
        env = {**os.environ, **profile_env(out, services), **(extra_env or {})}
        home = Path(env["DAGSTER_HOME"])
        home.mkdir(parents=True)
        shutil.copy(REPO / "config" / "distributed" / "dagster.yaml", home / "dagster.yaml")
        os.environ.update(env)  # this process reads the same instance (Postgres)
        import dagster as dg

        from lbx_orchestration.demo import catalog_range
        from lbx_orchestration.partitions import add_scrape_date

        celery = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
        celery += ["-y", str(REPO / "config" / "distributed" / "celery.yaml")]
        for i in range(1, workers + 1):
            procs.start(f"worker{i}", [*celery, "--name", f"worker{i}", "--", "--concurrency=1", "-P", "solo"], env)
        procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env)
        instance = dg.DagsterInstance.get()
        add_scrape_date(instance, PARTITION)
        first, last = catalog_range()
        origin = "demo-distributed"
        log("queued: the release-month catalogue, then the full refresh of the bundled scrape date")
        graph_started = time.perf_counter()
        launch(
            "tmdb_catalog_job",
            {
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
                "lbx/origin": origin + "-catalog",
            },
            env,
        )
        wait_for_runs(instance, origin + "-catalog", 1, timeout)
        launch("full_refresh_job", {"dagster/partition": PARTITION, "lbx/origin": origin}, env)
        runs = wait_for_runs(instance, origin, 1, timeout)
        graph_seconds = time.perf_counter() - graph_started
        catalog_runs = instance.get_runs(filters=dg.RunsFilter(tags={"lbx/origin": origin + "-catalog"}))
        all_runs = [*catalog_runs, *runs]
        failed = [r.run_id for r in all_runs if r.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            raise RuntimeError(f"runs did not succeed: {failed} (logs in {out / 'logs'})")
        by_worker, at_once = steps_by_worker(instance, [r.run_id for r in all_runs])
        summary = {
            "warehouse": f"ducklake:postgres (catalogue) + {env['LBX_WAREHOUSE_DATA']} (S3 stand-in)",
            "executor": "celery (redis broker)",
            "workers": workers,
            "steps_by_worker": by_worker,
            "most_steps_at_once": at_once,
            "runs_in_postgres": runs_in_postgres(services),
            "run_ids": [r.run_id for r in all_runs],
            "graph_seconds": round(graph_seconds, 1),
            "catalog_run": run_timing(instance, catalog_runs[0]),
            "full_refresh_run": run_timing(instance, runs[0]),
            "recs_rows": check_recs(env, member),
            "serve_recommendations": check_serve(procs, env, member),
        }
        summary["seconds"] = round(time.perf_counter() - started, 1)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary
    finally:
        procs.stop()
        subprocess.run(["bash", str(SERVICES), "stop", str(out / "services")], check=False)


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds through run()'s clean-up: services and children stop


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "distributed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args(argv)
    try:
        summary = run(args.out.resolve(), args.workers, args.timeout)
    except KeyboardInterrupt:
        log("stopped (SIGTERM or Ctrl-C); every service and process it started was stopped")
        return 1
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log(f"failed: {exc} {detail.strip()[-600:]}")
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
