"""Paths and dates the Dagster layer shares. Everything can be overridden from the environment."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "sample_data"
BUNDLED_MOVIELENS_DIR = SAMPLE_DATA_DIR / "movielens"
BUNDLED_EXPORTS_DIR = SAMPLE_DATA_DIR / "letterboxd_exports"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_features"

#: the scrape date of the bundled sample (MovieLens and the three exports were gathered then)
SAMPLE_SCRAPE_DATE = dt.date(2026, 11, 1)
SCRAPE_DATES_START = "2024-01-01"


def dbt_executable() -> str:
    """The dbt beside this Python (a venv's bin/ need not be on PATH).

    ``lbx-dbt`` (lbx_orchestration/dbt_child.py, installed with the package) is dbt that dies with
    the process that started it; plain ``dbt`` is the fallback before the package is installed.
    """
    for name in ("lbx-dbt", "dbt"):
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
    return "dbt"


def data_dir() -> Path:
    return Path(os.environ.get("LBX_DATA_DIR", str(REPO_ROOT / "data")))


def models_dir() -> Path:
    return Path(os.environ.get("LBX_MODELS_DIR", str(data_dir() / "models")))


def inbox_dir() -> Path:
    return Path(os.environ.get("LBX_INBOX_DIR", str(REPO_ROOT / "inbox")))
