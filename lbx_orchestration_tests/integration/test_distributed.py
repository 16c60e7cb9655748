"""The distributed profile end to end on loopback (make demo-distributed): Postgres, Redis and an S3
stand-in, a Dagster instance on Postgres, two Celery workers, DuckLake on Postgres + S3.

Needs the Debian packages postgresql and redis-server (`scripts/services.sh install`; .ci/run
installs them). Without them the test is skipped with that reason, except in CI, where it fails.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lbx_orchestration.core.settings import REPO_ROOT

pytestmark = pytest.mark.slow

PORTS = {"LBX_PG_PORT": 55442, "LBX_REDIS_PORT": 56389, "LBX_S3_PORT": 55010}


def _services_installed() -> bool:
    return bool(shutil.which("redis-server")) and any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not _services_installed():
        if os.environ.get("CI"):
            pytest.fail("postgresql and redis-server are not installed: .ci/run runs scripts/services.sh install")
        pytest.skip("needs postgresql and redis-server: run `bash scripts/services.sh install`")
    out = tmp_path_factory.mktemp("distributed") / "run"
    env = {**os.environ, **{k: str(v) for k, v in PORTS.items()}}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "demo_distributed.py"), "--out", str(out), "--timeout", "900"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "summary.json").read_text())
    result["_out"] = str(out)
    return result


def test_steps_ran_on_two_celery_workers_into_ducklake(summary: dict) -> None:
    assert summary["executor"].startswith("celery")
    assert summary["workers"] == 2
    assert set(summary["steps_by_worker"]) == {"worker1", "worker2"}
    assert all(count >= 2 for count in summary["steps_by_worker"].values())
    # 1 catalogue run + the full refresh, both recorded in Postgres by the instance
    assert summary["runs_in_postgres"] == 2
    assert summary["warehouse"].startswith("ducklake:postgres")
    assert "s3://" in summary["warehouse"]


def test_lbx_recs_and_serve_answered_from_the_lake(summary: dict) -> None:
    assert summary["recs_rows"] == 10
    assert summary["serve_recommendations"] >= 10


def test_every_service_and_process_was_stopped(summary: dict) -> None:
    assert [name for name, port in PORTS.items() if _listening(port)] == []
    leftover = subprocess.run(["pgrep", "-f", summary["_out"]], capture_output=True, text=True).stdout.split()
    assert leftover == []
