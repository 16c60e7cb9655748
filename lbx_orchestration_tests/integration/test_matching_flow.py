"""Issue 12 end to end: an export with the hard cases is imported, refused films are listed by
`lbx unmatched`, `lbx match` fixes one for good, and a seen film is never recommended."""

import dataclasses
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource

from lbx_orchestration.cli import main
from lbx_orchestration.core.catalog import OVERRIDES
from lbx_orchestration.core.importer import import_export
from lbx_orchestration.core.tables import RESOLUTION
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration_tests.support.warehouse import Warehouse
from lbx_orchestration_tests.unit.export_builders import PROFILE, write_folder

USER = "tester_1"
# (title as Letterboxd writes it, year, rating, the TMDb id it must get; None = must be refused)
CASES = [
    ("Three Colours: Red", 1994, 5.0, 110),  # "Three Colors: Red"
    ("Sunset Boulevard", 1950, 4.5, 599),  # "Sunset Blvd."
    ("Clue", 1985, 4.0, 15196),  # "Clue: The Movie"
    ("The Intouchables", 2011, 5.0, 77338),  # "Intouchables"
    ("Dune", 2021, 4.0, 438631),  # a 2018-2024 film: not the 1984 one any more
    ("Castle in the Sky", 1987, 5.0, None),  # "Laputa: Castle in the Sky" is 1986: partial + off by one
    ("Baby Doll", 1956, 3.5, None),  # only the 2020/2021 films are known: refused
    ("Mom and Dad", 2017, 3.0, None),  # "Mum & Dad" (2008): refused
]
WATCHED_ONLY = [("Little Women", 2019, 331482)]


def export_files(extra_rating: str = "") -> dict[str, str]:
    ratings = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        + "".join(
            f"2021-01-{i + 1:02d},{title},{year},https://boxd.it/t{i},{rating}\n"
            for i, (title, year, rating, _) in enumerate(CASES)
        )
        + extra_rating
    )
    watched = (
        "Date,Name,Year,Letterboxd URI\n"
        + "".join(
            f"2021-01-{i + 1:02d},{title},{year},https://boxd.it/t{i}\n" for i, (title, year, _, _) in enumerate(CASES)
        )
        + "".join(f"2021-02-01,{t},{y},https://boxd.it/w{i}\n" for i, (t, y, _) in enumerate(WATCHED_ONLY))
    )
    return {"profile.csv": PROFILE, "ratings.csv": ratings, "watched.csv": watched}


def resolutions(db: Path) -> dict[str, dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = read_frame(con, f"select * from {RESOLUTION}")
    return {r["film_key"]: r for r in frame.iter_rows(named=True)}


def materialize_film_catalog(db: Path) -> dg.ExecuteInProcessResult:
    from lbx_orchestration.metadata.assets import film_catalog
    from lbx_orchestration.resources import SnapshotTmdbResource

    return dg.materialize(
        [film_catalog],
        resources={"duckdb": DuckDBResource(database=str(db)), "tmdb": SnapshotTmdbResource()},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_import_refuse_list_correct_and_keep_the_correction(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lbx.duckdb"
    export = write_folder(tmp_path / "export", export_files())
    assert main(["import", str(export), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    expected_rated = sum(1 for c in CASES if c[3] is not None)
    assert f"rated films matched to TMDb: {expected_rated} of {len(CASES)}" in out
    watched_total = len(CASES) + len(WATCHED_ONLY)
    assert f"watched films matched to TMDb: {expected_rated + 1} of {watched_total}" in out
    assert f"ratings.csv {expected_rated}/{len(CASES)}" in out and f"lbx unmatched {USER}" in out

    got = resolutions(db)
    for i, (title, year, _, tmdb_id) in enumerate(CASES):
        row = got[f"lb:t{i}"]
        assert row["tmdb_id"] == tmdb_id, (title, year, row)
        if tmdb_id is None:  # refused: kept with its best candidate, confidence and reason
            assert row["method"] == "refused" and row["candidate_id"] is not None and row["reason"]
    assert got["lb:w0"]["tmdb_id"] == WATCHED_ONLY[0][2]
    assert got["lb:t5"]["candidate_id"] == 10515 and "same year" in got["lb:t5"]["reason"]
    assert got["lb:t6"]["candidate_year"] in (2020, 2021)

    assert main(["unmatched", USER, "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    refused = [c[0] for c in CASES if c[3] is None]
    assert f"{USER}: {len(refused)} films unmatched, refused or ambiguous" in listing
    for title in refused:
        assert title in listing
    assert "Mum & Dad (2008)" in listing and "more than one year off" in listing
    assert "#10515" in listing and "Sunset Boulevard" not in listing

    assert main(["match", USER, "Castle in the Sky", "1987", "10515", "--db", str(db)]) == 0
    assert "is now TMDb 10515" in capsys.readouterr().out
    assert (got := resolutions(db))["lb:t5"]["tmdb_id"] == 10515 and got["lb:t5"]["method"] == "override"
    assert main(["unmatched", USER, "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert f"{len(refused) - 1} films unmatched" in listing and "Castle in the Sky" not in listing

    # bad corrections are refused and change nothing
    assert main(["match", USER, "Not In Their Diary", "1999", "10515", "--db", str(db)]) == 1
    assert "no film 'Not In Their Diary' (1999)" in capsys.readouterr().err
    assert main(["match", USER, "Baby Doll", "1956", "999999999", "--db", str(db)]) == 1
    assert "TMDb has no movie 999999999" in capsys.readouterr().err
    assert main(["unmatched", "nobody_here", "--db", str(db)]) == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(f"select username, film_title, film_year, tmdb_id from {OVERRIDES}").fetchall() == [
            (USER, "Castle in the Sky", 1987, 10515)
        ]

    # a re-import (the member rated one more film) keeps the correction ...
    changed = write_folder(tmp_path / "export2", export_files("2021-03-01,Heat,1995,https://boxd.it/h1,4\n"))
    assert main(["import", str(changed), "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith(f"{USER}: updated")
    assert resolutions(db)["lb:t5"]["tmdb_id"] == 10515
    # ... and so does a film_catalog run, which resolves every film again
    result = materialize_film_catalog(db)
    assert result.success
    got = resolutions(db)
    assert (got["lb:t5"]["tmdb_id"], got["lb:t5"]["method"]) == (10515, "override")
    assert got["lb:t6"]["tmdb_id"] is None and got["lb:t6"]["method"] == "refused"
    with duckdb.connect(str(db), read_only=True) as con:
        unresolved = read_frame(con, "select film_key, method, candidate_id, reason from metadata.unresolved_films")
    assert {"lb:t6", "lb:t7"} <= set(unresolved["film_key"]) and "lb:t5" not in set(unresolved["film_key"])
    assert unresolved.filter(pl.col("method") == "refused")["reason"].is_not_null().all()
    check = result.get_asset_check_evaluations()[0]
    rated_matched = expected_rated + 2  # + the corrected Castle in the Sky, + Heat (1995)
    assert check.metadata["rated_resolved_share"].value == pytest.approx(rated_matched / (len(CASES) + 1))
    assert check.metadata["rated_films"].value == len(CASES) + 1


@pytest.mark.slow
def test_a_seen_but_unmatched_film_is_never_recommended(warehouse_copy: Warehouse) -> None:
    from lbx_orchestration.core.members import member_observations
    from lbx_orchestration.core.recsys.models.pipeline import load_trained
    from lbx_orchestration.core.recsys.serving.recommend import (
        fold_in_user,
        load_serving_inputs,
        read_seen_title_keys,
        seen_by_title_count,
    )
    from lbx_orchestration.core.recsys.serving.serve import ServingPolicy

    export = write_folder(warehouse_copy.root / "tester_export", export_files())
    user_key = f"letterboxd:{USER}"
    with duckdb.connect(str(warehouse_copy.duckdb_path)) as con:
        report = import_export(con, export)
        assert report.status == "imported"
        path = con.execute(
            "select path from serving.model_metrics where served and accepted order by evaluated_at desc limit 1"
        ).fetchall()[0][0]
        trained = load_trained(Path(path))
        items = trained.interactions.item_ids
        assert 10515 in set(items.tolist())  # Laputa is a film the model can recommend
        # a list long enough to hold every film: what is not excluded shows up in it
        policy = ServingPolicy(top_n=len(items), candidates=len(items), mmr_lambda=1.0, explain_top=1)
        inputs = load_serving_inputs(con, trained, policy)
        observations = member_observations(con, user_key)
        assert 10515 not in set(observations["tmdb_id"].to_list())  # Castle in the Sky (1987): refused
        recs = fold_in_user(inputs, user_key, observations)
        without_titles = fold_in_user(
            dataclasses.replace(inputs, seen_keys=inputs.seen_keys.clear()), user_key, observations
        )
        assert seen_by_title_count(con, recs) == 0
        assert seen_by_title_count(con, without_titles) > 0
        # onboarding reads nobody else's films and gets the same list
        alone = load_serving_inputs(con, trained, policy, users=[])
        assert alone.interactions.height == 0 and alone.seen_keys.height == 0
        own = fold_in_user(alone, user_key, observations, read_seen_title_keys(con, user_key))
        assert own["tmdb_id"].to_list() == recs["tmdb_id"].to_list()
    recommended = set(recs["tmdb_id"].to_list())
    assert 10515 not in recommended and 10515 in set(without_titles["tmdb_id"].to_list())
    assert recommended.isdisjoint(set(observations.filter(pl.col("seen"))["tmdb_id"].to_list()))


@pytest.mark.slow
def test_a_members_films_read_between_dbt_runs_are_what_dbt_builds(warehouse_copy: Warehouse) -> None:
    from lbx_orchestration.core.member_films import member_keys, member_observations
    from lbx_orchestration.core.tables import INTERACTIONS
    from lbx_orchestration.core.warehouse import read_frame

    with duckdb.connect(str(warehouse_copy.duckdb_path), read_only=True) as con:
        members = member_keys(con)
        assert len(members) >= 3
        for key in members:
            built = read_frame(
                con,
                f"select tmdb_id, rating, seen, on_watchlist from {INTERACTIONS} where user_key = ? order by tmdb_id",
                [key],
            )
            assert built.height > 0 and member_observations(con, key).equals(built)
