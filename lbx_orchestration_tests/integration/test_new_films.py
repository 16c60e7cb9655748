"""tmdb_catalog (offline snapshot, and live discover on 127.0.0.1 with window narrowing), then
content_model and new_for_you on a small warehouse built from the bundled snapshot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import duckdb
import numpy as np
import polars as pl
from dagster_duckdb import DuckDBResource

from lbx_orchestration.core.recsys.serving import new_films
from lbx_orchestration.core.recsys.serving.content_blend import blend_for_member, blend_main_list
from lbx_orchestration.core.recsys.serving.content_serving import ContentContext
from lbx_orchestration.core.recsys.serving.filtered import FilmFilter
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.tmdb.flatten import flatten_many
from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot
from lbx_orchestration.core.warehouse import connect, read_frame, replace_table
from lbx_orchestration.metadata.catalog import TMDB_CATALOG, tmdb_catalog
from lbx_orchestration.models.content import content_model
from lbx_orchestration.resources import LbxSettings, LiveTmdbResource, SnapshotTmdbResource
from lbx_orchestration.serving.new_for_you import NEW_FOR_YOU, new_for_you
from lbx_orchestration_tests.support.recorded_server import RecordedServer, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tmdb"
SECRET = "catalog-key-never-logged"
EVEN_BLEND = ServingPolicy(blend_collaborative_weight=0.5, blend_content_weight=0.5)
RANGE = {"dagster/asset_partition_range_start": "2015-10-01", "dagster/asset_partition_range_end": "2016-01-01"}


def collaborative_list(username: str, films: list[int]) -> pl.DataFrame:
    """A member's main list as the collaborative model would write it (ten films)."""
    return pl.DataFrame(
        {
            "username": username,
            "source": "letterboxd",
            "user_key": f"letterboxd:{username}",
            "rank": list(range(1, len(films) + 1)),
            "tmdb_id": films,
            "title": "x",
            "year": 2005,
            "score": 1.0,
            "reason": "collaborative reason",
            "genres": [["Drama"]] * len(films),
            "decade": "2000s",
            "model": "ease",
            "model_version": "v",
            "generated_at": dt.datetime(2026, 1, 1),
        }
    ).with_columns(pl.col("rank").cast(pl.Int32))


def _resources(db: Path, tmdb, tmp: Path, **settings) -> dict:
    return {
        "duckdb": DuckDBResource(database=str(db)),
        "tmdb": tmdb,
        "settings": LbxSettings(models_dir=str(tmp / "models"), tune_budget=1, **settings),
    }


def test_offline_backfill_of_four_months_in_one_run_then_one_month_rewritten(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    resources = _resources(db, SnapshotTmdbResource(), tmp_path, catalog_min_vote_count=50, catalog_min_rating=6.0)
    result = dg.materialize([tmdb_catalog], resources=resources, instance=dg.DagsterInstance.ephemeral(), tags=RANGE)
    assert result.success
    records = TmdbSnapshot().records.values()
    expected = {
        m: sum(
            1
            for r in records
            if (r.get("release_date") or "").startswith(m)
            and (r.get("vote_count") or 0) >= 50
            and (r.get("vote_average") or 0) >= 6.0
        )
        for m in ("2015-10", "2015-11", "2015-12", "2016-01")
    }
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["films_per_month"].value == expected and sum(expected.values()) > 20
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        f"select strftime(release_month, '%Y-%m'), count(*), min(vote_count), min(vote_average) "
        f"from {TMDB_CATALOG} group by 1 order by 1"
    ).fetchall()
    con.close()
    assert {m: n for m, n, _, _ in rows} == expected
    assert all(v >= 50 and r >= 6.0 for _, _, v, r in rows)
    # a month rewritten with looser floors replaces its rows and leaves the other months alone
    looser = _resources(db, SnapshotTmdbResource(), tmp_path, catalog_min_vote_count=0, catalog_min_rating=0.0)
    again = dg.materialize(
        [tmdb_catalog], resources=looser, instance=dg.DagsterInstance.ephemeral(), partition_key="2015-11-01"
    )
    assert again.success
    con = duckdb.connect(str(db), read_only=True)
    counts = dict(
        con.execute(f"select strftime(release_month, '%Y-%m'), count(*) from {TMDB_CATALOG} group by 1").fetchall()
    )
    con.close()
    assert counts["2015-10"] == expected["2015-10"] and counts["2015-11"] > expected["2015-11"]


class DiscoverServer(RecordedServer):
    """Serves the recorded discover page for any window: a window longer than ``max_days``
    reports 620 pages (over TMDb's cap), a shorter one 2 pages, each page a different film."""

    def __init__(self, routes: dict, max_days: int) -> None:
        super().__init__(routes)
        self.max_days = max_days
        self.windows: list[tuple[str, str, int]] = []
        self.page = json.loads((FIXTURES / "wickedtech-tmdb-api" / "discover-movie.json").read_text())

    def _pick(self, raw_path: str):
        parts = urlsplit(raw_path)
        if parts.path != "/3/discover/movie":
            return super()._pick(raw_path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        start, end = (
            dt.date.fromisoformat(q["primary_release_date.gte"]),
            dt.date.fromisoformat(q["primary_release_date.lte"]),
        )
        page = int(q["page"])
        with self._lock:
            self.windows.append((str(start), str(end), page))
        too_long = (end - start).days + 1 > self.max_days
        film = dict(self.page["results"][page % len(self.page["results"])])
        film["id"] = 550 if start.day == 1 and page == 1 else 900000 + start.day * 10 + page
        body = {
            **self.page,
            "page": page,
            "results": [film],
            "total_pages": 620 if too_long else 2,
            "total_results": 12400 if too_long else 2,
        }
        return parts.path, Response(200, json.dumps(body), content_type="application/json")


def test_live_catalog_narrows_windows_over_500_pages_and_fetches_details_once(tmp_path: Path, caplog) -> None:
    db = tmp_path / "lbx.duckdb"
    details = json.loads((FIXTURES / "jdrouet-tmdb-api" / "movie-details.json").read_text())
    details.update({"release_date": "2016-01-15", "vote_count": 900, "vote_average": 7.0})
    routes = {
        "/3/configuration": Response(
            200, FIXTURES / "c-eg-themoviedbapi" / "configuration__details.json", content_type="application/json"
        ),
        "/3/movie/550": Response(200, json.dumps(details), content_type="application/json"),
        "/3/movie/550/watch/providers": Response(
            200, FIXTURES / "jdrouet-tmdb-api" / "movie-watch-providers.json", content_type="application/json"
        ),
    }
    with DiscoverServer(routes, max_days=10) as server:
        tmdb = LiveTmdbResource(api_key=SECRET, base_url=server.base_url + "/3", rate_limit=200)
        resources = _resources(db, tmdb, tmp_path, catalog_min_vote_count=20, catalog_min_rating=5.0)
        result = dg.materialize(
            [tmdb_catalog], resources=resources, instance=dg.DagsterInstance.ephemeral(), partition_key="2016-01-01"
        )
        assert result.success
        firsts = [(s, e) for s, e, p in server.windows if p == 1]
        # 31 days -> 16 + 15 -> 8 + 8 + 8 + 7: every window of 10 days or less, covering the month once
        assert ("2016-01-01", "2016-01-31") in firsts and ("2016-01-01", "2016-01-16") in firsts
        leaves = sorted({(s, e) for s, e, p in server.windows if p == 2})
        assert all((dt.date.fromisoformat(e) - dt.date.fromisoformat(s)).days < 10 for s, e in leaves)
        covered = sum((dt.date.fromisoformat(e) - dt.date.fromisoformat(s)).days + 1 for s, e in leaves)
        assert covered == 31 and len(leaves) == 4
        assert server.hits("/3/movie/550") == 1
        assert all("vote_count.gte=20" in path for _, path, _ in server.requests if "discover" in path)
        again = dg.materialize(
            [tmdb_catalog], resources=resources, instance=dg.DagsterInstance.ephemeral(), partition_key="2016-01-01"
        )
        assert again.success and server.hits("/3/movie/550") == 1  # details came from the cache
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["discover"].value["2016-01"]["narrowed"] == 3
    assert SECRET not in repr({k: v.value for k, v in meta.items()}) and SECRET not in caplog.text
    con = duckdb.connect(str(db), read_only=True)
    films = con.execute(f"select tmdb_id, title, source_kind from {TMDB_CATALOG}").fetchall()
    con.close()
    # only the film with recorded details is kept: the others' details were 404s (not recorded)
    assert films == [(550, "Fight Club", "live")]


def _small_warehouse(db: Path) -> tuple[list[int], list[int]]:
    """MovieLens-like users over 300 snapshot films up to 2014, plus two Letterboxd members."""
    snap = TmdbSnapshot()
    rich = [
        r
        for r in snap.records.values()
        if (r.get("keywords") or {}).get("keywords")
        and r.get("credits")
        and "2000" <= (r.get("release_date") or "") < "2015"
        and (r.get("vote_count") or 0) > 300
    ]
    rich.sort(key=lambda r: r["id"])
    films = rich[:300]
    ids = [int(r["id"]) for r in films]
    rng = np.random.default_rng(0)
    genre_of = {int(r["id"]): (r.get("genres") or [{"name": "none"}])[0]["name"] for r in films}
    genres = sorted(set(genre_of.values()))
    rows = []
    for u in range(60):
        liked = genres[u % len(genres)]
        pool = [i for i in ids if genre_of[i] == liked] or ids
        picks = set(rng.choice(pool, min(12, len(pool)), replace=False).tolist())
        picks |= set(rng.choice(ids, 6, replace=False).tolist())
        key = f"letterboxd:member{u}" if u < 2 else f"movielens:{u}"
        for i in picks:
            rows.append(
                {
                    "user_key": key,
                    "tmdb_id": int(i),
                    "rating": 4.5 if genre_of[int(i)] == liked else 2.5,
                    "seen": True,
                    "on_watchlist": False,
                    "last_at": dt.datetime(2016, 1, 1) + dt.timedelta(days=len(rows) % 300),
                }
            )
    interactions = pl.DataFrame(rows)
    with connect(db) as con:
        replace_table(con, "features.user_item_interactions", interactions)
        replace_table(con, "metadata.tmdb_movies", flatten_many([snap.movie_details(i) for i in ids]))
    return ids, interactions.filter(pl.col("user_key") == "letterboxd:member0")["tmdb_id"].to_list()


def test_content_model_and_new_for_you_fill_every_member_with_reasons(tmp_path: Path) -> None:
    db = tmp_path / "lbx.duckdb"
    ids, seen = _small_warehouse(db)
    resources = _resources(db, SnapshotTmdbResource(), tmp_path, catalog_min_vote_count=20)
    # a 2015 film the member has on the watchlist must stay out
    catalog = dg.materialize(
        [tmdb_catalog],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": "2015-01-01", "dagster/asset_partition_range_end": "2016-12-01"},
    )
    assert catalog.success
    with connect(db) as con:
        new_ids = [
            r[0] for r in con.execute(f"select tmdb_id from {TMDB_CATALOG} order by vote_count desc limit 3").fetchall()
        ]
        inter = read_frame(con, "select * from features.user_item_interactions")
        extra = pl.DataFrame(
            {
                "user_key": ["letterboxd:member0"] * 2,
                "tmdb_id": new_ids[:2],
                "rating": [None, 4.0],
                "seen": [False, True],
                "on_watchlist": [True, False],
                "last_at": [dt.datetime(2016, 6, 1)] * 2,
            },
            schema=inter.schema,
        )
        replace_table(con, "features.user_item_interactions", pl.concat([inter, extra]))
    result = dg.materialize([content_model, new_for_you], resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["every_member_served"]
    cm = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["content_model"])
    assert cm.materialization.metadata["served_mode"].value in ("lightfm_cb", "lightfm_hybrid", "content")
    card = json.loads(next((tmp_path / "models" / "content").glob("*/card.json")).read_text())
    assert card["blend"] == {"collaborative_weight": 0.8, "content_weight": 0.2, "recent_years": 5}
    # a first fit without tune validates the default mode and the content baseline with their defaults
    # (no search) and serves the winner
    assert "No hyperparameter search" in card["protocol"]
    servable = [e for e in card["evaluations"] if e["model"] in ("lightfm_cb", "content")]
    assert len(servable) == 2 and card["name"] == max(servable, key=lambda e: e["validation_ndcg@10"])["model"]
    assert card["metrics"]["ndcg@10"] == next(e for e in servable if e["model"] == card["name"])["ndcg@10"]
    con = duckdb.connect(str(db), read_only=True)
    recs = read_frame(con, f"select * from {NEW_FOR_YOU}")
    con.close()
    assert set(recs["username"]) == {"member0", "member1"}
    assert recs.group_by("user_key").len()["len"].to_list() == [20, 20]
    mine = recs.filter(pl.col("user_key") == "letterboxd:member0")
    assert not set(mine["tmdb_id"]) & {*seen, *new_ids[:2]}  # seen, watchlisted and rated stay out
    # the catalogue's last 24 months: after the newest release date (in 2016) less 24 months, so a
    # film of late 2014 may be picked, depending on LightFM's threads
    nfy = next(e for e in result.get_asset_materialization_events() if e.asset_key.path == ["new_for_you"])
    after = nfy.materialization.metadata["released_after"].value
    assert after.startswith("2014-")
    assert (recs["release_date"] > after).all(), recs.filter(pl.col("release_date") <= after)
    assert recs["reason"].str.starts_with("like ").mean() > 0.6
    assert (
        recs["reason"]
        .str.contains(
            "same director|shared keywords|shared cast|both about|same series|same genres|a story close to it"
        )
        .mean()
        > 0.6
    )
    assert mine["rank"].to_list() == list(range(1, 21))
    # the main list: the collaborative rows with new films fused in, reasons only where picked
    old = [i for i in ids if i not in set(seen)][:10]
    out = collaborative_list("member0", old)
    with connect(db) as con:
        blended = blend_main_list(con, out, EVEN_BLEND, tmp_path / "models")
    assert blended.columns == out.columns and blended["rank"].to_list() == list(range(1, 11))
    new = blended.filter(~pl.col("tmdb_id").is_in(old))
    assert new.height > 0 and not set(new["tmdb_id"]) & {*seen, *new_ids[:2]}
    assert (new["reason"].str.len_chars() > 0).all() and (new["year"] >= 2012).all()
    assert new["reason"].str.starts_with("like ").mean() >= 0.5
    assert (new["model"] == card["name"]).all()
    kept = blended.filter(pl.col("tmdb_id").is_in(old))
    assert (kept["reason"] == "collaborative reason").all()
    assert kept["tmdb_id"].to_list() == [i for i in old if i in set(kept["tmdb_id"])]  # order kept
    # a filtered list blends only the new films that pass, and fills from them past the community's
    keep = FilmFilter(min_year=2015, excluded_ids=frozenset(new["tmdb_id"][:1]))
    with connect(db) as con:
        context = ContentContext.load(con, tmp_path / "models")
        observed = read_frame(
            con,
            "select tmdb_id, rating, seen, on_watchlist from features.user_item_interactions where user_key = ?",
            [out["user_key"][0]],
        )
    filtered = blend_for_member(out.clear(), out["user_key"][0], observed, EVEN_BLEND, context, keep, 10)
    assert filtered.height > 2 and filtered["rank"].to_list() == list(range(1, filtered.height + 1))
    assert (filtered["year"] >= 2015).all() and (filtered["reason"].str.len_chars() > 0).all()
    assert not set(filtered["tmdb_id"]) & {*seen, *new_ids[:2], new["tmdb_id"][0]}
    # a nightly run on unchanged inputs keeps the model (and still reports its check)
    same = dg.materialize([content_model], resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert same.success and len(list((tmp_path / "models" / "content").glob("*/card.json"))) == 1
    kept = same.get_asset_materialization_events()[0].materialization.metadata
    assert kept["skipped"].value is True and kept["version"].value == card["version"]
    assert [c.check_name for c in same.get_asset_check_evaluations()] == ["beats_content_baselines"]
    # a night with a new rating refits: the chosen mode and hyperparameters, no cold-film protocol
    with connect(db) as con:
        con.execute("update features.user_item_interactions set rating = 5.0 where user_key = 'letterboxd:member1'")
    nightly = dg.materialize(
        [content_model],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"content_model": {"config": {"tune": False}}}},
    )
    assert nightly.success
    assert nightly.get_asset_materialization_events()[0].materialization.metadata["skipped"].value is False
    cards = sorted((tmp_path / "models" / "content").glob("*/card.json"))
    assert len(cards) == 2
    refit = json.loads(cards[-1].read_text())
    assert refit["name"] == card["name"] and refit["protocol"].startswith("Hyperparameters and metrics reused")
    assert refit["blend"] == card["blend"]


def test_a_member_who_came_after_the_content_model_is_folded_in(tmp_path: Path, monkeypatch) -> None:
    # one LightFM thread: with two, Hogwild updates make the fit (and so the overlap asserted
    # below) differ between runs, and this test failed once in five runs on 1 Dec 2026
    monkeypatch.setenv("LBX_THREADS", "1")
    # the fold-in is judged on the model's own order: the votes prior, the same for every member,
    # makes any two lists of this small catalogue alike
    monkeypatch.setattr(new_films, "PRIOR_WEIGHT", 0.0)
    db = tmp_path / "lbx.duckdb"
    ids, seen = _small_warehouse(db)
    resources = _resources(db, SnapshotTmdbResource(), tmp_path, catalog_min_vote_count=20)
    tags = {"dagster/asset_partition_range_start": "2015-01-01", "dagster/asset_partition_range_end": "2016-12-01"}
    assert dg.materialize(
        [tmdb_catalog], resources=resources, instance=dg.DagsterInstance.ephemeral(), tags=tags
    ).success
    assert dg.materialize([content_model], resources=resources, instance=dg.DagsterInstance.ephemeral()).success
    # member0's films again, under a name the content model has never seen
    with connect(db) as con:
        inter = read_frame(con, "select * from features.user_item_interactions")
        newcomer = inter.filter(pl.col("user_key") == "letterboxd:member0").with_columns(
            pl.lit("letterboxd:newcomer").alias("user_key")
        )
        replace_table(con, "features.user_item_interactions", pl.concat([inter, newcomer]))
    result = dg.materialize([new_for_you], resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    with connect(db, read_only=True) as con:
        recs = read_frame(con, f"select * from {NEW_FOR_YOU}")
    assert set(recs["username"]) == {"member0", "member1", "newcomer"}
    theirs = recs.filter(pl.col("username") == "newcomer")
    assert theirs["rank"].to_list() == list(range(1, 21)) and not set(theirs["tmdb_id"]) & set(seen)
    assert theirs["reason"].str.starts_with("like ").mean() > 0.6
    # folded in from the same films, the newcomer's list is close to the trained member0's
    # (closer to member0's than to member1's, who logged other films)
    same = set(recs.filter(pl.col("username") == "member0")["tmdb_id"])
    other = set(recs.filter(pl.col("username") == "member1")["tmdb_id"])
    mine = set(theirs["tmdb_id"])
    assert len(same & mine) > len(other & mine), (len(same & mine), len(other & mine))
    # and the main list blends content films in for the newcomer too
    out = collaborative_list("newcomer", [i for i in ids if i not in set(seen)][:10])
    with connect(db) as con:
        blended = blend_main_list(con, out, EVEN_BLEND, tmp_path / "models")
    assert (blended["model"] != "ease").sum() > 0
