"""What an onboarding tells Dagster, whether it ran as the inbox job or as `lbx import`: the
scrape date's ``reviews`` partition gained the member's rows, and ``user_recommendations`` has
their list (an observation: the table's other rows did not change)."""

from pathlib import Path

import dagster as dg

from lbx_orchestration.core.members import Onboarded
from lbx_orchestration.core.settings import REPO_ROOT
from lbx_orchestration.core.settings import dagster_home as dagster_home_env
from lbx_orchestration.core.warehouse import markdown_preview
from lbx_orchestration.partitions import add_scrape_date


def member_events(done: Onboarded, path: str) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    report = done.report
    day = report.scrape_date.isoformat()
    events: list[dg.AssetMaterialization | dg.AssetObservation] = [
        dg.AssetMaterialization(
            asset_key="reviews",
            partition=day,
            description=f"{report.username}'s export ({report.status}) added to the scrape date {day}",
            metadata={**report.as_metadata(), "path": path},
        )
    ]
    if done.recommendations.height:
        events.append(
            dg.AssetObservation(
                asset_key="user_recommendations",
                description=f"{report.username} onboarded: {done.recommendations.height} films from {done.model}",
                metadata={
                    "member": report.username,
                    "rows": done.recommendations.height,
                    "model": done.model or "",
                    "seconds": round(done.seconds, 2),
                    "top_10": dg.MetadataValue.md(
                        markdown_preview(done.recommendations.select("rank", "title", "year", "reason"), 10)
                    ),
                },
            )
        )
    return events


def dagster_home() -> Path | None:
    """The instance `make ui` uses: DAGSTER_HOME, else the repo's .dagster/ when it exists."""
    home = Path(dagster_home_env() or REPO_ROOT / ".dagster")
    return home if (home / "dagster.yaml").is_file() else None


def report_to_dagster(done: Onboarded, path: str) -> Path | None:
    """Record a terminal import in the Dagster instance, so the UI shows what `lbx import` did."""
    home = dagster_home()
    if home is None:
        return None
    with dg.DagsterInstance.from_config(str(home)) as instance:
        add_scrape_date(instance, done.report.scrape_date.isoformat())
        for event in member_events(done, path):
            instance.report_runless_asset_event(event)
    return home
