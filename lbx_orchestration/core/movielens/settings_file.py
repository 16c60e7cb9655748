"""`data/settings.toml`: settings lbx remembers for the user, so nothing has to be exported.

A flat TOML file of string values (``movielens_dir = "/path/to/ml-32m"``). Environment
variables still win over it (``LBX_MOVIELENS_DIR`` over ``movielens_dir``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from lbx_orchestration.core import settings


def settings_path() -> Path:
    return settings.settings_file_env() or settings.data_dir() / "settings.toml"


def read_settings(path: Path | None = None) -> dict[str, str]:
    path = path or settings_path()
    if not path.exists():
        return {}
    try:
        parsed = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    return {k: str(v) for k, v in parsed.items() if not isinstance(v, dict | list)}


def write_setting(key: str, value: str, path: Path | None = None) -> Path:
    """Sets one key, keeping the others; written to a temporary file and renamed into place."""
    path = path or settings_path()
    values = read_settings(path)
    values[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    # a JSON string literal is a valid TOML basic string for the paths we store
    text = "# written by lbx; environment variables (LBX_*) override these\n" + "".join(
        f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in sorted(values.items())
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def movielens_dir_setting(default: str) -> str:
    """``LBX_MOVIELENS_DIR``, else ``movielens_dir`` from the settings file, else ``default``."""
    from_env = settings.movielens_dir_env()
    if from_env:
        return from_env
    return read_settings().get("movielens_dir") or default
