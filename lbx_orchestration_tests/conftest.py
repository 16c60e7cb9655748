"""Test-wide setup: nothing a test does may touch the repo's data/ or the network."""

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="lbx-tests-"))
os.environ["LBX_DUCKDB_PATH"] = str(_SESSION_DIR / "default.duckdb")
os.environ["LBX_MODELS_DIR"] = str(_SESSION_DIR / "models")
os.environ["LBX_INBOX_DIR"] = str(_SESSION_DIR / "inbox")
os.environ["LBX_CRAWL_CACHE_DIR"] = str(_SESSION_DIR / "httpcache")
os.environ["LBX_SETTINGS_FILE"] = str(_SESSION_DIR / "settings.toml")  # never the developer's data/settings.toml
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
for secret in ("TMDB_API_KEY", "TMDB_READ_TOKEN"):
    os.environ.pop(secret, None)

pytest_plugins = ["lbx_orchestration_tests.support.warehouse"]
