"""The inbox: drop a Letterboxd export (zip or folder) into ``inbox/`` and the user is onboarded.

The sensor hashes each new entry, reads it once to learn the username (a bad export is
refused in the log and remembered in the cursor, never retried until its content changes),
adds the user's partition and requests one run per (user, content): the same file dropped
twice has the same run key and runs once.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg

from lbx_orchestration.core.letterboxd.export import ExportError, read_export
from lbx_orchestration.ingest.onboarding import (
    letterboxd_user_import,
    letterboxd_user_recommendations,
)
from lbx_orchestration.partitions import letterboxd_user_partitions
from lbx_orchestration.resources import LetterboxdResource

onboard_letterboxd_user_job = dg.define_asset_job(
    "onboard_letterboxd_user_job",
    selection=dg.AssetSelection.assets(letterboxd_user_import, letterboxd_user_recommendations),
    partitions_def=letterboxd_user_partitions,
    description="Import one user's Letterboxd export and fold them into the served model.",
)


def content_sha256(path: Path) -> str:
    """sha256 of a file's bytes; for a folder, of its files' relative paths and bytes, sorted."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix().encode("utf-8")
        digest.update(len(rel).to_bytes(8, "big") + rel)
        data = file.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def inbox_entries(inbox: Path) -> list[Path]:
    if not inbox.is_dir():
        return []
    return [p for p in sorted(inbox.iterdir())
            if not p.name.startswith(".")
            and (p.is_dir() or (p.is_file() and p.suffix.lower() == ".zip"))]


def _load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        cursor = json.loads(raw) if raw else {}
    except ValueError:
        cursor = {}
    return cursor if isinstance(cursor, dict) else {}


def import_run_config(path: Path) -> dict[str, Any]:
    return {"ops": {letterboxd_user_import.node_def.name: {"config": {"path": str(path)}}}}


@dg.sensor(
    job=onboard_letterboxd_user_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the Letterboxd inbox folder for new exports (.zip or folders).",
)
def letterboxd_inbox_sensor(
    context: dg.SensorEvaluationContext, letterboxd: LetterboxdResource
) -> dg.SensorResult:
    inbox = Path(letterboxd.inbox_dir)
    cursor = _load_cursor(context.cursor)
    seen: dict[str, str] = cursor.get("seen", {})  # sha -> "user:<name>" | "refused: <why>"
    known_users = set(context.instance.get_dynamic_partitions(letterboxd_user_partitions.name))
    new_users: list[str] = []
    requests: list[dg.RunRequest] = []
    refused: list[str] = []
    for path in inbox_entries(inbox):
        try:
            sha = content_sha256(path)
        except OSError as exc:  # vanished or unreadable mid-copy: try again next tick
            context.log.warning(f"inbox: cannot read {path.name} yet ({exc})")
            continue
        if sha in seen:
            continue
        try:
            username = read_export(path).username
        except Exception as exc:  # noqa: BLE001 (one bad file must never stop the sensor)
            expected = isinstance(exc, ExportError | OSError)
            why = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            message = f"refused {path.name}: {why}"
            context.log.warning(f"inbox: {message}")
            seen[sha] = f"refused: {why}"
            refused.append(message)
            continue
        seen[sha] = f"user:{username}"
        if username not in known_users and username not in new_users:
            new_users.append(username)
        requests.append(
            dg.RunRequest(
                run_key=f"{username}:{sha[:16]}",
                partition_key=username,
                run_config=import_run_config(path),
                tags={"lbx/source": "inbox", "lbx/export": path.name,
                      "lbx/export_sha256": sha},
            )
        )
    new_cursor = json.dumps({"seen": seen, "last_refused": refused[-5:] or cursor.get(
        "last_refused", [])}, sort_keys=True)
    skip = None
    if not requests:
        skip = f"refused: {'; '.join(refused)}" if refused else f"no new export in {inbox}"
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=(
            [letterboxd_user_partitions.build_add_request(new_users)] if new_users else []
        ),
        cursor=new_cursor,
        skip_reason=skip,
    )
