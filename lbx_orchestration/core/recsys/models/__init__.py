"""The model registry: every model's name, mapped once to its class.

A model is a file in this folder with a ``Recommender`` subclass (core/recsys/base.py) plus
one line in ``MODEL_REGISTRY``; its search space is the class's ``search_space``. Classes are
imported on first use, so naming a model never imports implicit or LightFM.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbx_orchestration.core.recsys.base import Recommender, read_model_meta
from lbx_orchestration.core.settings import SEED


@dataclass(frozen=True)
class ModelEntry:
    module: str  # a file in this folder
    cls: str  # the Recommender subclass in it
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor arguments this name implies
    needs_item_features: bool = False


MODEL_REGISTRY: dict[str, ModelEntry] = {
    "popularity": ModelEntry("popularity", "PopularityRecommender"),
    "itemknn": ModelEntry("itemknn", "ItemKNNRecommender"),
    "ease": ModelEntry("ease", "EASERecommender"),
    "als": ModelEntry("als", "ALSRecommender"),
    "lightfm_cf": ModelEntry("lightfm_model", "LightFMRecommender", {"mode": "cf"}),
    "lightfm_cb": ModelEntry("lightfm_model", "LightFMRecommender", {"mode": "cb"}, needs_item_features=True),
    "lightfm_hybrid": ModelEntry("lightfm_model", "LightFMRecommender", {"mode": "hybrid"}, needs_item_features=True),
    "content": ModelEntry("content", "ContentRecommender", needs_item_features=True),
}

# Models that need item features to be meaningful.
NEEDS_ITEM_FEATURES = frozenset(name for name, entry in MODEL_REGISTRY.items() if entry.needs_item_features)


def model_class(name: str) -> type[Recommender]:
    if name not in MODEL_REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODEL_REGISTRY)}")
    entry = MODEL_REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{entry.module}"), entry.cls)


class _SearchSpaces(MutableMapping[str, list[dict[str, Any]]]):
    """``SEARCH_SPACES[name]``: the class's ``search_space`` as a list, unless overridden here."""

    def __init__(self) -> None:
        self._overrides: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, name: str) -> list[dict[str, Any]]:
        if name in self._overrides:
            return self._overrides[name]
        if name not in MODEL_REGISTRY:
            raise KeyError(name)
        return [dict(c) for c in model_class(name).search_space]

    def __setitem__(self, name: str, grid: list[dict[str, Any]]) -> None:
        if name not in MODEL_REGISTRY:
            raise KeyError(f"unknown model {name!r}")
        self._overrides[name] = grid

    def __delitem__(self, name: str) -> None:
        del self._overrides[name]

    def __iter__(self) -> Iterator[str]:
        return iter(MODEL_REGISTRY)

    def __len__(self) -> int:
        return len(MODEL_REGISTRY)


SEARCH_SPACES = _SearchSpaces()


def create_model(name: str, params: dict[str, Any] | None = None, seed: int = SEED) -> Recommender:
    """Build registry model ``name`` with ``params``; a model that takes a ``seed`` gets ``seed``."""
    cls = model_class(name)
    kwargs = dict(params or {})
    for key, value in MODEL_REGISTRY[name].fixed.items():
        given = kwargs.pop(key, value)
        if given != value:
            raise ValueError(f"{name} cannot be built with {key}={given!r}")
        kwargs[key] = value
    if "seed" in inspect.signature(cls).parameters:
        kwargs.setdefault("seed", seed)
    return cls(**kwargs)


def load_model(path: Path) -> Recommender:
    """Load any registry model saved with ``.save(path)``."""
    name = read_model_meta(Path(path))["name"]
    if name not in MODEL_REGISTRY:
        raise ValueError(f"{path} holds an unknown model {name!r}")
    return model_class(name).load(Path(path))
