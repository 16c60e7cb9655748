"""The embedded default beside the distributed profile on the same synthetic community.

One run, one machine (2 cores here): first the full refresh in process on a DuckDB file (what
`make bench` measures), then the same graph through Celery workers into DuckLake on Postgres +
S3 (scripts/demo_distributed.py, services on loopback). Writes benchmarks/results/distributed.json
with each profile's wall time, peak memory and per-step seconds, and where the difference goes.

    .venv/bin/python benchmarks/distributed.py --size ml32m-tenth --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "scripts")]

import demo_distributed  # noqa: E402
import run as bench  # noqa: E402
import synth  # noqa: E402

OUT = HERE / "results" / "distributed.json"


def _stages(steps: dict[str, float]) -> dict[str, float]:
    owner = bench._stage_of_steps({k: None for k in steps})
    stages: dict[str, float] = {}
    for step, seconds in steps.items():
        stage = owner.get(step, "other")
        stages[stage] = round(stages.get(stage, 0.0) + seconds, 3)
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="ml32m-tenth", choices=list(synth.SIZES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=bench.DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    ws = bench.Workspace(args.work / f"distributed-{args.size}")
    ws.reset()
    result: dict[str, Any] = {
        "size": args.size,
        "machine": bench.machine(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    started = time.perf_counter()
    community = synth.generate(args.size, args.seed)
    result["data"] = synth.write(community, ws.data)
    spec = community.spec
    exports = synth.member_exports(
        community, ws.exports, members=min(20, max(2, spec.users // 100)), films_each=min(120, spec.films // 20)
    )
    member = exports[0].name.split("_")[0]
    del community
    result["synth_seconds"] = round(time.perf_counter() - started, 1)

    with bench.MemorySampler() as sampler, bench._env(ws.environ()):
        embedded = bench.full_refresh(ws, sampler, None)
    result["embedded"] = {
        "warehouse": "one DuckDB file",
        "executor": "in process",
        "seconds": embedded["seconds"],
        "peak_mb": embedded["peak_mb"],
        "success": embedded["success"],
        "stages": {k: v["seconds"] for k, v in embedded["stages"].items()},
    }

    # the same inputs (films, ratings, exports, TMDb snapshot) for the distributed profile
    inputs = {k: v for k, v in ws.environ().items() if k not in ("LBX_DUCKDB_PATH", "DAGSTER_HOME", "LBX_DATA_DIR")}
    inputs["LBX_MODELS_DIR"] = str(ws.root / "models-distributed")
    with bench.MemorySampler() as sampler:
        began = time.time()
        summary = demo_distributed.run(ws.root / "distributed", args.workers, 3600, extra_env=inputs, member=member)
        peak = sampler.peak_mb(began, time.time())
    full = summary["full_refresh_run"]
    result["distributed"] = {
        "warehouse": summary["warehouse"],
        "executor": summary["executor"],
        "workers": summary["workers"],
        "steps_by_worker": summary["steps_by_worker"],
        "most_steps_at_once": summary["most_steps_at_once"],
        "seconds": full["seconds"],
        "catalog_seconds": summary["catalog_run"]["seconds"],
        "whole_demo_seconds": summary["seconds"],
        "peak_mb": peak,
        "stages": _stages(full["steps"]),
        "steps": full["steps"],
        "runs_in_postgres": summary["runs_in_postgres"],
    }
    dist = result["distributed"]
    step_sum = round(sum(full["steps"].values()), 1)
    result["where_the_time_goes"] = {
        "embedded_seconds": result["embedded"]["seconds"],
        "distributed_seconds": dist["seconds"],
        "distributed_step_seconds_summed": step_sum,
        # steps that overlap on two workers make the sum exceed the wall time; queueing, Celery
        # hand-offs and DuckLake's Parquet + catalogue commits make the steps themselves slower
        "parallel_gain_seconds": round(step_sum - dist["seconds"], 1),
        "stage_difference_seconds": {
            stage: round(dist["stages"].get(stage, 0.0) - (seconds or 0.0), 1)
            for stage, seconds in result["embedded"]["stages"].items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(result["where_the_time_goes"], indent=2))
    return 0 if embedded["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
