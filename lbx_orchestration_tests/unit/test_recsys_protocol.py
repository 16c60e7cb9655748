"""The evaluation protocol end to end on a slice of the bundled MovieLens data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.data import build_interactions
from lbx_orchestration.core.recsys.data.split import temporal_split, validation_split
from lbx_orchestration.core.recsys.evaluation.protocol import (
    DEFAULT_MODELS,
    EvalReport,
    align_item_features,
    read_movielens_ratings,
    run_protocol,
)
from lbx_orchestration.core.recsys.models import SEARCH_SPACES
from lbx_orchestration.core.recsys.models.tune import tune

MOVIELENS = Path(__file__).resolve().parents[2] / "lbx_orchestration/sample_data/movielens"
LIGHTFM_MODULE = "lbx_orchestration.core.recsys.models.lightfm_model"


@pytest.fixture(scope="module")
def movielens_slice() -> pl.DataFrame:
    """The first 150 users (by key) and, to keep EASE and LightFM fast, the 800 films
    they rated most."""
    df = read_movielens_ratings(MOVIELENS)
    users = df["user_key"].unique().sort().head(150)
    df = df.filter(pl.col("user_key").is_in(users.implode()))
    top = df.group_by("tmdb_id").len().sort(["len", "tmdb_id"], descending=[True, False]).head(800)
    return df.filter(pl.col("tmdb_id").is_in(top["tmdb_id"].implode()))


@pytest.fixture(scope="module")
def genre_features() -> tuple[np.ndarray, sp.csr_matrix]:
    movies = pl.read_csv(MOVIELENS / "movies.csv")
    pairs = movies.select("movieId", pl.col("genres").str.split("|")).explode("genres")
    genres = sorted(pairs["genres"].unique().to_list())
    ids = movies["movieId"].to_numpy()
    row_of = {m: i for i, m in enumerate(ids)}
    rows = [row_of[m] for m in pairs["movieId"]]
    cols = [genres.index(g) for g in pairs["genres"]]
    return ids, sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(genres)))


@pytest.fixture(scope="module")
def report(movielens_slice, genre_features) -> EvalReport:
    return run_protocol(movielens_slice, split="temporal", item_features=genre_features)


def test_read_movielens_ratings_maps_columns(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,31,2.5,0\n")
    df = read_movielens_ratings(tmp_path)
    assert df.columns == ["user_key", "tmdb_id", "rating", "ts"]
    assert df.row(0)[:3] == ("movielens:7", 31, 2.5)
    assert str(df["ts"][0]) == "1970-01-01 00:00:00"
    (tmp_path / "bad.csv").write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="is not a MovieLens ratings file"):
        read_movielens_ratings(tmp_path / "bad.csv")


def test_report_has_every_model_with_metrics_in_unit_range(report: EvalReport) -> None:
    assert [row["model"] for row in report.rows] == list(DEFAULT_MODELS)
    assert report.notes == []
    for row in report.rows:
        metrics = {k: v for k, v in row.items() if "@" in k}
        assert {
            "ndcg@10",
            "recall@20",
            "precision@10",
            "map@10",
            "hr@10",
            "coverage@10",
            "pop_share@10",
        } <= set(metrics)
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), row["model"]
        assert row["n_users"] == 150
        assert row["n_users_evaluated"] > 100
        assert row["fit_seconds"] >= 0


def test_report_records_the_tuned_params(report: EvalReport) -> None:
    for row in report.rows:
        grid = SEARCH_SPACES[row["model"]]
        assert row["n_trials"] == len(grid)
        chosen = [c for c in grid if {k: row["params"][k] for k in c} == c]
        assert chosen, f"{row['model']} params {row['params']} are not from its grid"


def test_ease_beats_popularity_on_movielens(report: EvalReport) -> None:
    by_model = {row["model"]: row for row in report.rows}
    assert by_model["ease"]["ndcg@10"] > by_model["popularity"]["ndcg@10"]
    # popularity recommends the same few films to everyone
    assert by_model["popularity"]["coverage@10"] < by_model["ease"]["coverage@10"]


def test_report_renders_markdown_json_and_protocol_text(report: EvalReport) -> None:
    md = report.to_markdown()
    assert md.splitlines()[0].startswith("| model | ndcg@10 | recall@20 |")
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(DEFAULT_MODELS)
    payload = json.loads(report.to_json())
    assert [r["model"] for r in payload["rows"]] == list(DEFAULT_MODELS)
    assert payload["settings"]["split"] == "temporal"
    text = report.protocol_text()
    assert "the latest 20% of their films by timestamp" in text
    assert "relevant when its rating is >= 3.5" in text
    assert "latest 10% of each user's training films" in text


def test_random_split_without_tuning_or_lightfm(movielens_slice, monkeypatch) -> None:
    # An unimportable LightFM module is skipped with a note, not a crash.
    monkeypatch.setitem(sys.modules, LIGHTFM_MODULE, None)
    rep = run_protocol(
        movielens_slice,
        split="random",
        relevance=None,
        models=("popularity", "ease", "lightfm_cf"),
        tune_models=False,
    )
    assert [r["model"] for r in rep.rows] == ["popularity", "ease"]
    from lbx_orchestration.core.recsys.threads import default_threads

    assert rep.rows[1]["params"] == {
        "l2": 250.0,
        "max_items": 10000,
        "num_threads": default_threads(),
        "max_pairs": 2_000_000_000,
        "seed": 42,
    }
    assert rep.rows[1]["n_trials"] == 0
    assert rep.rows[0]["test_frac"] == 0.25
    assert len(rep.notes) == 1
    assert rep.notes[0].startswith("lightfm_cf skipped: the LightFM model is not importable")
    assert "a random 25% of their films" in rep.protocol_text()
    assert "every held-out film is relevant" in rep.protocol_text()


def test_content_models_without_features_are_skipped(movielens_slice) -> None:
    rep = run_protocol(movielens_slice, models=("lightfm_cb",), tune_models=False)
    assert rep.rows == []
    assert rep.notes == ["lightfm_cb skipped: it needs item_features and none were given."]


def test_tune_returns_best_of_the_grid(movielens_slice) -> None:
    train_df, _ = temporal_split(movielens_slice)
    fit_df, val_df = validation_split(train_df)
    best, score, trials = tune("itemknn", build_interactions(fit_df), val_df, budget=3)
    assert len(trials) == 3
    assert score == max(t["score"] for t in trials)
    assert best == next(t["params"] for t in trials if t["score"] == score)
    with pytest.raises(ValueError, match="metric must look like 'ndcg@10'"):
        tune("itemknn", build_interactions(fit_df), val_df, metric="auc")


def test_align_item_features_follows_the_model_item_order() -> None:
    feats = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    aligned = align_item_features(np.array([20, 99, 10]), (np.array([10, 20]), feats))
    assert aligned.toarray().tolist() == [[0.0, 2.0], [0.0, 0.0], [1.0, 0.0]]
