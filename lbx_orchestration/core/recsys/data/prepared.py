"""The preparation every model's evaluation and final fit share, done once per input.

Collapsing rewatches, the held-out split, the training and full matrices and the seeded
sample of evaluation users depend only on the observations and the protocol settings, not on
the model. ``prepare`` does them once; ``cached_prepare`` keeps the result in a folder keyed by
the inputs' fingerprint, so the five model assets of one refresh (separate steps, possibly
separate processes) read it instead of redoing it, and a changed input makes a new key.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.base import Interactions
from lbx_orchestration.core.recsys.data.data import build_interactions, collapse_duplicates
from lbx_orchestration.core.recsys.data.split import random_split, temporal_split
from lbx_orchestration.core.settings import SEED

DEFAULT_TEST_FRAC = {"temporal": 0.2, "random": 0.25}
#: evaluation (and validation) scores a fixed, seeded sample of this many users with held-out
#: films: ranking 87k films for 200k MovieLens raters would cost more than every fit together.
#: The size is set by the error it leaves: 2,500 users give a 95% interval of ±0.012 on a mean
#: NDCG@10 whose users spread with a standard deviation of 0.3 (1.96 x 0.3 / 50; measured 0.21-0.22
#: for the models at ML-32M tenth size), under the gaps between the models at ML-32M size
#: (0.02-0.09); each report states the interval it measured.
EVAL_USERS = 2_500
EVAL_USERS_REASON = (
    f"{EVAL_USERS:,} users bound the 95% interval of a mean NDCG@10 to about ±0.012 "
    "when users' NDCG@10 spreads with a standard deviation of 0.3."
)
#: bump when what ``prepare`` computes changes: old cached folders then no longer match
PREPARE_VERSION = 2  # 2: the ratings matrices are kept too (the content model's cold protocol reads them)
CACHE_DIR = "_prepared"
KEEP_CACHED = 2


def sample_users(df: pl.DataFrame, n: int | None, seed: int) -> tuple[pl.DataFrame, int]:
    """Rows of ``df`` for a seeded sample of ``n`` of its users (all when ``n`` is None or
    there are no more), and how many users there were. The draw depends only on the sorted
    user keys and the seed, so every model is scored on the same users."""
    users = np.sort(df["user_key"].unique().to_numpy())
    if n is None or len(users) <= n:
        return df, len(users)
    picked = np.random.default_rng(seed).choice(len(users), size=n, replace=False)
    keep = pl.Series("user_key", users[np.sort(picked)])
    return df.filter(pl.col("user_key").is_in(keep.implode())), len(users)


@dataclass
class Prepared:
    settings: dict[str, Any]  # split, test_frac, seed, eval_users
    n_observations: int
    split_stats: dict[str, Any]
    train: Interactions  # the training part of the split
    test: pl.DataFrame  # held-out pairs of the sampled evaluation users
    n_test_users: int  # users with held-out films before sampling
    full: Interactions  # every observation: what a model is finally fitted on and serves from
    #: the training part as a frame (tuning splits it again); not kept in the cache
    train_frame: pl.DataFrame | None = None


def prepare(
    df: pl.DataFrame,
    split: str = "temporal",
    test_frac: float | None = None,
    seed: int = SEED,
    eval_users: int | None = EVAL_USERS,
    keep_frame: bool = True,
) -> Prepared:
    """``keep_frame``: keep the training part as a frame (tuning splits it again). Without it each
    frame is let go as soon as its matrices are built: at ML-32M size the frames held at once
    were gigabytes of the refresh's peak."""
    if split not in DEFAULT_TEST_FRAC:
        raise ValueError(f"split must be 'temporal' or 'random', got {split!r}")
    test_frac = DEFAULT_TEST_FRAC[split] if test_frac is None else test_frac
    n_observations = df.height
    pairs = collapse_duplicates(df)
    del df  # the caller's frame, when it keeps none itself (cached_prepare)
    if split == "temporal":
        parts = temporal_split(pairs, test_frac=test_frac, collapsed=True)
    else:
        parts = random_split(pairs, test_frac=test_frac, seed=seed, collapsed=True)
    train_df, test_df = parts
    split_stats = {k: v for k, v in parts.stats.items() if k != "cold_films"}
    del parts
    test_df, n_test_users = sample_users(test_df, eval_users, seed)
    train = build_interactions(train_df, collapsed=True)
    train_frame = train_df if keep_frame else None
    del train_df
    return Prepared(
        settings={"split": split, "test_frac": test_frac, "seed": seed, "eval_users": eval_users},
        n_observations=n_observations,
        split_stats=split_stats,
        train=train,
        test=test_df,
        n_test_users=n_test_users,
        full=build_interactions(pairs, collapsed=True),
        train_frame=train_frame,
    )


def _save_interactions(path: Path, name: str, inter: Interactions) -> None:
    sp.save_npz(path / f"{name}.npz", inter.matrix.tocsr(), compressed=False)
    np.save(path / f"{name}_users.npy", inter.user_ids.astype(str))
    np.save(path / f"{name}_items.npy", inter.item_ids.astype(np.int64))
    if inter.ratings is not None:
        sp.save_npz(path / f"{name}_ratings.npz", inter.ratings.tocsr(), compressed=False)


def _load_interactions(path: Path, name: str, ratings: bool = False) -> Interactions:
    """``ratings``: read the ratings matrix too (only the content model's cold protocol needs it)."""
    stored = path / f"{name}_ratings.npz"
    return Interactions(
        user_ids=np.load(path / f"{name}_users.npy").astype(object),
        item_ids=np.load(path / f"{name}_items.npy"),
        matrix=sp.load_npz(path / f"{name}.npz").tocsr(),
        ratings=sp.load_npz(stored).tocsr() if ratings and stored.is_file() else None,
    )


def save_prepared(prepared: Prepared, folder: Path) -> None:
    """Write ``prepared`` to ``folder`` whole or not at all (a temporary folder, then a rename)."""
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        _save_interactions(tmp, "train", prepared.train)
        _save_interactions(tmp, "full", prepared.full)
        prepared.test.write_parquet(tmp / "test.parquet")
        meta = {
            "settings": prepared.settings,
            "n_observations": prepared.n_observations,
            "split_stats": prepared.split_stats,
            "n_test_users": prepared.n_test_users,
        }
        (tmp / "prepared.json").write_text(json.dumps(meta, default=int))
        try:
            os.rename(tmp, folder)
        except OSError:  # another step wrote the same key first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_prepared(folder: Path, ratings: bool = False) -> Prepared:
    meta = json.loads((folder / "prepared.json").read_text())
    return Prepared(
        settings=meta["settings"],
        n_observations=meta["n_observations"],
        split_stats=meta["split_stats"],
        train=_load_interactions(folder, "train"),
        test=pl.read_parquet(folder / "test.parquet"),
        n_test_users=meta["n_test_users"],
        full=_load_interactions(folder, "full", ratings),
    )


def cached_prepare(
    models_dir: Path,
    data_fingerprint: str,
    read: Callable[[], pl.DataFrame],
    split: str = "temporal",
    test_frac: float | None = None,
    seed: int = SEED,
    eval_users: int | None = EVAL_USERS,
    ratings: bool = False,
) -> tuple[Prepared, bool]:
    """The preparation of the observations ``read`` returns (called only on a miss), cached
    under ``<models_dir>/_prepared/<key>``; returns it and whether it came from the cache. A
    damaged cached folder is prepared again. ``ratings``: read the full ratings matrix from the
    cache too (a fresh preparation always has it)."""
    key = json.dumps([PREPARE_VERSION, data_fingerprint, split, test_frac, seed, eval_users])
    root = Path(models_dir) / CACHE_DIR
    folder = root / uuid.uuid5(uuid.NAMESPACE_URL, key).hex[:16]
    if (folder / "prepared.json").is_file():
        try:
            return load_prepared(folder, ratings), True
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)
    # no frame kept: a cached preparation never serves tuning (it reads the observations itself)
    prepared = prepare(read(), split=split, test_frac=test_frac, seed=seed, eval_users=eval_users, keep_frame=False)
    root.mkdir(parents=True, exist_ok=True)
    save_prepared(prepared, folder)
    _prune(root, keep=folder)
    return prepared, False


def _prune(root: Path, keep: Path) -> None:
    """Keep the newest ``KEEP_CACHED`` folders (and ``keep``): an old one is a superseded input."""
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime
    )
    for old in folders[:-KEEP_CACHED]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
