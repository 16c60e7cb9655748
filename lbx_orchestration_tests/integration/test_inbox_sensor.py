"""The inbox sensor (real files, a real instance) and the onboarding job it launches."""

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from lbx_orchestration.core.letterboxd.export import read_export
from lbx_orchestration.core.observations import SEEN_KINDS, export_observations
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration.ingest.inbox import content_sha256, letterboxd_inbox_sensor
from lbx_orchestration.resources import LetterboxdResource
from lbx_orchestration_tests.support.warehouse import Warehouse
from lbx_orchestration_tests.unit.export_builders import (
    REAL_EXPORTS,
    minimal_files,
    write_zip,
    zip_folder,
)


def _evaluate(instance: dg.DagsterInstance, inbox: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"letterboxd": LetterboxdResource(inbox_dir=str(inbox))},
    )
    return letterboxd_inbox_sensor(context)


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the daemon does with a result's partition requests."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def _renamed_export(src: Path, dest: Path, username: str) -> Path:
    """A copy of a real export whose profile.csv names another user."""
    folder = shutil.copytree(src, dest)
    profile = folder / "profile.csv"
    original = read_export(src).username
    profile.write_text(profile.read_text(encoding="utf-8").replace(original, username, 1),
                       encoding="utf-8")
    return folder


def test_sensor_requests_one_run_per_export_and_refuses_bad_ones(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    melvin_zip = zip_folder(REAL_EXPORTS["melvincarvalho"], inbox / "melvin.zip")
    patrick = shutil.copytree(REAL_EXPORTS["patrickmjones"], inbox / "patrick_export")
    bad_header = "Date,Name,Letterboxd URI\n"
    write_zip(inbox / "broken.zip", {**minimal_files(), "watched.csv": bad_header})
    (inbox / "notes.txt").write_text("not an export")
    instance = dg.DagsterInstance.ephemeral()

    first = _evaluate(instance, inbox, None)
    by_user = {r.partition_key: r for r in first.run_requests}
    assert sorted(by_user) == ["melvincarvalho", "patrickmjones"]
    melvin_sha = hashlib.sha256(melvin_zip.read_bytes()).hexdigest()
    assert by_user["melvincarvalho"].run_key == f"melvincarvalho:{melvin_sha[:16]}"
    assert by_user["patrickmjones"].run_key == f"patrickmjones:{content_sha256(patrick)[:16]}"
    assert by_user["melvincarvalho"].run_config == {
        "ops": {"letterboxd_user_import": {"config": {"path": str(melvin_zip)}}}}
    assert by_user["melvincarvalho"].tags["lbx/export_sha256"] == melvin_sha
    [add] = first.dynamic_partitions_requests
    assert add.partitions_def_name == "letterboxd_users"
    assert sorted(add.partition_keys) == ["melvincarvalho", "patrickmjones"]
    refused = json.loads(first.cursor)["last_refused"]
    assert refused == ["refused broken.zip: watched.csv: unexpected header: expected "
                       "'Date,Name,Year,Letterboxd URI', found 'Date,Name,Letterboxd URI'"]
    _apply(instance, first)

    # the same files again, and the same zip under another name: nothing new
    shutil.copy(melvin_zip, inbox / "melvin again.zip")
    second = _evaluate(instance, inbox, first.cursor)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []
    assert "no new export" in second.skip_reason.skip_message

    # a lost cursor asks again with the same run keys (the daemon then launches nothing)
    again = _evaluate(instance, inbox, None)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in first.run_requests}
    assert again.dynamic_partitions_requests == []  # the users are known partitions already

    # a newer export of a known user: a new run key, no new partition
    newer = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / "newer")
    (newer / "watchlist.csv").write_text("Date,Name,Year,Letterboxd URI\n"
                                         "2021-12-01,Heat,1995,https://boxd.it/2b0k\n")
    zip_folder(newer, inbox / "melvin-2021-12.zip")
    third = _evaluate(instance, inbox, second.cursor)
    [request] = third.run_requests
    assert request.partition_key == "melvincarvalho"
    assert request.run_key != by_user["melvincarvalho"].run_key
    assert third.dynamic_partitions_requests == []


def test_missing_inbox_skips(tmp_path: Path) -> None:
    result = _evaluate(dg.DagsterInstance.ephemeral(), tmp_path / "nowhere", None)
    assert result.run_requests == []
    assert result.skip_reason.skip_message == f"no new export in {tmp_path / 'nowhere'}"


@pytest.fixture
def newcomer(tmp_path: Path) -> Path:
    """DavidBlue's export as a user the served model never saw."""
    return _renamed_export(REAL_EXPORTS["extratone"], tmp_path / "inbox" / "newcomer", "newcomer_1")


def test_onboarding_run_folds_the_user_in(warehouse_copy: Warehouse, newcomer: Path) -> None:
    from lbx_orchestration.definitions import build_definitions

    instance = dg.DagsterInstance.ephemeral()
    sensor_result = _evaluate(instance, newcomer.parent, None)
    _apply(instance, sensor_result)
    [request] = sensor_result.run_requests
    assert request.partition_key == "newcomer_1"

    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    others_before = con.execute("select count(*), sum(hash(user_key, tmdb_id, rank)) from "
                                "serving.user_recommendations").fetchall()[0]
    accepted = con.execute("select model, version from serving.model_metrics where served and "
                           "accepted order by evaluated_at desc limit 1").fetchall()[0]
    con.close()

    defs = build_definitions(warehouse_copy.resources())
    job = defs.resolve_job_def("onboard_letterboxd_user_job")

    def run() -> dg.ExecuteInProcessResult:
        return job.execute_in_process(run_config=request.run_config, instance=instance,
                                      partition_key=request.partition_key, tags=request.tags)

    result = run()
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["letterboxd_user_import"]["status"].value == "imported"
    recs_meta = meta["letterboxd_user_recommendations"]
    assert recs_meta["rows"].value == 50
    assert (recs_meta["model"].value, recs_meta["model_version"].value) == accepted
    assert recs_meta["fold_in_ms"].value > 0
    assert "| rank | title |" in recs_meta["top_10"].value
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"no_seen_films": True, "full_list": True}

    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    recs = read_frame(con, "select * from serving.user_recommendations "
                           "where user_key = 'letterboxd:newcomer_1' order by rank")
    # the user's seen films, derived here from the export and the resolution table
    export = read_export(newcomer)
    seen_keys = export_observations(export.entries, export.entries["logged_date"].max()).filter(
        pl.col("kind").is_in(list(SEEN_KINDS)))["film_key"].unique().to_list()
    seen_ids = {r[0] for r in con.execute(
        f"select tmdb_id from metadata.film_resolution where tmdb_id is not null and film_key in "
        f"({', '.join('?' * len(seen_keys))})", seen_keys).fetchall()}
    others_after = con.execute(
        "select count(*), sum(hash(user_key, tmdb_id, rank)) from serving.user_recommendations "
        "where user_key <> 'letterboxd:newcomer_1'").fetchall()[0]
    con.close()
    assert recs["rank"].to_list() == list(range(1, 51))
    assert recs["tmdb_id"].n_unique() == 50
    assert set(recs["tmdb_id"].to_list()).isdisjoint(seen_ids) and len(seen_ids) > 100
    assert set(recs["model"].to_list()) == {accepted[0]}
    assert others_after == others_before  # nobody else's list changed

    # the same request again: the import is unchanged and the list is replaced, not doubled
    second = run()
    assert second.success
    statuses = {e.asset_key.to_user_string(): e.materialization.metadata.get("status")
                for e in second.get_asset_materialization_events()}
    assert statuses["letterboxd_user_import"].value == "unchanged"
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    assert con.execute("select count(*) from serving.user_recommendations where user_key = "
                       "'letterboxd:newcomer_1'").fetchall()[0][0] == 50
    con.close()
