"""`lbx` as a child process, and a Dagster run that holds the ``duckdb`` pool: what the fault
tests start and kill."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POOL_CONFIG = "concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n"

# a run that takes the duckdb pool's only slot and keeps it (argv[1]: a marker file it writes then)
POOL_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import dagster as dg

    marker = Path(sys.argv[1])

    @dg.asset(pool="duckdb")
    def slow_writer() -> None:
        marker.write_text("in the pool")
        time.sleep(300)

    dg.materialize([slow_writer], instance=dg.DagsterInstance.get())
""")


def run_lbx(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lbx_orchestration.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=REPO,
    )
