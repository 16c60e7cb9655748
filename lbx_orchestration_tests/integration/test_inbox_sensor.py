"""The inbox sensor (real files, a real instance) and the onboarding job it launches."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from lbx_orchestration.core.letterboxd.export import read_export
from lbx_orchestration.core.observations import SEEN_KINDS, export_observations
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration.ingest.inbox import file_sha256, letterboxd_inbox_sensor
from lbx_orchestration.resources import LetterboxdResource
from lbx_orchestration_tests.support.warehouse import Warehouse, materialize
from lbx_orchestration_tests.unit.export_builders import (
    REAL_EXPORTS,
    minimal_files,
    write_zip,
    zip_folder,
)


def _evaluate(instance: dg.DagsterInstance, inbox: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"letterboxd": LetterboxdResource(inbox_dir=str(inbox))},
    )
    return letterboxd_inbox_sensor(context)


def _renamed_export(src: Path, dest: Path, username: str) -> Path:
    """A copy of a real export whose profile.csv names another user."""
    folder = shutil.copytree(src, dest)
    profile = folder / "profile.csv"
    original = read_export(src).username
    text = re.sub(re.escape(original), username, profile.read_text(encoding="utf-8"), count=1, flags=re.IGNORECASE)
    profile.write_text(text, encoding="utf-8")
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
    by_user = {r.tags["lbx/member"]: r for r in first.run_requests}
    assert sorted(by_user) == ["melvincarvalho", "patrickmjones"]
    melvin_sha = hashlib.sha256(melvin_zip.read_bytes()).hexdigest()
    assert by_user["melvincarvalho"].run_key == f"melvincarvalho:{melvin_sha[:16]}"
    assert by_user["patrickmjones"].run_key == f"patrickmjones:{file_sha256(patrick)[:16]}"
    assert by_user["melvincarvalho"].run_config == {
        "ops": {"onboard_member": {"config": {"path": str(melvin_zip), "username": "melvincarvalho"}}}
    }
    assert by_user["melvincarvalho"].tags["lbx/export_sha256"] == melvin_sha
    assert not first.dynamic_partitions_requests  # members are not partitions: Materialize all stays simple
    refused = json.loads(first.cursor)["last_refused"]
    assert refused == [
        "refused broken.zip: watched.csv: unexpected header: expected "
        "'Date,Name,Year,Letterboxd URI', found 'Date,Name,Letterboxd URI'"
    ]

    # the same files again, and the same zip under another name: nothing new
    shutil.copy(melvin_zip, inbox / "melvin again.zip")
    second = _evaluate(instance, inbox, first.cursor)
    assert second.run_requests == []
    assert "no new export" in second.skip_reason.skip_message

    # a lost cursor asks again with the same run keys (the daemon then launches nothing)
    again = _evaluate(instance, inbox, None)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in first.run_requests}

    # a newer export of a known user: a new run key
    newer = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / "newer")
    (newer / "watchlist.csv").write_text("Date,Name,Year,Letterboxd URI\n2021-12-01,Heat,1995,https://boxd.it/2b0k\n")
    zip_folder(newer, inbox / "melvin-2021-12.zip")
    third = _evaluate(instance, inbox, second.cursor)
    [request] = third.run_requests
    assert request.tags["lbx/member"] == "melvincarvalho"
    assert request.run_key != by_user["melvincarvalho"].run_key


def test_username_comes_from_letterboxds_file_name_without_profile(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {k: v for k, v in minimal_files().items() if k != "profile.csv"}
    write_zip(inbox / "letterboxd-Aguitov-2026-11-20-09-41-utc.zip", files)
    write_zip(inbox / "my-export.zip", {**files, "watchlist.csv": "Date,Name,Year,Letterboxd URI\n"})
    result = _evaluate(dg.DagsterInstance.ephemeral(), inbox, None)
    assert [r.tags["lbx/member"] for r in result.run_requests] == ["aguitov"]  # one spelling per member
    [refused] = json.loads(result.cursor)["last_refused"]
    assert refused.startswith("refused my-export.zip: my-export.zip: no username given, no profile.csv")
    assert "letterboxd-<username>-<date>-utc.zip" in refused


def test_missing_inbox_is_created_and_the_skip_says_where(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"
    result = _evaluate(dg.DagsterInstance.ephemeral(), folder, None)
    assert result.run_requests == []
    assert folder.is_dir()
    assert result.skip_reason.skip_message == f"no new export in {folder}"
    assert "LBX_INBOX_DIR" in letterboxd_inbox_sensor.description


@pytest.fixture
def newcomer(tmp_path: Path) -> Path:
    """DavidBlue's export as a user the served model never saw."""
    return _renamed_export(REAL_EXPORTS["extratone"], tmp_path / "inbox" / "newcomer", "newcomer_1")


def _member_rows(db: Path, user_key: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return read_frame(
            con, "select * from serving.user_recommendations where user_key = ? order by rank", [user_key]
        )
    finally:
        con.close()


def test_onboarding_run_folds_the_member_in_and_a_refresh_keeps_them(warehouse_copy: Warehouse, newcomer: Path) -> None:
    from lbx_orchestration.definitions import build_definitions

    instance = dg.DagsterInstance.ephemeral()
    [request] = _evaluate(instance, newcomer.parent, None).run_requests

    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    others_before = con.execute(
        "select count(*), sum(hash(user_key, tmdb_id, rank)) from serving.user_recommendations"
    ).fetchall()[0]
    accepted = con.execute(
        "select model, version from serving.model_metrics where served and accepted order by evaluated_at desc limit 1"
    ).fetchall()[0]
    con.close()

    defs = build_definitions(warehouse_copy.resources())
    job = defs.resolve_job_def("onboard_member_job")

    def run() -> dg.ExecuteInProcessResult:
        return job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)

    result = run()
    assert result.success
    [imported] = result.get_asset_materialization_events()
    assert imported.asset_key == dg.AssetKey("reviews")
    assert imported.materialization.metadata["status"].value == "imported"
    assert imported.partition in instance.get_dynamic_partitions("scrape_dates")
    [observed] = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    meta = observed.asset_observation_data.asset_observation.metadata
    assert meta["rows"].value == 50 and meta["member"].value == "newcomer_1"
    assert meta["model"].value == f"{accepted[0]} {accepted[1]}"
    assert "| rank | title |" in meta["top_10"].value

    recs = _member_rows(warehouse_copy.duckdb_path, "letterboxd:newcomer_1")
    con = duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True)
    export = read_export(newcomer)
    seen_keys = (
        export_observations(export.entries, export.entries["logged_date"].max())
        .filter(pl.col("kind").is_in(list(SEEN_KINDS)))["film_key"]
        .unique()
        .to_list()
    )
    seen_ids = {
        r[0]
        for r in con.execute(
            f"select tmdb_id from metadata.film_resolution where tmdb_id is not null and film_key in "
            f"({', '.join('?' * len(seen_keys))})",
            seen_keys,
        ).fetchall()
    }
    others_after = con.execute(
        "select count(*), sum(hash(user_key, tmdb_id, rank)) from serving.user_recommendations "
        "where user_key <> 'letterboxd:newcomer_1'"
    ).fetchall()[0]
    con.close()
    assert recs["rank"].to_list() == list(range(1, 51))
    assert recs["tmdb_id"].n_unique() == 50
    assert set(recs["tmdb_id"].to_list()).isdisjoint(seen_ids) and len(seen_ids) > 100
    models = set(recs["model"].to_list())  # the served model's films, and recent ones from the content model
    assert accepted[0] in models and models <= {accepted[0], "lightfm_cb", "lightfm_hybrid", "content"}
    assert others_after == others_before  # nobody else's list changed

    # the same request again: the import is unchanged and the list is replaced, not doubled
    second = run()
    assert second.success
    [again] = second.get_asset_materialization_events()
    assert again.materialization.metadata["status"].value == "unchanged"
    assert _member_rows(warehouse_copy.duckdb_path, "letterboxd:newcomer_1").height == 50

    # the finding of issue 10: re-materializing user_recommendations must keep the member
    refresh = materialize(warehouse_copy, selection=["user_recommendations"])
    assert refresh.success
    kept = _member_rows(warehouse_copy.duckdb_path, "letterboxd:newcomer_1")
    assert kept["rank"].to_list() == list(range(1, 51))
    assert set(kept["tmdb_id"].to_list()).isdisjoint(seen_ids)
    [mat] = [e for e in refresh.get_asset_materialization_events() if e.asset_key.path[-1] == "user_recommendations"]
    assert mat.materialization.metadata["members_folded_in"].value == 1
    checks = {c.check_name: c.passed for c in refresh.get_asset_check_evaluations()}
    assert checks == {"no_seen_films": True, "full_lists": True}
