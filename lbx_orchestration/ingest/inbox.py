"""The inbox: drop a Letterboxd export (zip or folder) into the inbox folder and the member is
onboarded: imported, folded into the accepted model, their list written, in one run.

The sensor hashes each new entry, reads it once to learn the username (from profile.csv, or
from the file name Letterboxd gives an export), and requests one run per (member, content): the
same file dropped twice has the same run key and runs once. A bad export is refused in the
log and in the sensor's status, and remembered in the cursor until its content changes.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from lbx_orchestration.core.letterboxd.export import ExportError, read_export
from lbx_orchestration.core.members import onboard
from lbx_orchestration.core.settings import inbox_dir
from lbx_orchestration.ingest.member_events import member_events
from lbx_orchestration.partitions import add_scrape_date
from lbx_orchestration.resources import LbxSettings, LetterboxdResource, TmdbResource


class OnboardConfig(dg.Config):
    path: str = Field(description="The export to import: a .zip or an unpacked folder")
    username: str | None = Field(default=None, description="Letterboxd username (default: from the export)")


@dg.op(pool="duckdb", description="Import one member's export and write their list from the accepted model.")
def onboard_member(
    context: dg.OpExecutionContext,
    config: OnboardConfig,
    duckdb: DuckDBResource,
    tmdb: TmdbResource,
    settings: LbxSettings,
) -> None:
    try:
        done = onboard(
            config.path,
            username=config.username,
            db=Path(duckdb.database),
            tmdb_source=tmdb.source(),
            policy=settings.serving_policy(),
            min_vote_count=settings.min_vote_count,
            models_dir=Path(settings.models_dir),
            on_wait=context.log.info,
        )
    except ExportError as exc:
        raise dg.Failure(description=f"import refused: {exc}") from None
    add_scrape_date(context.instance, done.report.scrape_date.isoformat())
    for event in member_events(done, config.path):
        context.log_event(event)
    if done.recommendations.height == 0:
        raise dg.Failure(
            description=f"{done.report.username} was imported ({done.report.status}) but has no list: {done.note}"
        )


@dg.job(
    description="Onboard one Letterboxd member from their export: import it, fold them into the "
    "accepted model (no retraining) and write their list. The inbox sensor launches it; from the "
    "terminal `lbx import` does the same without Dagster.",
    tags={"lbx/kind": "onboarding"},
)
def onboard_member_job() -> None:
    onboard_member()


def file_sha256(path: Path) -> str:
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
    return [
        p
        for p in sorted(inbox.iterdir())
        if not p.name.startswith(".") and (p.is_dir() or (p.is_file() and p.suffix.lower() == ".zip"))
    ]


def _load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        cursor = json.loads(raw) if raw else {}
    except ValueError:
        cursor = {}
    return cursor if isinstance(cursor, dict) else {}


def onboard_run_config(path: Path, username: str) -> dict[str, Any]:
    return {"ops": {"onboard_member": {"config": {"path": str(path), "username": username}}}}


@dg.sensor(
    job=onboard_member_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Watches the inbox folder ({inbox_dir()}, LBX_INBOX_DIR) every 30 s for new Letterboxd "
    "exports (.zip or folders) and launches onboard_member_job once per new file. Why a tick "
    "skipped (nothing new, or a refused file and why) shows in the tick's status.",
)
def letterboxd_inbox_sensor(context: dg.SensorEvaluationContext, letterboxd: LetterboxdResource) -> dg.SensorResult:
    inbox = Path(letterboxd.inbox_dir)
    inbox.mkdir(parents=True, exist_ok=True)
    cursor = _load_cursor(context.cursor)
    seen: dict[str, str] = cursor.get("seen", {})  # sha -> "user:<name>" | "refused: <why>"
    requests: list[dg.RunRequest] = []
    refused: list[str] = []
    for path in inbox_entries(inbox):
        try:
            sha = file_sha256(path)
        except OSError as exc:  # vanished or unreadable mid-copy: try again next tick
            context.log.warning(f"inbox: cannot read {path.name} yet ({exc})")
            continue
        if sha in seen:
            continue
        try:
            username = read_export(path).username
        except Exception as exc:  # one bad file must never stop the sensor
            expected = isinstance(exc, ExportError | OSError)
            why = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            message = f"refused {path.name}: {why}"
            context.log.warning(f"inbox: {message}")
            seen[sha] = f"refused: {why}"
            refused.append(message)
            continue
        seen[sha] = f"user:{username}"
        requests.append(
            dg.RunRequest(
                run_key=f"{username}:{sha[:16]}",
                run_config=onboard_run_config(path, username),
                tags={"lbx/source": "inbox", "lbx/member": username, "lbx/export": path.name, "lbx/export_sha256": sha},
            )
        )
    new_cursor = json.dumps(
        {"seen": seen, "last_refused": refused[-5:] or cursor.get("last_refused", [])}, sort_keys=True
    )
    skip = None
    if not requests:
        skip = f"refused: {'; '.join(refused)}" if refused else f"no new export in {inbox}"
        context.log.info(f"inbox: {skip}")
    return dg.SensorResult(run_requests=requests, cursor=new_cursor, skip_reason=skip)
