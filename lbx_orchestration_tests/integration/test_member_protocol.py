"""The member protocol on the bundled members, and the recent share of their lists."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path

import duckdb
import polars as pl

from lbx_orchestration.core.member_eval import run_member_protocol, totals
from lbx_orchestration.core.recsys.serving.content_serving import known_films
from lbx_orchestration.core.recsys.serving.present import TOLERANCE, member_shares, recent_cutoff
from lbx_orchestration_tests.support.warehouse import Warehouse


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_member_is_scored_on_the_films_they_went_on_to_rate(warehouse_copy: Warehouse, tmp_path: Path) -> None:
    db = warehouse_copy.duckdb_path
    before = _digest(db)
    report = run_member_protocol(db, tmp_path / "work")
    assert _digest(db) == before  # the protocol works on a copy
    assert {r.member for r in report.results} == {"davidblue", "melvincarvalho", "patrickmjones"}
    con = duckdb.connect(str(db), read_only=True)
    released = dict(known_films(con).select("tmdb_id", "release_date").iter_rows())
    con.close()
    for r in report.results:
        # served as on the day the first hidden film was logged: nothing released later is proposed
        assert r.split is not None and dt.date(2019, 1, 1) < r.split < dt.date(2024, 12, 31)
        for name in ("main", "new_for_you", "recent_popularity"):
            later = [t for t in r.lists[name] if (released.get(t) or "0000") > r.split.isoformat()]
            assert later == [], (r.member, name, later)
        assert len(r.lists["new_for_you"]) == 20
        assert len(r.hidden) == math.ceil(0.2 * r.rated)
        assert len(r.lists["main"]) == len(r.lists["main_fixed_blend"]) == 50
        assert r.hits("main", 50) == len(set(r.lists["main"]) & set(r.hidden))
        share = report.recent_share(r, "main")
        assert share is not None and r.own_recent_share is not None
        assert abs(share - r.own_recent_share) <= TOLERANCE, (r.member, share, r.own_recent_share)
        assert report.recent_share(r, "main_fixed_blend") < r.own_recent_share  # what it was before
    by_list = {t["list"]: t for t in totals(report)}
    assert by_list["main+new"]["hits@50"] >= by_list["popularity"]["hits@50"]
    assert by_list["main"]["largest_share_gap"] <= TOLERANCE


def test_the_served_lists_carry_each_members_share_of_recent_films(materialized_warehouse: Warehouse) -> None:
    con = duckdb.connect(str(materialized_warehouse.duckdb_path), read_only=True)
    try:
        films = known_films(con)
        cutoff = recent_cutoff(films["year"].max())
        lists = con.execute(
            "select user_key, avg((year >= ?)::int) from serving.user_recommendations "
            "where source = 'letterboxd' group by 1",
            [cutoff],
        ).fetchall()
        shares = member_shares(con, [k for k, _ in lists], films.select("tmdb_id", "year"), cutoff)
    finally:
        con.close()
    assert len(lists) == 3
    for key, share in lists:
        assert abs(share - shares[key]) <= TOLERANCE, (key, share, shares[key])
        assert share > 0.2  # every bundled member logs recent films: none gets a canon of old ones only
    assert isinstance(films, pl.DataFrame)
