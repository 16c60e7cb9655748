"""The global "Materialize all" of the Dagster UI, against a real dagster-webserver on 127.0.0.1:
the launch the UI computes from the asset graph is accepted (it once answered HTTP 500, "All the
assets at the root of the backfill must have the same PartitionsDefinition")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbx_orchestration.core.settings import REPO_ROOT
from lbx_orchestration_tests.support.web import free_port

ASSET_NODES = """{ assetNodes { assetKey { path } isExecutable dependencyKeys { path }
  partitionDefinition { name description } } }"""
# the UI's LAUNCH_PARTITION_BACKFILL_MUTATION, with the error types it reads
LAUNCH = """mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
  }
}"""
BACKFILL = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status assetSelection { path } } } }"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    log = (home / "webserver.log").open("wb")
    command = [sys.executable, "-m", "dagster_webserver", "-m", "lbx_orchestration.definitions"]
    server = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server is in the same group, ended with it
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.post(url, json={"query": "{ version }"}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=120)
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def ui_materialize_all_params(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """What LaunchAssetExecutionButton + LaunchAssetChoosePartitionsDialog (Dagster 1.13) send for
    every executable asset of several partitionings: an anchored backfill of one partition when
    the selection's partitioned roots share a partitioning, else a backfill of all partitions."""
    keys = {json.dumps(n["assetKey"]["path"]) for n in nodes}
    roots = [n for n in nodes if not any(json.dumps(d["path"]) in keys for d in n["dependencyKeys"])]
    partitioned_roots = [n for n in roots if n["partitionDefinition"]]
    selection = [{"path": n["assetKey"]["path"]} for n in nodes]
    if partitioned_roots:  # the dialog offers that root's partitions; "Latest" picks one
        return {"assetSelection": selection, "partitionNames": ["<latest>"], "fromFailure": False, "tags": []}
    return {"assetSelection": selection, "allPartitions": True, "tags": []}


def test_global_materialize_all_launches_a_backfill(webserver: str) -> None:
    nodes = [n for n in _graphql(webserver, ASSET_NODES)["assetNodes"] if n["isExecutable"]]
    partitionings = {n["partitionDefinition"]["description"] for n in nodes if n["partitionDefinition"]}
    assert len(partitionings) >= 2  # scrape dates and release months: one job cannot hold them all
    params = ui_materialize_all_params(nodes)
    assert params.get("allPartitions") is True, "the UI would anchor on a partitioned root and be refused"

    launched = _graphql(webserver, LAUNCH, {"backfillParams": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = _graphql(webserver, BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
    assert backfill["__typename"] == "PartitionBackfill"
    selected = {tuple(k["path"]) for k in backfill["assetSelection"]}
    assert {("reviews",), ("tmdb_catalog",), ("user_recommendations",), ("new_for_you",)} <= selected


def test_the_catalogue_source_changes_version_with_a_floor() -> None:
    import dagster as dg

    from lbx_orchestration.metadata.catalog import tmdb_catalog_source
    from lbx_orchestration.resources import LbxSettings, SnapshotTmdbResource

    def version(min_votes: int) -> str:
        resources = {"tmdb": SnapshotTmdbResource(), "settings": LbxSettings(catalog_min_vote_count=min_votes)}
        result = dg.materialize([tmdb_catalog_source], resources=resources, instance=dg.DagsterInstance.ephemeral())
        [event] = result.get_asset_materialization_events()
        assert event.materialization.metadata["min_vote_count"].value == min_votes
        return event.materialization.tags["dagster/data_version"]

    assert version(20) == version(20) != version(50)
