"""The contract every registered model keeps: a new model in MODEL_REGISTRY is tested here
without touching this file (CONTRIBUTING.md, "Add a model")."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Recommender
from lbx_orchestration.core.recsys.models import MODEL_REGISTRY, SEARCH_SPACES, create_model, load_model, model_class

N_USERS, N_ITEMS, N_FEATURES = 60, 40, 12


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(7)
    train = sp.random(N_USERS, N_ITEMS, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    train.data = (1.0 + 4.0 * train.data).astype(np.float32)  # confidence weights in 1..5
    features = sp.random(N_ITEMS, N_FEATURES, density=0.3, format="csr", random_state=rng, dtype=np.float32)
    return train, features


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_a_registered_model_fits_scores_folds_in_and_round_trips(
    name: str, data: tuple[sp.csr_matrix, sp.csr_matrix], tmp_path: Path
) -> None:
    train, features = data
    assert issubclass(model_class(name), Recommender)
    grid = SEARCH_SPACES[name]
    assert grid, f"{name} has an empty search space"
    model = create_model(name, grid[0])
    assert model.name == name
    assert {k: model.params[k] for k in grid[0]} == grid[0]
    with pytest.raises(RuntimeError, match="is not fitted: call fit"):
        model.score_users(np.arange(3), train)
    model.fit(train, item_features=features)
    users = np.arange(0, N_USERS, 5)
    scores = model.score_users(users, train)
    assert scores.shape == (len(users), N_ITEMS)
    folded = model.fold_in(train[3])
    assert folded.shape == (N_ITEMS,)
    model.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["arrays.npz", "model.json"]
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert loaded.params == model.params
    assert np.array_equal(loaded.score_users(users, train), scores)
    assert np.allclose(loaded.fold_in(train[3]), folded)
