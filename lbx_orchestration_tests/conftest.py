"""Test-wide setup: nothing a test does may touch the repo's data/ or the network."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="lbx-tests-"))
os.environ["LBX_DUCKDB_PATH"] = str(_SESSION_DIR / "default.duckdb")
os.environ["LBX_MODELS_DIR"] = str(_SESSION_DIR / "models")
os.environ["LBX_INBOX_DIR"] = str(_SESSION_DIR / "inbox")
os.environ["LBX_CRAWL_CACHE_DIR"] = str(_SESSION_DIR / "httpcache")
os.environ["LBX_CACHE_DIR"] = str(_SESSION_DIR / "cache")
os.environ["LBX_SETTINGS_FILE"] = str(_SESSION_DIR / "settings.toml")  # never the developer's data/settings.toml
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# never the repo's .dagster/ (make exports it): an in-process `lbx import` reports to this one
(_SESSION_DIR / "dagster_home").mkdir()
shutil.copy(Path(__file__).resolve().parents[1] / "config" / "dagster.yaml", _SESSION_DIR / "dagster_home")
os.environ["DAGSTER_HOME"] = str(_SESSION_DIR / "dagster_home")
for secret in ("TMDB_API_KEY", "TMDB_READ_TOKEN", "LBX_WAREHOUSE", "LBX_WAREHOUSE_DATA", "LBX_EXECUTOR"):
    os.environ.pop(secret, None)

pytest_plugins = ["lbx_orchestration_tests.support.warehouse"]


@pytest.fixture(autouse=True)
def _no_dagster_instance_left_over():
    """A Dagster instance entered with `with` publishes its state storage in a context variable;
    one test's instance, gone by the next test, must not be what the next test's Definitions
    load from ("Attempted to resolve undefined DagsterInstance weakref")."""
    from dagster._core.storage.defs_state.base import _current_storage

    token = _current_storage.set(None)
    yield
    _current_storage.reset(token)
