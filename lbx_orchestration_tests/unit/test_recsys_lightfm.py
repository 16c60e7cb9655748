from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.models import load_model
from lbx_orchestration.core.recsys.models.lightfm_model import LightFMRecommender


@dataclass
class Planted:
    """Users each like one cluster of films; films carry their cluster as a feature."""

    train: sp.csr_matrix
    features: sp.csr_matrix
    cluster: np.ndarray
    cold: np.ndarray  # films nobody interacted with in training
    preference: np.ndarray
    held_out: dict[int, np.ndarray]


def planted(
    seed: int = 7,
    n_users: int = 150,
    n_clusters: int = 5,
    per_cluster: int = 30,
    n_cold: int = 3,
    n_pos: int = 14,
    n_hold: int = 4,
) -> Planted:
    rng = np.random.default_rng(seed)
    n_items = n_clusters * per_cluster
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    cold = np.concatenate([np.flatnonzero(cluster == c)[:n_cold] for c in range(n_clusters)])
    warm = np.setdiff1d(np.arange(n_items), cold)
    preference = rng.integers(0, n_clusters, n_users)
    rows, cols, vals, held_out = [], [], [], {}
    for u in range(n_users):
        pool = warm[cluster[warm] == preference[u]]
        films = rng.choice(pool, n_pos + n_hold, replace=False)
        held_out[u] = films[n_pos:]
        rows += [u] * n_pos
        cols += films[:n_pos].tolist()
        vals += rng.choice([1.0, 2.0], n_pos).tolist()
    train = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    one_hot = sp.csr_matrix(np.eye(n_clusters)[cluster])
    noise = sp.csr_matrix((rng.random((n_items, 4)) < 0.3).astype(np.float32))
    features = sp.hstack([one_hot, noise], format="csr")
    return Planted(train, features, cluster, cold, preference, held_out)


def top_unseen(scores: np.ndarray, train: sp.csr_matrix, k: int = 10) -> np.ndarray:
    masked = np.array(scores, dtype=np.float64, copy=True)
    masked[train.nonzero()] = -np.inf
    return np.argsort(-masked, axis=1, kind="stable")[:, :k]


def recall_at_10(scores: np.ndarray, data: Planted) -> float:
    top = top_unseen(scores, data.train)
    return float(np.mean([len(set(top[u]) & set(h)) / len(h) for u, h in data.held_out.items()]))


SMALL = {"no_components": 16, "epochs": 20, "num_threads": 1}  # one thread: bit-reproducible


@pytest.fixture(scope="module")
def data() -> Planted:
    return planted()


@pytest.fixture(scope="module")
def fitted(data: Planted) -> dict[str, LightFMRecommender]:
    return {
        mode: LightFMRecommender(mode=mode, **SMALL).fit(data.train, data.features) for mode in ("cf", "cb", "hybrid")
    }


@pytest.mark.parametrize("mode", ["cf", "cb", "hybrid"])
def test_each_mode_beats_random_on_held_out_positives(
    data: Planted, fitted: dict[str, LightFMRecommender], mode: str
) -> None:
    model = fitted[mode]
    users = np.arange(data.train.shape[0])
    scores = model.score_users(users, data.train)
    assert scores.shape == data.train.shape
    random_recall = recall_at_10(np.random.default_rng(0).random(scores.shape), data)
    model_recall = recall_at_10(scores, data)
    assert random_recall < 0.15
    assert model_recall > 0.5
    assert model_recall > 4 * random_recall
    assert model.name == f"lightfm_{mode}"


def _cold_hit_rate(model: LightFMRecommender, data: Planted) -> float:
    top = top_unseen(model.score_users(np.arange(data.train.shape[0])), data.train)
    hits = [
        bool(set(top[u]) & set(data.cold[data.cluster[data.cold] == data.preference[u]]))
        for u in range(data.train.shape[0])
    ]
    return float(np.mean(hits))


def test_cb_recommends_cold_films_that_share_features_and_cf_cannot(
    data: Planted, fitted: dict[str, LightFMRecommender]
) -> None:
    assert data.train[:, data.cold].nnz == 0
    assert _cold_hit_rate(fitted["cb"], data) > 0.8
    assert _cold_hit_rate(fitted["cf"], data) < 0.05


def test_fold_in_of_a_training_user_reproduces_most_of_their_top10(
    data: Planted, fitted: dict[str, LightFMRecommender]
) -> None:
    model = fitted["hybrid"]
    trained_top = top_unseen(model.score_users(np.arange(data.train.shape[0])), data.train)
    overlaps = []
    for u in range(data.train.shape[0]):
        folded = model.fold_in(data.train[u])
        assert folded.shape == (data.train.shape[1],)
        folded_top = top_unseen(folded[None, :], data.train[u])[0]
        overlaps.append(len(set(folded_top) & set(trained_top[u])) / 10)
    assert np.mean(overlaps) >= 0.7
    assert np.min(overlaps) >= 0.3


def test_fold_in_of_an_empty_row_ranks_by_item_bias(fitted: dict[str, LightFMRecommender]) -> None:
    model = fitted["cf"]
    assert model.item_bias_repr is not None
    empty = sp.csr_matrix((1, model.item_bias_repr.size), dtype=np.float32)
    scores = model.fold_in(empty)
    assert np.array_equal(np.argsort(-scores, kind="stable"), np.argsort(-model.item_bias_repr, kind="stable"))


def test_fold_in_rejects_a_row_of_the_wrong_width(fitted: dict[str, LightFMRecommender]) -> None:
    with pytest.raises(ValueError, match=r"user_row must have shape \(1, 150\), got \(1, 3\)"):
        fitted["cf"].fold_in(sp.csr_matrix(np.ones((1, 3))))


def test_same_seed_single_thread_gives_identical_scores(data: Planted) -> None:
    runs = [LightFMRecommender(mode="hybrid", seed=3, **SMALL).fit(data.train, data.features) for _ in range(2)]
    users = np.arange(data.train.shape[0])
    assert np.array_equal(runs[0].score_users(users), runs[1].score_users(users))
    other = LightFMRecommender(mode="hybrid", seed=4, **SMALL).fit(data.train, data.features)
    assert not np.array_equal(runs[0].score_users(users), other.score_users(users))


def test_save_load_round_trip_gives_identical_scores(
    tmp_path: Path, data: Planted, fitted: dict[str, LightFMRecommender]
) -> None:
    model = fitted["hybrid"]
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["arrays.npz", "model.json"]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["name"] == "lightfm_hybrid"
    loaded = LightFMRecommender.load(tmp_path / "m")
    users = np.arange(data.train.shape[0])
    assert loaded.name == "lightfm_hybrid"
    assert loaded.params == model.params
    assert loaded.feature_shape == (150, 150 + data.features.shape[1])
    assert np.array_equal(loaded.score_users(users), model.score_users(users))
    assert np.array_equal(loaded.fold_in(data.train[5]), model.fold_in(data.train[5]))


def test_a_model_saved_in_the_old_lightfm_format_still_loads(
    tmp_path: Path, data: Planted, fitted: dict[str, LightFMRecommender]
) -> None:
    """Before the shared format LightFM wrote params.json (class, params, feature_shape)."""
    model = fitted["cb"]
    old = tmp_path / "old"
    old.mkdir()
    np.savez(old / "arrays.npz", **{k: getattr(model, k) for k in LightFMRecommender.state})
    (old / "params.json").write_text(
        json.dumps({"class": "LightFMRecommender", "params": model.params, "feature_shape": list(model.feature_shape)})
    )
    loaded = load_model(old)
    assert loaded.name == "lightfm_cb"
    assert loaded.feature_shape == model.feature_shape
    users = np.arange(data.train.shape[0])
    assert np.array_equal(loaded.score_users(users), model.score_users(users))


def test_load_of_a_missing_model_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.json is missing"):
        LightFMRecommender.load(tmp_path)


def test_hybrid_feature_rows_weight_identity_and_content() -> None:
    content = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    model = LightFMRecommender(mode="hybrid", cf_weight=1.0, cb_weight=0.5)
    rows = model.build_item_features(2, content).toarray()
    # film 0: identity 1 and content share 0.5 split over its two features, then sum to 1
    np.testing.assert_allclose(rows[0], np.array([1.0, 0, 0.25, 0.25, 0]) / 1.5, rtol=1e-6)
    # film 1 has no content: pure identity
    np.testing.assert_allclose(rows[1], [0, 1.0, 0, 0, 0])
    cf_rows = LightFMRecommender(mode="cf").build_item_features(2, content)
    assert (cf_rows != sp.identity(2)).nnz == 0
    cb_rows = LightFMRecommender(mode="cb").build_item_features(2, content).toarray()
    np.testing.assert_allclose(cb_rows, [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])


def test_bad_input_is_refused_with_the_cause(data: Planted) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        LightFMRecommender(mode="content")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode 'cb' needs item_features"):
        LightFMRecommender(mode="cb").fit(data.train)
    with pytest.raises(ValueError, match="item_features has 2 rows but train has 150 items"):
        LightFMRecommender(mode="hybrid").fit(data.train, sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="train values must be finite confidence weights"):
        LightFMRecommender(mode="cf").fit(sp.csr_matrix(np.array([[1.0, -1.0]])))
    with pytest.raises(RuntimeError, match="LightFMRecommender is not fitted"):
        LightFMRecommender(mode="cf").score_users(np.array([0]))
