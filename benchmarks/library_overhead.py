"""lbx's overhead over the raw libraries: final-fit seconds of ALS and EASE, lbx ÷ raw.

    python benchmarks/library_overhead.py --db data/lbx.duckdb [--out FILE] [--repeats 3]

The training matrix is the one the served models' final fit sees (every seen pair, collapsed,
with lbx's confidence weights), built with lbx's own code; the hyperparameters are the last
saved model's (its card), else the class defaults. Each side is timed with ``perf_counter``;
with ``--repeats`` the sides alternate and the fastest run of each counts.

* ALS: ``ALSRecommender(**params).fit(train)`` against implicit's CPU ``AlternatingLeastSquares``
  fitted on the same matrix's confidence ``1 + alpha * w`` built with plain scipy; above lbx's
  pair budget also against implicit on lbx's sample (``same_work``: equal iterations).
* EASE: ``EASERecommender(**params).fit(train)`` against the textbook closed form in
  numpy/scipy (float32) on the items and raters lbx's fit keeps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(ROOT))

from lbx_orchestration.core.recsys.base import check_train  # noqa: E402
from lbx_orchestration.core.recsys.data.data import build_interactions, collapse_duplicates  # noqa: E402
from lbx_orchestration.core.recsys.data.training_data import training_observations  # noqa: E402
from lbx_orchestration.core.recsys.models.als import ALSRecommender  # noqa: E402
from lbx_orchestration.core.recsys.models.budget import budget_sample, pair_budget_rows  # noqa: E402
from lbx_orchestration.core.recsys.models.ease import EASERecommender  # noqa: E402
from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, latest_path  # noqa: E402
from lbx_orchestration.core.settings import models_dir as default_models_dir  # noqa: E402
from lbx_orchestration.core.warehouse import connect  # noqa: E402
from lbx_orchestration.core.warehouse import exists as warehouse_exists  # noqa: E402

#: the asset alias each model is saved under (lbx_orchestration/models/assets.py)
ALIASES = {"als": "als", "ease": "ease"}


def training_matrix(db_path: Path, models_dir: Path | None = None) -> tuple[sp.csr_matrix, dict[str, Any]]:
    """The matrix the final fit sees (``prepare``'s ``full``: every seen pair, collapsed) and,
    per model, the hyperparameters of its last saved card (else {} = the class defaults) plus
    ``params_source``."""
    if not warehouse_exists(db_path):
        raise FileNotFoundError(f"no warehouse at {db_path}")
    with connect(db_path, read_only=True) as con:
        observations = training_observations(con)
    matrix = build_interactions(collapse_duplicates(observations), collapsed=True).matrix.tocsr()
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    params: dict[str, Any] = {"params_source": {}}
    for model, alias in ALIASES.items():
        params[model], params["params_source"][model] = _saved_params(folder, alias)
    return matrix, params


def _saved_params(models_dir: Path, alias: str) -> tuple[dict[str, Any], str]:
    """What the asset passes to a refit (``assets._last_params``): the card's params without
    ``seed`` and ``num_threads``, which the refit takes from the settings."""
    try:
        path = latest_path(models_dir, alias) / CARD_FILE
        card = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}, "defaults"
    return {k: v for k, v in card["params"].items() if k not in ("seed", "num_threads")}, f"card:{path}"


def measure(
    train: sp.csr_matrix, als_params: dict[str, Any], ease_params: dict[str, Any], repeats: int = 1
) -> dict[str, Any]:
    """Final-fit seconds of lbx's ALS and EASE and of the raw library calls on the same input."""
    return {"als": _measure_als(train, als_params, repeats), "ease": _measure_ease(train, ease_params, repeats)}


def _measure_als(train: sp.csr_matrix, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    resolved = ALSRecommender(**params).params  # the seed and thread count lbx will use
    # The ratio is lbx's final fit against implicit's fit on the same matrix. Above
    # ``max_interactions`` pairs lbx fits on a seeded sample, then sweeps every pair three more
    # times (users, items, users): ``same_work`` is then implicit on that same sample (drawn
    # here, untimed, with lbx's own code), so lbx's sampling, its full-matrix confidence and its
    # three sweeps show up as lbx's overhead at equal iterations.
    sample = budget_sample(check_train(train), resolved["max_interactions"], resolved["seed"])
    budgeted = sample.nnz < train.nnz
    _warm_up_implicit()
    lbx_seconds, raw_seconds, lbx, raw = _race(
        lambda: ALSRecommender(**params).fit(train),
        lambda: _raw_als(train, resolved),
        1 if budgeted else repeats,  # implicit on every pair of ML-32M takes minutes a run
    )
    result = {
        **_summary(lbx_seconds, raw_seconds, train.nnz, resolved),
        "lbx_trains_on_pairs": int(sample.nnz),
        "lbx_extra_sweeps": 3 if budgeted else 0,
        "blas_threads": 1,
        "user_factors_shape": {"lbx": list(lbx.user_factors.shape), "raw": list(raw[0].shape)},
        "item_factors_shape": {"lbx": list(lbx.item_factors.shape), "raw": list(raw[1].shape)},
        # same seed, same matrix: equal up to float noise unless lbx sampled
        "max_abs_diff": _max_diff((lbx.user_factors, lbx.item_factors), raw),
    }
    if budgeted:
        lbx_seconds, same_seconds, lbx, same = _race(
            lambda: ALSRecommender(**params).fit(train), lambda: _raw_als(sample, resolved), repeats
        )
        result["same_work"] = {
            "what": "implicit's fit on lbx's sample: lbx's sampling and three extra sweeps are its overhead",
            "lbx_fit_seconds": round(lbx_seconds, 4),
            "raw_fit_seconds": round(same_seconds, 4),
            "ratio": round(lbx_seconds / same_seconds, 3),
            "pairs": int(sample.nnz),
        }
    return result


def _raw_als(matrix: sp.csr_matrix, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """What an implicit user writes: confidence 1 + alpha * w with scipy, then fit."""
    conf = matrix.astype(np.float32)
    conf.data = 1.0 + p["alpha"] * conf.data
    # implicit's advice (and lbx's setting): one BLAS thread, implicit parallelises itself
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=1.0,
            iterations=p["iterations"],
            calculate_training_loss=False,
            num_threads=p["num_threads"],
            random_state=p["seed"],
        )
        model.fit(conf, show_progress=False)
    return model.user_factors, model.item_factors


def _warm_up_implicit() -> None:
    """implicit inspects the BLAS config on its first model only; neither side should pay it."""
    with threadpool_limits(limits=1, user_api="blas"):
        AlternatingLeastSquares(factors=2, iterations=1, num_threads=1, random_state=0).fit(
            sp.csr_matrix(np.eye(4, dtype=np.float32)), show_progress=False
        )


def _measure_ease(train: sp.csr_matrix, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    resolved = EASERecommender(**params).params
    # The raw side starts from what lbx's Gram reads (drawn here, untimed, with lbx's rules):
    # the ``max_items`` most-watched films and, above ``max_pairs``, lbx's rater sample.
    # lbx's item count, column slice and budget check are therefore counted as its overhead.
    items = _top_items(train, resolved["max_items"])
    rows, share = pair_budget_rows(check_train(train)[:, items], resolved["max_pairs"], resolved["seed"])
    _warm_up_blas(resolved["num_threads"])
    lbx_seconds, raw_seconds, lbx, raw = _race(
        lambda: EASERecommender(**params).fit(train),
        lambda: _raw_ease(rows, resolved["l2"], share, resolved["num_threads"]),
        repeats,
    )
    if not np.array_equal(lbx.items, items):
        raise RuntimeError("lbx's EASE kept other items than the raw side: the comparison is off")
    return {
        **_summary(lbx_seconds, raw_seconds, train.nnz, resolved),
        "items": len(items),
        "lbx_trains_on_pairs": int(rows.nnz),
        "rater_share": share,
        "blas_threads": resolved["num_threads"],
        "weights_shape": {"lbx": list(lbx.weights.shape), "raw": list(raw.shape)},
        "max_abs_diff": _max_diff((lbx.weights,), (raw,)),
    }


def _warm_up_blas(threads: int) -> None:
    """BLAS starts its threads on the first call that uses them: not inside either timing."""
    with threadpool_limits(limits=threads, user_api="blas"):
        sla.inv(np.eye(256, dtype=np.float32) * 2, overwrite_a=True, check_finite=False)


def _top_items(train: sp.csr_matrix, max_items: int) -> np.ndarray:
    """EASE's item rule: the ``max_items`` films with the most training users (ties: lower index)."""
    counts = np.diff(sp.csc_matrix(train).indptr)
    if len(counts) <= max_items:
        return np.arange(len(counts))
    return np.sort(np.lexsort((np.arange(len(counts)), -counts))[:max_items])


def _raw_ease(x: sp.csr_matrix, l2: float, share: float, threads: int) -> np.ndarray:
    """G = X^T X + l2 I, P = G^-1, B = P / -diag(P), diag(B) = 0, in float32."""
    x = x.astype(np.float32)
    gram = (x.T @ x).toarray()
    if share < 1.0:  # lbx's rater sample stands for every rater: same scaling, same model
        gram /= np.float32(share)
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    # the same BLAS threads and inversion flags as lbx: the ratio is then lbx's wrapping alone
    with threadpool_limits(limits=threads, user_api="blas"):
        inv = sla.inv(gram, overwrite_a=True, check_finite=False)
    weights = inv / -np.diag(inv)
    np.fill_diagonal(weights, 0.0)
    return weights


def _race(lbx: Callable[[], Any], raw: Callable[[], Any], repeats: int) -> tuple[float, float, Any, Any]:
    """The fastest of ``repeats`` runs of each side, alternating which goes first (a busy
    machine's drift then hits both), and each side's last output."""
    best = {"lbx": math.inf, "raw": math.inf}
    outputs: dict[str, Any] = {}
    sides = {"lbx": lbx, "raw": raw}
    for i in range(max(1, repeats)):
        for name in ("lbx", "raw") if i % 2 == 0 else ("raw", "lbx"):
            outputs.pop(name, None)  # let the last run's output go before the next (EASE's B is n^2)
            started = time.perf_counter()
            outputs[name] = sides[name]()
            best[name] = min(best[name], time.perf_counter() - started)
    return best["lbx"], best["raw"], outputs["lbx"], outputs["raw"]


def _summary(lbx_seconds: float, raw_seconds: float, pairs: int, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "lbx_fit_seconds": round(lbx_seconds, 4),
        "raw_fit_seconds": round(raw_seconds, 4),
        "ratio": round(lbx_seconds / raw_seconds, 3),
        "pairs": int(pairs),
        "params": dict(params),
    }


def _max_diff(ours: tuple[np.ndarray, ...], theirs: tuple[np.ndarray, ...]) -> float | None:
    """Largest absolute difference, or None when the shapes differ."""
    pairs = list(zip(ours, theirs, strict=True))
    if any(a.shape != b.shape for a, b in pairs):
        return None
    return float(max(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0) for a, b in pairs))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the warehouse (a DuckDB file or a lake target)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--models-dir", type=Path, help="where the saved models' cards are (default: lbx's)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side; the fastest counts")
    args = parser.parse_args(argv)
    train, params = training_matrix(args.db, args.models_dir)
    result: dict[str, Any] = {
        "db": str(args.db),
        "users": int(train.shape[0]),
        "films": int(train.shape[1]),
        "repeats": args.repeats,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "LBX_THREADS")},
        **measure(train, params["als"], params["ease"], repeats=args.repeats),
    }
    for model in ("als", "ease"):
        result[model]["params_source"] = params["params_source"][model]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
