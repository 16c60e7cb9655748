"""What keeps the models bounded at MovieLens-32M size: the seeded evaluation sample, LightFM's
interaction budget, memory bounds in the cards, and refits skipped when inputs are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.training_data import inputs_fingerprint
from lbx_orchestration.core.recsys.evaluation.protocol import read_movielens_ratings, run_protocol, sample_users
from lbx_orchestration.core.recsys.models import create_model, load_model
from lbx_orchestration.core.recsys.models.budget import MIN_PER_USER, budget_sample, rater_sample
from lbx_orchestration.core.recsys.models.pipeline import memory_bound
from lbx_orchestration.core.tables import INTERACTIONS, MOVIE_FEATURES
from lbx_orchestration.core.warehouse import read_frame

MOVIELENS = Path(__file__).resolve().parents[2] / "lbx_orchestration/sample_data/movielens"


def test_sample_users_is_seeded_and_whole_users() -> None:
    df = pl.DataFrame({"user_key": [f"u{i % 50}" for i in range(500)], "tmdb_id": list(range(500))})
    a, total = sample_users(df, 10, seed=3)
    b, _ = sample_users(df.reverse(), 10, seed=3)  # row order does not change the draw
    assert total == 50 and a["user_key"].n_unique() == 10
    assert sorted(a["user_key"].unique()) == sorted(b["user_key"].unique())
    assert a.height == 100  # every row of each sampled user
    c, _ = sample_users(df, 10, seed=4)
    assert sorted(c["user_key"].unique()) != sorted(a["user_key"].unique())
    whole, _ = sample_users(df, None, seed=3)
    assert whole.height == 500


def test_protocol_scores_a_sample_and_says_so() -> None:
    df = read_movielens_ratings(MOVIELENS)
    report = run_protocol(df, models=("popularity",), tune_models=False, eval_users=100, seed=42)
    row = report.rows[0]
    assert row["n_users_evaluated"] + row["n_users_no_relevant"] == 100
    settings = report.settings
    assert settings["n_test_users_scored"] == 100 and settings["n_test_users_total"] > 500
    text = report.protocol_text()
    assert f"a fixed sample of 100 of the {settings['n_test_users_total']} users with held-out films" in text
    assert "seed 42" in text
    full = run_protocol(df, models=("popularity",), tune_models=False, eval_users=None)
    assert "Every user with held-out films was scored." in full.protocol_text()


def test_lightfm_budget_keeps_every_user_and_the_bound() -> None:
    rng = np.random.default_rng(0)
    counts = np.concatenate([np.full(200, 3), rng.integers(20, 400, size=800)])
    rows = np.repeat(np.arange(counts.size), counts)
    cols = np.concatenate([rng.choice(2_000, size=c, replace=False) for c in counts])
    train = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(counts.size, 2_000))
    budget = 30_000
    kept = budget_sample(train, budget, seed=1)
    per_user = np.diff(kept.indptr)
    assert per_user.min() >= 1 and (per_user >= np.minimum(np.diff(train.indptr), MIN_PER_USER)).all()
    assert kept.nnz <= budget + counts.size * MIN_PER_USER and kept.nnz < train.nnz / 3
    assert (kept.multiply(train) != kept).nnz == 0  # a subset of the training pairs
    assert (budget_sample(train, budget, seed=1) != kept).nnz == 0  # seeded
    assert budget_sample(train, train.nnz, seed=1) is not None and budget_sample(train, train.nnz, 1).nnz == train.nnz


def test_lightfm_above_its_budget_trains_whole_raters_and_folds_in_the_others(tmp_path) -> None:
    rng = np.random.default_rng(2)
    counts = rng.integers(20, 120, size=400)
    rows = np.repeat(np.arange(counts.size), counts)
    cols = np.concatenate([rng.choice(300, size=c, replace=False) for c in counts])
    train = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(counts.size, 300))
    budget = 8_000
    kept, chosen = rater_sample(train, budget, seed=3, per_rater=50)
    assert kept.nnz <= budget and 0 < chosen.sum() < counts.size
    per_user = np.diff(kept.indptr)
    assert (per_user[chosen] == np.minimum(counts[chosen], 50)).all() and (per_user[~chosen] == 0).all()
    assert (kept.multiply(train) != kept).nnz == 0  # a subset of the training pairs
    model = create_model("lightfm_cf", {"max_interactions": budget, "epochs": 2, "num_threads": 1}, seed=1)
    model.fit(train)
    assert model.trained_interactions <= budget and model.trained_users is not None
    out = np.flatnonzero(~model.trained_users)[:3]
    inside = np.flatnonzero(model.trained_users)[:3]
    scores = model.score_users(np.concatenate([out, inside]), train)
    for i, u in enumerate(out):  # a rater left out is scored as a newcomer with the same films
        assert np.allclose(scores[i], model.fold_in(train[u]), atol=1e-4)
    users, biases = model.user_embeddings, model.user_biases
    assert np.allclose(
        scores[3:], users[inside] @ model.item_repr.T + model.item_bias_repr + biases[inside, None], atol=1e-4
    )
    with pytest.raises(ValueError, match="pass train"):
        model.score_users(out, None)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert np.array_equal(again.trained_users, model.trained_users)
    assert np.allclose(again.score_users(out, train), scores[:3], atol=1e-5)


def test_cards_state_each_models_memory_bound() -> None:
    df = read_movielens_ratings(MOVIELENS)
    data = build_interactions(df)
    knn = create_model("itemknn", {"k": 50}, seed=1)
    text = memory_bound(knn, data)
    assert f"sparse top-50 neighbours per film: at most {50 * data.n_items:,} similarities" in text
    ease = create_model("ease", {"max_items": 5_000}, seed=1)
    assert "5,000 x 5,000 item weights on the 5,000 most-rated films" in memory_bound(ease, data)
    lightfm = create_model("lightfm_hybrid", {"max_interactions": 1_000_000, "epochs": 3}, seed=1)
    assert "at most 1,000,000 interactions per fit" in memory_bound(lightfm, data)
    assert "factors for" in memory_bound(create_model("als", {}, seed=1), data)


def test_inputs_fingerprint_follows_the_interactions(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema features")
    con.execute(
        f"create table {INTERACTIONS} as select 'u' || (i % 7) as user_key, i as tmdb_id, "
        "(i % 10) / 2 + 0.5 as rating, true as seen, timestamp '2020-01-01' + i * interval 1 day "
        "as last_at from range(100) t(i)"
    )
    con.execute(f"create table {MOVIE_FEATURES} as select i as tmdb_id, 'Drama' as genre from range(100) t(i)")
    first = inputs_fingerprint(con)
    assert inputs_fingerprint(con) == first
    with_features = inputs_fingerprint(con, with_features=True)
    assert with_features != first
    con.execute(f"update {MOVIE_FEATURES} set genre = 'Horror' where tmdb_id = 3")
    assert inputs_fingerprint(con) == first and inputs_fingerprint(con, with_features=True) != with_features
    con.execute(f"update {INTERACTIONS} set rating = 5.0 where tmdb_id = 3")
    assert inputs_fingerprint(con) != first
    con.close()


def test_an_unchanged_model_is_not_refitted(tmp_path: Path) -> None:
    from lbx_orchestration.models.assets import _unchanged

    root = tmp_path / "models" / "itemknn"
    version = root / "20261101T000000-abc"
    version.mkdir(parents=True)
    card = {
        "version": "20261101T000000-abc",
        "input_fingerprint": "f1",
        "metrics": {"ndcg@10": 0.25},
        "n_users": 10,
        "n_items": 20,
        "n_interactions": 30,
        "memory_bound": "sparse top-100",
    }
    (version / "card.json").write_text(json.dumps(card))
    (root / "LATEST").write_text(version.name)
    kept = _unchanged(tmp_path / "models", "itemknn", "f1")
    assert kept is not None
    assert kept.metadata["skipped"] is True and kept.metadata["ndcg@10"] == 0.25
    assert kept.metadata["version"] == version.name
    assert _unchanged(tmp_path / "models", "itemknn", "f2") is None
    assert _unchanged(tmp_path / "models", "ease", "f1") is None


def test_movielens_observations_in_sql_match_the_polars_version() -> None:
    import datetime as dt

    from lbx_orchestration.core.observations import (
        REVIEW_SCHEMA,
        movielens_observations,
        movielens_observations_sql,
        movielens_ratings_sql,
        read_movielens,
    )

    day = dt.date(2026, 11, 1)
    ratings, movies = read_movielens(MOVIELENS)
    expected = movielens_observations(ratings, movies, day).sort("observation_id")
    con = duckdb.connect()
    query, params = movielens_ratings_sql(MOVIELENS / "ratings.csv")
    con.execute(f"create table ml_ratings as {query}", params)
    con.register("movies_frame", movies.to_arrow())
    con.execute("create table ml_movies as select * from movies_frame")
    got = read_frame(con, movielens_observations_sql("ml_ratings", "ml_movies"), [day])
    got = got.select(list(REVIEW_SCHEMA)).cast(REVIEW_SCHEMA).sort("observation_id")
    assert got.height == ratings.height == 100_836
    assert got.equals(expected)
    con.close()


def _heavy_tailed(seed: int = 0, users: int = 600, films: int = 1_500) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = np.minimum(films, np.round(rng.lognormal(3.5, 1.1, size=users)).astype(int) + 5)
    rows = np.repeat(np.arange(users), counts)
    cols = np.concatenate([rng.choice(films, size=c, replace=False, p=_zipf(films)) for c in counts])
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(users, films))


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def test_pair_budget_samples_raters_and_caps_heavy_ones(monkeypatch) -> None:
    from lbx_orchestration.core.recsys.models import budget

    train = _heavy_tailed()
    pairs = int((np.diff(train.indptr).astype(np.int64) ** 2).sum())
    same, share = budget.pair_budget_rows(train, pairs, seed=1)
    assert share == 1.0 and (same != train).nnz == 0  # within budget: untouched
    monkeypatch.setattr(budget, "MAX_FILMS_PER_RATER", 100)
    kept, share = budget.pair_budget_rows(train, pairs // 10, seed=1)
    counts = np.diff(kept.indptr)
    assert int((counts.astype(np.int64) ** 2).sum()) <= pairs // 10
    assert counts.max() <= 100 and 0.0 < share < 1.0
    assert share == (counts > 0).sum() / (np.diff(train.indptr) > 0).sum()
    assert (kept.multiply(train) != kept).nnz == 0  # a subset of the training pairs
    again, _ = budget.pair_budget_rows(train, pairs // 10, seed=1)
    assert (again != kept).nnz == 0  # seeded


def test_itemknn_above_the_dense_limit_keeps_neighbours_among_the_most_rated(monkeypatch) -> None:
    from lbx_orchestration.core.recsys.models import itemknn

    train = _heavy_tailed(seed=2)
    dense = create_model("itemknn", {"k": 20}, seed=1).fit(train)
    monkeypatch.setattr(itemknn, "DENSE_LIMIT", 0)  # the sparse, bounded path
    unbounded = create_model("itemknn", {"k": 20, "max_items": train.shape[1]}, seed=1).fit(train)
    assert abs(unbounded.similarity - dense.similarity).max() < 1e-5  # the same neighbours either way
    bounded = create_model("itemknn", {"k": 20, "max_items": 300}, seed=1).fit(train)
    top = np.sort(np.lexsort((np.arange(train.shape[1]), -np.diff(train.tocsc().indptr)))[:300])
    sim = bounded.similarity.tocoo()
    assert set(np.unique(sim.row)) <= set(top) and set(np.unique(sim.col)) <= set(top)
    assert bounded.fitted_items == 300
    text = memory_bound(bounded, build_interactions(_frame(train)))
    assert "among the 300 most-rated films" in text


def _frame(train: sp.csr_matrix) -> pl.DataFrame:
    coo = train.tocoo()
    import datetime as dt

    return pl.DataFrame(
        {
            "user_key": [f"u{r:04d}" for r in coo.row],
            "tmdb_id": coo.col.astype(np.int64),
            "rating": np.full(coo.nnz, 4.0),
            "ts": [dt.datetime(2020, 1, 1) + dt.timedelta(minutes=int(i)) for i in range(coo.nnz)],
        }
    )


def test_the_prepared_split_is_cached_by_fingerprint(tmp_path: Path) -> None:
    from lbx_orchestration.core.recsys.data.prepared import cached_prepare, prepare
    from lbx_orchestration.core.recsys.models.pipeline import train_for_serving

    df = read_movielens_ratings(MOVIELENS)
    reads: list[int] = []

    def read() -> pl.DataFrame:
        reads.append(1)
        return df

    first, hit = cached_prepare(tmp_path, "data-1", read, eval_users=200)
    assert not hit and len(reads) == 1
    again, hit = cached_prepare(tmp_path, "data-1", read, eval_users=200)
    assert hit and len(reads) == 1  # not read again
    assert (again.train.matrix != first.train.matrix).nnz == 0 and (again.full.matrix != first.full.matrix).nnz == 0
    assert list(again.train.user_ids) == list(first.train.user_ids)
    assert again.test.equals(first.test) and again.split_stats == first.split_stats
    # the content model takes its matrices from here: the same as collapsing the frame itself
    own = build_interactions(df)
    assert again.full.ratings is None  # read only when asked for
    again, _ = cached_prepare(tmp_path, "data-1", read, eval_users=200, ratings=True)
    assert again.full.ratings is not None and own.ratings is not None
    assert (again.full.matrix != own.matrix).nnz == 0 and list(again.full.item_ids) == list(own.item_ids)
    same = np.isclose(again.full.ratings.data, own.ratings.data, equal_nan=True)
    assert same.all() and (again.full.ratings.indices == own.ratings.indices).all()
    _, hit = cached_prepare(tmp_path, "data-2", read, eval_users=200)  # a changed input
    assert not hit and len(reads) == 2
    direct = prepare(df, eval_users=200)
    a = train_for_serving("popularity", again, tune=False)
    b = train_for_serving("popularity", direct, tune=False)
    assert a.metrics == b.metrics and a.protocol == b.protocol
    assert f"{df.height} observations were collapsed" in a.protocol
