"""The nightly cadence: one member logs a film and another's older day is collected again with a
film re-rated, and the night changes their rows and their lists only; no model is refitted. The
weekly cadence leaves no member folded in."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from lbx_orchestration.core.settings import SAMPLE_SCRAPE_DATE
from lbx_orchestration.core.tables import (
    EXPORT_ENTRIES,
    INTERACTIONS,
    MODEL_METRICS,
    RECOMMENDATIONS,
    REVIEWS,
    STG_REVIEWS,
    TMDB_MOVIES,
    TMDB_RAW,
)
from lbx_orchestration.partitions import add_scrape_date
from lbx_orchestration.schedules import NIGHTLY_RUN_CONFIG
from lbx_orchestration_tests.support.warehouse import Warehouse

pytestmark = pytest.mark.slow

MEMBER = "davidblue"
DAY = SAMPLE_SCRAPE_DATE + dt.timedelta(days=1)


def _interactions(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    rows = con.execute(
        f"select user_key, count(*), sum(hash(tmdb_id, rating, seen, on_watchlist, liked)) "
        f"from {INTERACTIONS} group by 1"
    ).fetchall()
    return {key: (n, digest) for key, n, digest in rows}


def _lists(con: duckdb.DuckDBPyConnection) -> dict[str, list[int]]:
    rows = con.execute(f"select username, list(tmdb_id order by rank) from {RECOMMENDATIONS} group by 1").fetchall()
    return dict(rows)


def _log_a_new_rating(con: duckdb.DuckDBPyConnection, film: tuple[int, str, int]) -> None:
    """The member's newer export (everything they had, and the film rated 5★), collected on DAY."""
    entries = con.execute(
        f"select * from {EXPORT_ENTRIES} where username = ? and scrape_date = ?", [MEMBER, SAMPLE_SCRAPE_DATE]
    ).pl()
    template = entries.filter(pl.col("kind") == "rating").head(1)
    new = template.with_columns(
        film_name=pl.lit(film[1]),
        film_year=pl.lit(film[2], dtype=pl.Int32),
        letterboxd_uri=pl.lit("https://boxd.it/lbxnight1"),
        film_key=pl.lit("lbxnight1"),
        rating=pl.lit(5.0),
        logged_date=pl.lit(DAY),
        source_line=pl.lit(int(entries["source_line"].max()) + 1, dtype=pl.Int32),
    )
    night = pl.concat([entries, new]).with_columns(scrape_date=pl.lit(DAY))
    con.register("_night", night.to_arrow())
    con.execute(f"insert into {EXPORT_ENTRIES} by name select * from _night")
    con.unregister("_night")


def _rerate_on_an_older_day(con: duckdb.DuckDBPyConnection, member: str) -> tuple[int, float]:
    """``member``'s favourite film rated ½★ in the rows of the day already collected (a backfill of
    that day, or its second collection): their newest scrape date stays what it was."""
    key = f"letterboxd:{member}"
    [film] = con.execute(
        f"select tmdb_id from {STG_REVIEWS} where user_key = ? and rating is not null and tmdb_id is not null "
        "order by rating desc, tmdb_id limit 1",
        [key],
    ).fetchall()[0]
    # every rated observation of the film (a diary entry and the rating may name it differently)
    con.execute(
        f"update {REVIEWS} set rating = 0.5 where user_key = ? and rating is not null and observation_id in "
        f"(select observation_id from {STG_REVIEWS} where user_key = ? and tmdb_id = ?)",
        [key, key, film],
    )
    return film, 0.5


def test_a_night_changes_only_the_members_whose_rows_changed(warehouse_copy: Warehouse) -> None:
    from lbx_orchestration.definitions import build_definitions

    db = str(warehouse_copy.duckdb_path)
    with duckdb.connect(db) as con:
        interactions, lists = _interactions(con), _lists(con)
        models = con.execute(f"select count(*) from {MODEL_METRICS}").fetchall()[0][0]
        film = con.execute(
            f"select tmdb_id, title, year from {RECOMMENDATIONS} where username = ? and rank = 1", [MEMBER]
        ).fetchall()[0]
        _log_a_new_rating(con, film)
        [second] = [m for m in sorted(lists) if m != MEMBER][:1]
        rerated = _rerate_on_an_older_day(con, second)
        # a catalogue film without its TMDb rows yet: the night adds them and keeps every other row
        tmdb_rows = con.execute(f"select count(*) from {TMDB_MOVIES}").fetchall()[0][0]
        gap = con.execute(f"select min(tmdb_id) from {TMDB_MOVIES}").fetchall()[0][0]
        for table in (TMDB_MOVIES, TMDB_RAW):
            con.execute(f"delete from {table} where tmdb_id = ?", [gap])

    with pytest.MonkeyPatch.context() as env:
        env.setenv("LBX_DUCKDB_PATH", db)
        env.setenv("LBX_WAREHOUSE", db)
        defs = build_definitions()
        job = defs.resolve_job_def("nightly_refresh_job")
        selected = [k.to_user_string() for k in job.asset_layer.selected_asset_keys]
        assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
        instance = dg.DagsterInstance.ephemeral()
        add_scrape_date(instance, str(DAY))
        result = dg.materialize(
            [*assets, *(defs.asset_checks or [])],
            resources=warehouse_copy.resources(),
            partition_key=str(DAY),
            instance=instance,
            selection=selected,
            raise_on_error=False,
            run_config=NIGHTLY_RUN_CONFIG,
        )
    assert result.success
    [tmdb] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "tmdb_movies"]
    meta = {k: getattr(v, "value", v) for k, v in tmdb.materialization.metadata.items()}
    assert meta["only_new"] is True and meta["films_requested"] == 1 and meta["films_kept"] == tmdb_rows - 1
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not {"als_model", "ease_model", "lightfm_model", "content_model", "model_evaluation"} & done
    assert {"reviews", "user_item_interactions", "user_recommendations"} <= done
    [recs] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "user_recommendations"]
    # both members are folded in: one logged a film, the other's row lost a favourite
    assert recs.materialization.metadata["members_changed_since_training"].value == 2

    with duckdb.connect(db, read_only=True) as con:
        after, lists_after = _interactions(con), _lists(con)
        assert con.execute(f"select count(*) from {MODEL_METRICS}").fetchall()[0][0] == models
        assert con.execute(f"select count(*) from {TMDB_MOVIES}").fetchall()[0][0] == tmdb_rows
        assert con.execute(f"select count(*) from {TMDB_RAW} where tmdb_id = ?", [gap]).fetchall()[0][0] == 1
        seen = con.execute(
            f"select rating from {INTERACTIONS} where user_key = ? and tmdb_id = ? and seen",
            [f"letterboxd:{MEMBER}", film[0]],
        ).fetchall()
        second_rating = con.execute(
            f"select rating from {INTERACTIONS} where user_key = ? and tmdb_id = ?",
            [f"letterboxd:{second}", rerated[0]],
        ).fetchall()
    key, other = f"letterboxd:{MEMBER}", f"letterboxd:{second}"
    assert seen == [(5.0,)]
    assert after[key][0] == interactions[key][0] + 1
    assert second_rating == [(rerated[1],)]
    assert after[other][0] == interactions[other][0] and after[other][1] != interactions[other][1]
    changed = {key, other}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in interactions.items() if k not in changed
    }
    assert film[0] not in lists_after[MEMBER] and lists_after[MEMBER] != lists[MEMBER]
    unchanged = {MEMBER, second}
    assert {k: v for k, v in lists_after.items() if k not in unchanged} == {
        k: v for k, v in lists.items() if k not in unchanged
    }


def test_after_a_full_retrain_no_member_is_folded_in_for_new_films(materialized_warehouse: Warehouse) -> None:
    result = materialized_warehouse.result
    [recs] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "user_recommendations"]
    assert recs.materialization.metadata["members_changed_since_training"].value == 0
    assert recs.materialization.metadata["members_folded_in"].value == 0
