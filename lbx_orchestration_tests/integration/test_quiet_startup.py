"""`make ui` and `make test` start without spurious warnings: none from loading the definitions
(beta or deprecated Dagster APIs), and no virtualenv mismatch from `dg`."""

import os
import shlex
import subprocess
import sys

from lbx_orchestration.core.settings import REPO_ROOT

LOAD = (
    "from lbx_orchestration.definitions import defs; repo = defs.get_repository_def(); "
    "[repo.get_job(j.name) for j in repo.get_all_jobs()]; [s.targets for s in repo.sensor_defs]"
)


def test_loading_the_definitions_warns_about_nothing_dagster() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", LOAD], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    noisy = [line for line in done.stderr.splitlines() if "BetaWarning" in line or "lbx_orchestration/" in line]
    assert noisy == []


def test_make_runs_dg_in_the_projects_virtualenv() -> None:
    lines = subprocess.run(
        ["make", "-s", "-n", "ui", "test"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=True
    ).stdout.splitlines()
    dg_lines = [shlex.split(line) for line in lines if "/dg " in line]
    assert {words[-1] for words in dg_lines} == {"dev", "defs"}
    for words in dg_lines:
        assert f"VIRTUAL_ENV={REPO_ROOT / '.venv'}" in words
    check = dg_lines[[w[-1] for w in dg_lines].index("defs")]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run(
        ["env", *check], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env, check=True
    )
    assert "does not match" not in done.stdout + done.stderr
