"""The scale benchmark at its ``tiny`` size, end to end (no TMDb step), and the synthetic data's
promised properties. No timing is asserted: only that every stage was measured."""

from __future__ import annotations

import gzip
import importlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("run"), importlib.import_module("synth")
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture(scope="module")
def tiny_run(bench, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    run, _ = bench
    root = tmp_path_factory.mktemp("bench")
    run.run_size("tiny", root / "work", root / "out", seed=7)
    return json.loads((root / "out" / "tiny.json").read_text()), root


def test_every_stage_is_measured(bench, tiny_run) -> None:
    run, _ = bench
    result, _ = tiny_run
    refresh = result["full_refresh"]
    assert refresh["success"], refresh["failures"]
    assert result["mode"] == "nightly (tune: false)"
    assert set(refresh["stages"]) == set(run.STAGES)
    for name, stage in refresh["stages"].items():
        assert stage["seconds"] > 0, name
        assert stage["peak_mb"] > 0, name
    for alias, model in refresh["models"].items():
        assert model["final_fit_seconds"] >= 0, alias
        assert model["eval_seconds"] > 0, alias
        assert model["ndcg@10"] > 0, alias
    assert refresh["checks"]["user_recommendations.full_lists"] is True
    assert refresh["checks"]["model_evaluation.served_model_gate"] is True
    assert result["data"]["letterboxd_members"] == 2  # lists are written for members only
    assert refresh["recommendation_rows"] == 50 * result["data"]["letterboxd_members"]
    assert result["fold_in"]["users"] == run.FOLD_IN_USERS
    assert result["fold_in"]["median_ms"] > 0
    assert result["fold_in"]["recommendations_per_user_min"] == 50
    assert result["recs_query"]["median_ms"] > 0
    assert result["nightly"]["success"] and result["nightly"]["new_rows"] > 0
    rerun = result["models_rerun"]  # nothing the models read changed: no model is refitted
    assert rerun["success"] and rerun["skipped"] == {f"{m}_model": True for m in run.MODELS}
    assert result["peak_mb"] > 0
    assert {t["target"] for t in result["targets"]} == {t[0] for t in run.TARGETS}


def test_readme_lists_the_size(bench, tiny_run) -> None:
    run, _ = bench
    _, root = tiny_run
    text = run.write_readme(root / "out").read_text()
    assert "| tiny users: s / peak MB |" in text
    assert "| dbt_features |" in text and "| scoring |" in text


def test_synthetic_ratings_have_the_promised_shape(tiny_run) -> None:
    result, root = tiny_run
    ratings = pl.read_csv(root / "work" / "tiny" / "data" / "ratings.csv")
    assert ratings.height == result["data"]["ratings"]
    values = ratings["rating"].to_numpy()
    assert values.min() >= 0.5 and values.max() <= 5.0
    assert np.all(values * 2 == np.round(values * 2))
    assert len(np.unique(values)) >= 8  # the whole half-star scale is used, not a few values
    counts = np.sort(ratings.group_by("movieId").len()["len"].to_numpy())[::-1]
    films = result["data"]["films"]
    counts = np.concatenate([counts, np.zeros(films - counts.size, dtype=counts.dtype)])
    top = counts[: max(1, films // 100)].mean()
    assert top > 5 * max(1.0, float(np.median(counts)))
    per_user = ratings.group_by("userId").len()["len"].to_numpy()
    assert per_user.max() > 2 * np.median(per_user)  # a long tail of heavy raters
    ordered = ratings.with_columns(pl.col("timestamp").diff().over("userId").alias("step"))
    assert ordered["step"].drop_nulls().min() >= 0  # each user's history is in time order


def test_metadata_follows_the_hidden_tastes(bench) -> None:
    _, synth = bench
    community = synth.generate("tiny", 7)
    first_genre = Counter()
    for cluster, record in zip(community.films["cluster"].to_list(), community.film_details, strict=True):
        assert record["credits"]["crew"][0]["job"] == "Director"
        assert record["keywords"]["keywords"] and record["genres"]
        first_genre[(cluster, record["genres"][0]["name"])] += 1
    per_cluster = Counter(community.films["cluster"].to_list())
    for cluster, n in per_cluster.items():
        best = max(c for (k, _), c in first_genre.items() if k == cluster)
        assert best == n  # a cluster's films share their leading genre


def test_generation_is_deterministic_for_the_seed(bench, tiny_run) -> None:
    _, synth = bench
    _, root = tiny_run
    again = synth.generate("tiny", 7)
    written = pl.read_csv(root / "work" / "tiny" / "data" / "ratings.csv")
    assert again.ratings.equals(written)
    with gzip.open(root / "work" / "tiny" / "data" / "tmdb" / "movies.jsonl.gz", "rt") as fh:
        assert [json.loads(line) for line in fh] == again.film_details
    other = synth.generate("tiny", 8)
    assert not other.ratings.equals(again.ratings)


def test_unknown_size_is_refused(bench) -> None:
    _, synth = bench
    with pytest.raises(ValueError, match="unknown size 'huge'; choose from tiny, 200, 1000, 5000, ml32m, ml32m-tenth"):
        synth.spec_for("huge")


def test_the_ml32m_shape_at_a_small_scale(bench) -> None:
    """ml32m's spec (heavy-tailed raters with MovieLens' minimum of 20, long-tailed films, release
    years and ratings up to 2023) generated with fewer raters and films, to check the shape."""
    import dataclasses
    import datetime as dt

    _, synth = bench
    spec = dataclasses.replace(synth.spec_for("ml32m"), name="ml32m-mini", users=400, films=3_000)
    community = synth.generate(spec, 7)
    per_user = community.ratings.group_by("userId").len()["len"].to_numpy()
    assert per_user.min() >= 20 and per_user.max() > 4 * np.median(per_user)
    assert 100 < per_user.mean() < 220
    assert community.films["year"].max() <= 2023
    last = dt.datetime.fromtimestamp(int(community.ratings["timestamp"].max()), dt.UTC)
    assert last < dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    full = synth.spec_for("ml32m")
    assert (full.users, full.films, full.min_ratings) == (200_000, 87_585, 20)
    assert 30e6 < full.users * full.mean_ratings < 34e6


def test_large_size_draw_samples_the_same_weights_as_gumbel_keys(bench) -> None:
    """The ML-32M sizes draw films by taste group then popularity instead of a Gumbel key per
    rater and film: one draw must follow popularity x exp(TASTE_WEIGHT x affinity) exactly."""
    _, synth = bench
    rng = np.random.default_rng(3)
    spec = synth.SizeSpec("t", users=3, films=400, mean_ratings=30.0, zipf=1.0)
    films = synth._films(rng, spec)
    tastes = rng.dirichlet(np.full(synth.TASTES, synth.USER_CONCENTRATION), size=3)
    sampler = synth._GroupSampler(tastes, films)
    draws = 300_000
    for user in range(3):
        picked = sampler.draw(rng, np.full(draws, user))
        logw = np.log(films["weight"]) + synth.TASTE_WEIGHT * (films["mix"] @ tastes[user])
        exact = np.exp(logw - logw.max())
        exact /= exact.sum()
        seen = np.bincount(picked, minlength=spec.films) / draws
        top = np.argsort(-exact)[:20]  # the films that carry the mass
        assert np.abs(seen[top] - exact[top]).max() < 0.01
        assert abs(seen[top].sum() - exact[top].sum()) < 0.01


def test_large_size_draw_gives_every_rater_their_count(bench) -> None:
    _, synth = bench
    rng = np.random.default_rng(5)
    spec = synth.SizeSpec("t", users=300, films=3_000, mean_ratings=80.0, sigma=1.2, min_ratings=20)
    films = synth._films(rng, spec)
    tastes = rng.dirichlet(np.full(synth.TASTES, synth.USER_CONCENTRATION), size=spec.users)
    counts = synth._user_counts(rng, spec)
    counts[:3] = synth.HEAVY_RATER + 50  # heavy raters take the exact path
    users, items = synth._sampled_choices(rng, tastes, counts, films)
    assert np.array_equal(np.bincount(users, minlength=spec.users), counts)
    assert np.unique(users * spec.films + items).size == users.size  # no film twice for a rater
