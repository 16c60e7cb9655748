"""The member's present in the main list: the share of recent films follows the member."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl

from lbx_orchestration.core.recsys.serving.new_films import with_prior
from lbx_orchestration.core.recsys.serving.present import (
    member_shares,
    merge_frames,
    quota_merge,
    recent_cutoff,
    shares_of,
)


def test_the_recent_share_follows_the_member_and_spreads_down_the_list() -> None:
    cf = list(range(1, 21))  # 20 old films, best first
    content = [101, 102, 103, 104, 105, 106]  # recent films by the content model
    recent = set(content)
    merged = quota_merge(cf, recent, content, share=0.3, n=10)
    ids = [i for i, _ in merged]
    assert len(ids) == 10 and sum(i in recent for i in ids) == 3  # 30% of 10
    assert [i for i in ids if i not in recent] == [1, 2, 3, 4, 5, 6, 7]  # the collaborative order kept
    assert [i for i in ids if i in recent] == [101, 102, 103]
    positions = [k for k, i in enumerate(ids) if i in recent]
    assert positions[0] <= 2 and positions[-1] >= 6  # spread, not bunched at the top or bottom
    assert {s for i, s in merged if i in recent} == {"content"}


def test_a_member_of_the_classics_keeps_the_collaborative_list() -> None:
    assert [i for i, _ in quota_merge([1, 2, 3], {9}, [9], share=0.0, n=3)] == [1, 2, 3]


def test_recent_films_the_collaborative_list_holds_count_and_stock_limits_the_share() -> None:
    merged = quota_merge([1, 50, 2, 3], {50, 60}, [60], share=1.0, n=4)
    assert [i for i, _ in merged] == [1, 50, 2, 60]  # two recent films only: old ones fill the rest
    assert dict(merged)[50] == "collaborative" and dict(merged)[60] == "content"


def test_the_votes_prior_lifts_a_well_known_film_past_an_obscure_one_and_keeps_exclusions() -> None:
    # the model prefers film 0 a little over film 1; film 1 is the most voted, film 0 the least
    scores = np.array([[0.9, 0.8, 0.1, -np.inf], [0.9, 0.8, 0.1, 0.5]])
    fused = with_prior(scores, prior=np.array([4.0, 1.0, 2.0, 3.0]))
    assert fused[0].argmax() == 1 and fused[1].argmax() == 1
    assert np.isneginf(fused[0, 3])  # an excluded film stays out
    # without a real difference in votes the model's order is kept
    same = with_prior(scores[1:], prior=np.ones(4))
    assert list(np.argsort(-same[0])) == [0, 1, 3, 2]


def test_member_shares_read_the_latest_logged_films(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema staging")
    con.execute(
        """create table staging.stg_reviews as select * from (values
        ('letterboxd:a', 1, 'watched', date '2024-01-01'),
        ('letterboxd:a', 2, 'diary', date '2024-02-01'),
        ('letterboxd:a', 3, 'rating', date '2020-01-01'),
        ('letterboxd:a', 4, 'watchlist', date '2024-03-01'),
        ('letterboxd:b', 3, 'watched', date '2024-01-01')
        ) t(user_key, tmdb_id, kind, event_date)"""
    )
    years = pl.DataFrame({"tmdb_id": [1, 2, 3, 4], "year": [2023, 2019, 1990, 2024]})
    assert recent_cutoff(2024) == 2018
    assert member_shares(con, ["letterboxd:a", "letterboxd:b"], years, 2018) == {
        "letterboxd:a": 2 / 3,
        "letterboxd:b": 0,
    }
    assert member_shares(con, ["letterboxd:a"], years, 2018, latest=2) == {"letterboxd:a": 1.0}  # the 2 latest
    con.close()


def test_merge_frames_keeps_members_without_a_share_as_they_were() -> None:
    cf = pl.DataFrame({"user_key": ["u", "u", "v", "v"], "rank": [1, 2, 1, 2], "tmdb_id": [1, 2, 1, 2]})
    cb = pl.DataFrame({"user_key": ["u", "v"], "rank": [1, 1], "tmdb_id": [9, 9]})
    out = merge_frames(cf, cb, {9}, {"u": 0.5}, 2)
    assert out.filter(pl.col("user_key") == "u")["tmdb_id"].to_list() == [1, 9]
    assert out.filter(pl.col("user_key") == "v")["tmdb_id"].to_list() == [1, 2]
    assert out["candidate"].to_list() == ["collaborative", "content", "collaborative", "collaborative"]
    only_new = merge_frames(cf.clear(), cb, {9}, {"u": 0.5, "v": 0.0}, 2)  # a filter only new films pass
    assert only_new.select("user_key", "tmdb_id", "rank").rows() == [("u", 9, 1), ("v", 9, 1)]


def test_shares_of_the_films_at_hand_count_the_latest_logged_only() -> None:
    years = pl.DataFrame({"tmdb_id": [1, 2, 3, 4], "year": [2023, 2019, 1990, 2024]})
    day = dt.datetime(2024, 1, 1)
    logged = pl.DataFrame(
        {
            "user_key": ["a", "a", "a", "a", "b"],
            "tmdb_id": [1, 2, 3, 4, 3],
            "logged": [day, day - dt.timedelta(days=1), day - dt.timedelta(days=2), None, day],
        }
    )
    assert shares_of(logged, years, 2018) == {"a": 2 / 3, "b": 0.0}  # an undated film does not count
    assert shares_of(logged, years, 2018, latest=1) == {"a": 1.0, "b": 0.0}
