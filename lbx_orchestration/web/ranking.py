"""Filtered lists ranked on request: the served model and its serving inputs, loaded once per
served model (the same cache ``core.members.onboard`` keeps), and one member folded into it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import polars as pl

from lbx_orchestration.core.member_films import member_key
from lbx_orchestration.core.recsys.models.pipeline import ModelFileError, load_trained
from lbx_orchestration.core.recsys.serving.filtered import FilmFilter, Watchlist, ranked_for_member
from lbx_orchestration.core.recsys.serving.recommend import ServingInputs, load_serving_inputs
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.warehouse import WarehouseError, connect

log = logging.getLogger(__name__)


class ServedInputs:
    """``cache`` maps a served model's folder to (model, serving inputs); ``db_lock`` is the
    lock every opening of the warehouse in this process takes."""

    def __init__(self, db: Path, cache: dict, db_lock: threading.RLock) -> None:
        self.db = db
        self.cache = cache
        self.db_lock = db_lock
        self._load_lock = threading.Lock()

    def get(self, path: Path | None) -> ServingInputs | None:
        """The inputs of the model at ``path``; None when there is none or it cannot be read now."""
        if path is None:
            return None
        cached = self.cache.get(path)
        if cached is not None:
            return cached[1]
        with self._load_lock:
            if (cached := self.cache.get(path)) is not None:
                return cached[1]
            try:
                trained = load_trained(path)
                with self.db_lock, connect(self.db, read_only=True, wait_seconds=5) as con:
                    inputs = load_serving_inputs(con, trained, ServingPolicy(), users=[])
            except (ModelFileError, WarehouseError, OSError) as exc:
                log.warning("served model %s not loaded for filtered lists: %s", path, exc)
                return None
            self.cache.clear()  # one model at a time, as onboard keeps it
            self.cache[path] = (trained, inputs)
            return inputs


def rank_member(
    inputs: ServingInputs,
    username: str,
    observations: pl.DataFrame,
    keep: FilmFilter,
    limit: int,
    watchlist: Watchlist,
) -> pl.DataFrame:
    return ranked_for_member(inputs, member_key(username), observations, keep, limit, watchlist)
