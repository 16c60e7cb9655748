"""A web upload leaves the same events in the Dagster instance as `lbx import`: the member's rows
in the day's ``reviews`` partition and an observation of ``user_recommendations``."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from lbx_orchestration.core.settings import REPO_ROOT
from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration.web.dagster_events import WEB_UPLOAD, drain
from lbx_orchestration_tests.support.web import SAMPLE_EXPORTS, copy_warehouse, zip_folder


def test_a_web_upload_shows_in_the_dagster_instance(
    materialized_warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    db = copy_warehouse(materialized_warehouse.duckdb_path, tmp_path / "db")
    settings = WebSettings(
        db=db, state_dir=tmp_path / "state", background_refresh=False, settle_seconds=0, warm_imports=False
    )
    export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "export.zip")
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/imports",
            files={"file": ("export.zip", export.read_bytes(), "application/zip")},
            data={"username": "events_tester"},
        )
        assert r.status_code == 200, r.text
    drain()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        reviews = instance.get_latest_materialization_event(dg.AssetKey("reviews")).asset_materialization
        assert reviews.metadata["username"].value == "events_tester"
        assert reviews.metadata["path"].value == WEB_UPLOAD
        assert instance.get_dynamic_partitions("scrape_dates") == [reviews.partition]
        [observed] = instance.fetch_observations(dg.AssetKey("user_recommendations"), limit=5).records
        metadata = observed.asset_observation.metadata
        assert metadata["member"].value == "events_tester" and metadata["rows"].value == 50
