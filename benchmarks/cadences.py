"""The two cadences on a benchmark workspace that had its full refresh: one night of new ratings
through the nightly job, and lbx's final fits of ALS and EASE against the raw library calls.

    .venv/bin/python benchmarks/cadences.py --size ml32m-tenth --workspace benchmarks/work/distributed-ml32m-tenth

Writes benchmarks/results/cadences-<size>.json with `incremental_nightly` and `library_ratio`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import library_overhead  # noqa: E402
import nightly_incremental  # noqa: E402
import run as bench  # noqa: E402
import synth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="ml32m-tenth", choices=list(synth.SIZES))
    parser.add_argument("--workspace", type=Path, required=True, help="a workspace whose full refresh succeeded")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    ws = bench.Workspace(args.workspace)
    if not ws.db.exists():
        parser.error(f"{ws.db} does not exist: run benchmarks/run.py or benchmarks/distributed.py first")
    result = {
        "size": args.size,
        "machine": bench.machine(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with bench._env(ws.environ()):
        train, params = library_overhead.training_matrix(ws.db, ws.models)
        result["library_ratio"] = library_overhead.measure(
            train, params["als"], params["ease"], repeats=args.repeats
        ) | {"params_source": params["params_source"]}
        del train
        community = synth.generate(args.size, args.seed)
        result["incremental_nightly"] = nightly_incremental.incremental_nightly(
            ws, community, bench._resources(ws, None)
        )
    out = HERE / "results" / f"cadences-{args.size}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("library_ratio", "incremental_nightly")}, indent=2, default=str)[:3000])
    return 0 if result["incremental_nightly"]["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
