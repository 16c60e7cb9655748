"""The cold-film protocol, the content baseline, and LightFM scoring films unseen in training."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.movielens_items import movielens_item_features, movielens_vote_counts
from lbx_orchestration.core.recsys.data.split import cold_film_split
from lbx_orchestration.core.recsys.evaluation.cold import COLD_SEARCH_SPACES, run_cold_protocol
from lbx_orchestration.core.recsys.models.content import ContentRecommender
from lbx_orchestration.core.recsys.models.lightfm_model import LightFMRecommender

N_GENRES = 4


def genre_world(seed: int = 3, n_users: int = 80, n_films: int = 160) -> tuple[pl.DataFrame, tuple, dict]:
    """Each user rates films of their own genre highly; film popularity is Zipf-like.

    Returns observations, ``(film ids, one-hot genre rows)`` and TMDb-like vote counts."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + n_films, dtype=np.int64)
    genre = rng.integers(0, N_GENRES, n_films)
    weight = 1.0 / np.arange(1, n_films + 1) ** 0.6
    rows = []
    for u in range(n_users):
        liked = u % N_GENRES
        pool = np.flatnonzero(genre == liked)
        picks = rng.choice(pool, 14, replace=False, p=weight[pool] / weight[pool].sum())
        others = rng.choice(np.flatnonzero(genre != liked), 3, replace=False)
        for f in picks:
            rows.append((f"u:{u}", int(ids[f]), 4.5))
        for f in others:
            rows.append((f"u:{u}", int(ids[f]), 2.0))
    start = dt.datetime(2020, 1, 1)
    frame = pl.DataFrame(rows, schema=["user_key", "tmdb_id", "rating"], orient="row").with_columns(ts=pl.lit(start))
    features = sp.csr_matrix(np.eye(N_GENRES, dtype=np.float32)[genre])
    votes = {int(i): float(w * 1000) for i, w in zip(ids, weight, strict=True)}
    return frame, (ids, features), votes


def test_cold_film_split_holds_out_every_interaction_of_a_seeded_fifth_of_the_films() -> None:
    frame, _, _ = genre_world()
    parts = cold_film_split(frame, test_frac=0.2, seed=5)
    films = frame["tmdb_id"].unique()
    cold = set(parts.stats["cold_films"].tolist())
    assert len(cold) == int(np.ceil(films.len() * 0.2))
    assert not cold & set(parts.train["tmdb_id"].to_list())
    assert set(parts.test["tmdb_id"].to_list()) <= cold
    assert parts.train.height + parts.test.height == frame.height  # nothing lost: no user lacks training
    again = cold_film_split(frame, test_frac=0.2, seed=5)
    assert again.stats["cold_films"].tolist() == sorted(cold)
    assert cold_film_split(frame, test_frac=0.2, seed=6).stats["cold_films"].tolist() != sorted(cold)


def test_cold_film_split_drops_users_with_no_training_film() -> None:
    frame = pl.DataFrame(
        {
            "user_key": ["a", "a", "b"],
            "tmdb_id": [1, 2, 3],
            "rating": [4.0, 4.0, 4.0],
            "ts": [dt.datetime(2020, 1, 1)] * 3,
        }
    )
    for seed in range(20):
        parts = cold_film_split(frame, test_frac=0.3, seed=seed)
        if parts.stats["cold_films"].tolist() == [3]:
            assert parts.test.height == 0 and parts.stats["n_test_dropped_no_train"] == 1
            return
    pytest.fail("no seed held out film 3")


def test_content_baseline_ranks_the_members_genre_first_and_survives_save(tmp_path: Path) -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 2, 0]], dtype=np.float32))
    features = sp.csr_matrix(np.array([[1, 0], [1, 0.2], [0, 1], [0.1, 1]], dtype=np.float32))
    model = ContentRecommender().fit(train, features)
    new = sp.csr_matrix(np.array([[0, 1], [1, 0], [0, 0]], dtype=np.float32))
    scores = model.score_new_items(np.array([0, 1]), new, train)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 0
    assert scores[0, 1] == pytest.approx(np.float32(0.9950), abs=1e-3)
    assert scores[:, 2].tolist() == [0.0, 0.0]  # a film without features has no similarity
    model.save(tmp_path / "m")
    loaded = ContentRecommender.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.score_new_items(np.array([0, 1]), new, train), scores)
    np.testing.assert_allclose(loaded.fold_in(train[1]), model.score_users(np.array([1]), train)[0])


def test_lightfm_scores_an_unseen_film_like_a_trained_film_with_the_same_content(tmp_path: Path) -> None:
    frame, (ids, features), _ = genre_world()
    from lbx_orchestration.core.recsys.data.data import build_interactions
    from lbx_orchestration.core.recsys.evaluation.protocol import align_item_features

    inter = build_interactions(frame)
    aligned = align_item_features(inter.item_ids, (ids, features))
    model = LightFMRecommender(mode="cb", no_components=8, epochs=3, num_threads=1).fit(inter.matrix, aligned)
    users = np.arange(5)
    np.testing.assert_allclose(
        model.score_new_items(users, aligned[:7]), model.score_users(users)[:, :7], rtol=1e-4, atol=1e-5
    )
    model.save(tmp_path / "cb")
    loaded = LightFMRecommender.load(tmp_path / "cb")
    np.testing.assert_allclose(loaded.score_new_items(users, aligned[:7]), model.score_new_items(users, aligned[:7]))
    hybrid = LightFMRecommender(mode="hybrid", no_components=8, epochs=3, num_threads=1).fit(inter.matrix, aligned)
    assert hybrid.score_new_items(users, aligned[:7]).shape == (5, 7)
    with pytest.raises(ValueError, match="content features"):
        hybrid.score_new_items(users, sp.csr_matrix((2, N_GENRES + 3)))
    cf = LightFMRecommender(mode="cf", no_components=8, epochs=1, num_threads=1).fit(inter.matrix)
    with pytest.raises(ValueError, match="cannot score unseen films"):
        cf.score_new_items(users, aligned[:2])


def test_cold_protocol_content_models_beat_random_and_report_every_row() -> None:
    frame, features, votes = genre_world()
    report = run_cold_protocol(frame, features, votes, budget=1, seed=1)
    by = {r["model"]: r for r in report.rows}
    # votes rank tmdb_popularity only: serving fits without a vote block, so the models are measured without it
    assert list(by) == ["lightfm_cb", "lightfm_hybrid", "content", "tmdb_popularity", "random"]
    assert not report.settings["vote_bins"]
    assert by["content"]["ndcg@10"] > 2 * by["random"]["ndcg@10"]
    assert by["lightfm_cb"]["ndcg@10"] > by["random"]["ndcg@10"]
    # the served model is the validation winner among the LightFM modes and the content baseline
    servable = [r for r in report.rows if r["model"] in ("lightfm_cb", "lightfm_hybrid", "content")]
    assert report.served == max(servable, key=lambda r: r["validation_ndcg@10"])["model"]
    assert report.choice_text().startswith(f"Served: {report.served}, the winner on validation")
    blocked = run_cold_protocol(frame, features, votes, budget=1, seed=1, vote_block=True)
    assert blocked.settings["vote_bins"] and "content_plain" in {r["model"] for r in blocked.rows}
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in report.rows)
    assert report.settings["split_stats"]["n_cold_films"] == 32
    text = report.to_markdown()
    assert "Cold-film protocol" in text and f"| {report.served} (served) |" in text
    # budget 1 (content_model's first fit without tune): each mode's default, said so
    assert "No hyperparameter search: each model's default configuration" in report.protocol_text()
    first = COLD_SEARCH_SPACES["lightfm_cb"][0]
    assert {k: by["lightfm_cb"]["params"][k] for k in first} == first
    assert "chosen on NDCG@10" in run_cold_protocol(frame, features, votes, budget=2, seed=1).protocol_text()
    untuned = run_cold_protocol(frame, features, votes, models=("lightfm_hybrid", "lightfm_cb"), tune_models=False)
    assert untuned.served == "lightfm_cb"  # no validation: the default mode, whatever its test score
    assert "Without validation the served content model is the default mode, lightfm_cb" in untuned.protocol_text()
    without_votes = run_cold_protocol(frame, features, None, models=("content", "tmdb_popularity"), tune_models=False)
    assert [r["model"] for r in without_votes.rows] == ["content"]
    assert "tmdb_popularity skipped" in without_votes.notes[0]
    with pytest.raises(ValueError, match="no model"):
        run_cold_protocol(frame, features, votes, models=("ease",))


def test_cold_protocol_scores_a_seeded_sample_of_users_when_asked() -> None:
    frame, features, votes = genre_world()
    models = ("content", "tmdb_popularity")
    everyone = run_cold_protocol(frame, features, votes, models=models, tune_models=False)
    total = everyone.settings["n_users_evaluated"]
    sampled = run_cold_protocol(frame, features, votes, models=models, tune_models=False, eval_users=7)
    again = run_cold_protocol(frame, features, votes, models=models, tune_models=False, eval_users=7)
    assert total > 7 and sampled.settings["n_users_evaluated"] == 7
    assert [r["ndcg@10"] for r in sampled.rows] == [r["ndcg@10"] for r in again.rows]  # seeded
    assert all(r["n_users_evaluated"] == 7 for r in sampled.rows)
    assert f"a seeded sample of the {total} users" in sampled.protocol_text()
    assert "seeded sample" not in everyone.protocol_text()


def test_movielens_movies_give_genre_and_year_features(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"Untitled, The",(no genres listed)\n'
        "3,Heat (1995),Action\n"
    )
    (tmp_path / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n3,0113277,949\n2,,\n")
    ids, matrix, names = movielens_item_features(tmp_path / "movies.csv")
    assert ids.tolist() == [1, 2, 3]
    row = dict(zip(names, matrix[0].toarray().ravel(), strict=True))
    assert {k for k, v in row.items() if v} == {"genre_Adventure", "genre_Animation", "decade_1990", "years_1995"}
    assert row["genre_Adventure"] == pytest.approx(0.25)
    assert {names[j] for j in matrix[1].indices} == {"year_unknown"}
    votes = movielens_vote_counts(tmp_path, {862: {"vote_count": 17000}, 949: {}})
    assert votes == {1: 17000.0}
    with pytest.raises(FileNotFoundError, match="movies file not found"):
        movielens_item_features(tmp_path / "nope.csv")


def test_the_fold_cut_from_the_matrices_is_the_frame_split() -> None:
    """ColdFold cuts columns of the full matrices; it must hold out exactly what
    ``cold_film_split`` holds out of the frame, with the same counts and relevant pairs."""
    from lbx_orchestration.core.recsys.data.data import build_interactions
    from lbx_orchestration.core.recsys.evaluation.cold import ColdFold

    frame, features, _ = genre_world(seed=11)
    # a user whose only films may be held out, and a logged (unrated) pair
    extra = pl.DataFrame(
        {"user_key": ["z:1", "u:0"], "tmdb_id": [1000, 1001], "rating": [5.0, None], "ts": [frame["ts"][0]] * 2}
    )
    frame = pl.concat([frame, extra], how="vertical_relaxed").unique(["user_key", "tmdb_id"], keep="first")
    for seed in (1, 2, 3):
        parts = cold_film_split(frame, test_frac=0.2, seed=seed)
        fold = ColdFold.build(build_interactions(frame), features, 0.2, seed, relevance=3.5, eval_users=None)
        assert fold.cold_ids.tolist() == parts.stats["cold_films"].tolist()
        expected = {k: v for k, v in parts.stats.items() if k != "cold_films"}
        assert {k: v for k, v in fold.stats.items() if k != "n_users_with_relevant"} == expected
        train = build_interactions(parts.train)
        assert fold.train.user_ids.tolist() == train.user_ids.tolist()
        assert fold.train.item_ids.tolist() == train.item_ids.tolist()
        assert (fold.train.matrix != train.matrix).nnz == 0
        relevant = {
            (u, f)
            for u, f, r in parts.test.select("user_key", "tmdb_id", "rating").iter_rows()
            if r is not None and r >= 3.5
        }
        coo = fold.relevant.tocoo()
        got = {(fold.train.user_ids[u], int(fold.cold_ids[c])) for u, c in zip(coo.row, coo.col, strict=True)}
        assert got == relevant and len(relevant) > 0


def test_the_content_model_is_measured_then_fitted_on_every_pair_of_the_matrices() -> None:
    from lbx_orchestration.core.recsys.data.data import build_interactions
    from lbx_orchestration.core.recsys.models.content_training import fit_content_model

    frame, (ids, _), votes = genre_world(seed=5)
    genres = ["Drama", "Comedy", "Horror", "Western"]
    rng = np.random.default_rng(0)
    movies = pl.DataFrame(
        {
            "tmdb_id": ids,
            "title": [f"Film {i}" for i in ids],
            "genres": [[genres[g]] for g in rng.integers(0, 4, len(ids))],
            "vote_count": [int(votes[int(i)]) for i in ids],
        }
    )
    trained, space, report = fit_content_model(
        build_interactions(frame), movies, seed=1, relevance=3.5, budget=None, tune=False
    )
    # untuned: the default mode and the content baseline are validated with their defaults, the winner served
    servable = [report.row("lightfm_cb"), report.row("content")]
    assert report.served == max(servable, key=lambda r: r["validation_ndcg@10"])["model"] == trained.name
    assert report.settings["n_observations"] == frame.height == trained.interactions.matrix.nnz
    assert report.settings["split_stats"]["n_train"] < frame.height  # measured without the cold films
    assert trained.metrics["ndcg@10"] == report.row(trained.name)["ndcg@10"]  # the card's figures are the served fit's
    rows = space.transform(movies)
    scores = trained.model.score_new_items(np.arange(3), rows, trained.interactions.matrix)
    assert scores.shape == (3, len(ids)) and np.isfinite(scores).all()
