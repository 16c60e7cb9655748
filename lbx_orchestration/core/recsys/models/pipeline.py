"""Train a model for serving: measure it with the protocol, refit it on everything, save a card.

A saved model is a folder ``<models_dir>/<name>/<version>/`` holding the model's own files,
``index.npz`` (the user keys and TMDb ids of its rows and columns) and ``card.json`` (name,
version, chosen hyperparameters, held-out metrics and the protocol that produced them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions, Recommender, read_arrays
from lbx_orchestration.core.recsys.data.prepared import Prepared, prepare
from lbx_orchestration.core.recsys.evaluation.protocol import align_item_features, run_protocol
from lbx_orchestration.core.recsys.models import create_model, load_model
from lbx_orchestration.core.settings import RELEVANCE, SEED

CARD_FILE = "card.json"
INDEX_FILE = "index.npz"
LATEST_FILE = "LATEST"


@dataclass
class TrainedModel:
    name: str
    version: str
    model: Recommender
    interactions: Interactions
    params: dict[str, Any]
    metrics: dict[str, float]
    protocol: str
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    fit_seconds: float = 0.0
    path: Path | None = None
    #: what the warehouse inputs hashed to when this was fitted: an unchanged input skips the refit
    input_fingerprint: str | None = None

    def card(self) -> dict[str, Any]:
        return {
            "memory_bound": memory_bound(self.model, self.interactions),
            "input_fingerprint": self.input_fingerprint,
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "metrics": self.metrics,
            "protocol": self.protocol,
            "evaluations": self.evaluations,
            "fit_seconds": self.fit_seconds,
            "n_users": self.interactions.n_users,
            "n_items": self.interactions.n_items,
            "n_interactions": int(self.interactions.matrix.nnz),
        }


def memory_bound(model: Recommender, interactions: Interactions) -> str:
    """How this model bounds its memory at any community size, in words and numbers for the card."""
    p = getattr(model, "params", {})
    n_users, n_items, nnz = interactions.n_users, interactions.n_items, int(interactions.matrix.nnz)
    name = getattr(model, "name", "")
    share = getattr(model, "rater_share", 1.0)
    sampled = (
        f"; co-occurrences from a seeded {share:.0%} of raters (at most {p['max_pairs']:,} pair updates, "
        "each rater capped at 1,000 films)"
        if share < 1.0
        else ""
    )
    if name == "itemknn":
        from lbx_orchestration.core.recsys.models.itemknn import BLOCK_FLOATS

        k = min(p["k"], max(n_items - 1, 1))
        fitted = getattr(model, "fitted_items", 0) or n_items
        among = (
            f" among the {fitted:,} most-rated films (cap {p.get('max_items', fitted):,} above "
            "100M users x films; the others get none)"
            if fitted < n_items
            else ""
        )
        return (
            f"sparse top-{k} neighbours per film{among}: at most {k * n_items:,} similarities "
            f"({k * n_items * 8 / 1e6:,.0f} MB as float32 values + int32 indices); the similarity "
            f"is computed in row blocks of {BLOCK_FLOATS:,} floats ({BLOCK_FLOATS * 4 / 1e6:,.0f} MB), "
            f"never as a dense films x films matrix{sampled}"
        )
    if name == "ease":
        m = min(n_items, p["max_items"])
        return (
            f"dense {m:,} x {m:,} item weights on the {m:,} most-rated films (cap {p['max_items']:,} "
            f"of {n_items:,}): {m * m * 4 / 1e9:,.2f} GB as float32, about twice that while inverting{sampled}"
        )
    if name == "als":
        f = p["factors"]
        trained = getattr(model, "trained_interactions", 0) or nnz
        return (
            f"{f} factors for {n_users:,} users and {n_items:,} films: "
            f"{(n_users + n_items) * f * 4 / 1e6:,.0f} MB of float32 factors; budget: at most "
            f"{p.get('max_interactions', nnz):,} interactions per fit (a seeded sample; each user keeps at "
            f"least 5), trained on {trained:,} of {nnz:,}"
        )
    if name.startswith("lightfm"):
        trained = getattr(model, "trained_interactions", 0) or nnz
        return (
            f"budget: at most {p['max_interactions']:,} interactions per fit (whole raters in a seeded "
            "order, each capped at 1,000 films; raters left out are folded in from their films when "
            f"scored), trained on {trained:,} of {nnz:,} for {p['epochs']} epochs; "
            f"{p['no_components']} components for {n_users:,} users and every item feature"
        )
    if name == "popularity":
        return f"one count per film: {n_items:,} floats"
    return "not stated"


def _fingerprint(full: Interactions, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(str((full.matrix.nnz, full.n_users, full.n_items)).encode())
    digest.update(str((int(full.item_ids.sum()), float(full.matrix.data.sum(dtype=np.float64)))).encode())
    return digest.hexdigest()[:8]


def _headline(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if "@" in k and isinstance(v, int | float)}


def train_for_serving(
    name: str,
    observations: pl.DataFrame | Prepared,
    item_features: tuple[np.ndarray, sp.csr_matrix] | None = None,
    *,
    evaluate_also: tuple[str, ...] = (),
    split: str = "temporal",
    test_frac: float | None = None,
    relevance: float | None = RELEVANCE,
    seed: int = SEED,
    tune: bool = True,
    budget: int | None = None,
    params_override: dict[str, Any] | None = None,
    input_fingerprint: str | None = None,
) -> TrainedModel:
    """Evaluate ``name`` (and ``evaluate_also``, e.g. ablations) with the protocol, then refit
    ``name`` with its tuned (or ``params_override``) hyperparameters on every observation.
    ``observations`` may be a ``Prepared`` split shared with other models."""
    models = (name, *[m for m in evaluate_also if m != name])
    if isinstance(observations, Prepared):
        prepared = observations
    else:
        prepared = prepare(observations, split=split, test_frac=test_frac, seed=seed)
    report = run_protocol(
        prepared,
        relevance=relevance,
        models=models if not params_override else (name,),
        item_features=item_features,
        seed=seed,
        tune_models=tune and not params_override,
        budget=budget,
        fixed_params={name: params_override} if params_override else None,
    )
    rows = {r["model"]: r for r in report.rows}
    if name not in rows:
        raise RuntimeError(f"{name} could not be evaluated: {'; '.join(report.notes) or 'no result'}")
    params = {k: v for k, v in rows[name]["params"].items() if k not in ("seed", "num_threads")}
    full = prepared.full
    features = align_item_features(full.item_ids, item_features) if item_features else None
    model = create_model(name, params, seed=seed)
    started = time.perf_counter()
    model.fit(full.matrix, item_features=features)
    fit_seconds = time.perf_counter() - started
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return TrainedModel(
        name=name,
        version=f"{stamp}-{_fingerprint(full, params)}",
        model=model,
        interactions=full,
        params=dict(model.params),
        metrics=_headline(rows[name]),
        protocol=report.protocol_text(),
        evaluations=[{"model": r["model"], **_headline(r), "params": r["params"]} for r in report.rows],
        fit_seconds=fit_seconds,
        input_fingerprint=input_fingerprint,
    )


def save_trained(
    trained: TrainedModel,
    models_dir: Path,
    alias: str | None = None,
    protect: set[Path] | frozenset[Path] = frozenset(),
) -> Path:
    """Write the model folder, then point ``<alias or name>/LATEST`` at it (atomically). Old
    versions are pruned, except those in ``protect`` (the served model and the champion)."""
    root = Path(models_dir) / (alias or trained.name)
    path = root / trained.version
    trained.model.save(path / "model")
    np.savez(
        path / INDEX_FILE, user_ids=trained.interactions.user_ids.astype(str), item_ids=trained.interactions.item_ids
    )
    # uncompressed: every onboarding loads it, and inflating 32M ratings took a second of the ten
    sp.save_npz(path / "train.npz", trained.interactions.matrix.tocsr(), compressed=False)
    (path / CARD_FILE).write_text(json.dumps(trained.card(), indent=2, default=str))
    tmp = root / (LATEST_FILE + ".tmp")
    tmp.write_text(trained.version)
    os.replace(tmp, root / LATEST_FILE)
    trained.path = path
    prune_versions(root, keep=KEEP_VERSIONS, protect=protect)
    return path


KEEP_VERSIONS = 3


def prune_versions(
    root: Path, keep: int = KEEP_VERSIONS, protect: set[Path] | frozenset[Path] = frozenset()
) -> list[Path]:
    """Delete all but the ``keep`` newest versions (names start with a UTC timestamp) and the
    ``protect``ed ones; EASE's dense weights are hundreds of MB, so old versions must not pile up."""
    versions = sorted((p for p in root.iterdir() if p.is_dir() and (p / CARD_FILE).exists()), key=lambda p: p.name)
    kept = {Path(p).resolve() for p in protect}
    removed = [p for p in (versions[:-keep] if keep > 0 else versions) if p.resolve() not in kept]
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    return removed


def latest_path(models_dir: Path, alias: str) -> Path:
    root = Path(models_dir) / alias
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        raise FileNotFoundError(f"no trained {alias} model under {root}: materialize {alias}_model first")
    return root / pointer.read_text().strip()


class ModelFileError(RuntimeError):
    """A saved model's file is missing or damaged; the message names the file."""


@contextmanager
def _reading(file: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"{file} is missing ({exc.strerror}): retrain the model (materialize its asset, or `make demo`)"
        ) from exc
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        if str(exc).startswith(f"{file}/"):  # a file inside the folder already named itself
            raise ModelFileError(f"{exc}: retrain the model (materialize its asset, or `make demo`)") from exc
        raise ModelFileError(
            f"{file} is damaged ({type(exc).__name__}: {exc}): retrain the model "
            "(materialize its asset, or `make demo`)"
        ) from exc


def _read_matrix(file: Path) -> sp.csr_matrix:
    """A CSR matrix of ``sp.save_npz``, its large arrays memory-mapped copy-on-write (``read_arrays``):
    an onboarding at ML-32M size loads two models' 32M-pair matrices and reads one member's rows."""
    arrays = read_arrays(file)
    fmt = arrays.get("format")
    if fmt is None or fmt.item() != b"csr":
        return sp.load_npz(file).tocsr()
    shape = tuple(int(n) for n in arrays["shape"])
    return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape, copy=False)


def load_trained(path: Path) -> TrainedModel:
    path = Path(path)
    with _reading(path / CARD_FILE):
        card = json.loads((path / CARD_FILE).read_text())
        name, version = card["name"], card["version"]
    with _reading(path / INDEX_FILE), np.load(path / INDEX_FILE, allow_pickle=False) as idx:
        user_ids = idx["user_ids"].astype(object)
        item_ids = idx["item_ids"].astype(np.int64)
    with _reading(path / "train.npz"):
        matrix = _read_matrix(path / "train.npz")
    with _reading(path / "model"):
        model = load_model(path / "model")
    return TrainedModel(
        name=name,
        version=version,
        model=model,
        interactions=Interactions(user_ids=user_ids, item_ids=item_ids, matrix=matrix),
        params=card["params"],
        metrics=card["metrics"],
        protocol=card["protocol"],
        evaluations=card.get("evaluations", []),
        fit_seconds=card.get("fit_seconds", 0.0),
        path=path,
        input_fingerprint=card.get("input_fingerprint"),
    )
