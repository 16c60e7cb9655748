"""Filtered lists ranked on request: the served model and its serving inputs, loaded once per
served model (the same cache ``core.members.onboard`` keeps), one member folded into it, and the
content model's new films that pass the filter blended in as the main list blends them."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import polars as pl

from lbx_orchestration.core.member_films import member_key
from lbx_orchestration.core.recsys.models.pipeline import ModelFileError, latest_path, load_trained
from lbx_orchestration.core.recsys.serving.content_blend import blend_for_member, candidate_pool
from lbx_orchestration.core.recsys.serving.content_serving import CONTENT_ALIAS, ContentContext
from lbx_orchestration.core.recsys.serving.filtered import (
    FilmFilter,
    Watchlist,
    narrowed_filter,
    ranked_for_member,
    watchlist_policy,
)
from lbx_orchestration.core.recsys.serving.recommend import ServingInputs, load_serving_inputs
from lbx_orchestration.core.recsys.serving.serve import ServingPolicy
from lbx_orchestration.core.warehouse import WarehouseError, connect

log = logging.getLogger(__name__)
CONTENT_CHECK_SECONDS = 5.0  # how often a newer content model is looked for
RANKED_KEPT = 512  # filtered lists kept per serving data (a few KB each)


class ServedInputs:
    """``cache`` maps a served model's folder to (model, serving inputs); ``db_lock`` is the
    lock every opening of the warehouse in this process takes."""

    def __init__(self, db: Path, cache: dict, db_lock: threading.RLock) -> None:
        self.db = db
        self.cache = cache
        self.db_lock = db_lock
        self._load_lock = threading.Lock()
        self._content: tuple[Path, ContentContext] | None = None
        self._content_checked = 0.0
        self._ranked: OrderedDict[tuple, tuple[pl.DataFrame, bool]] = OrderedDict()
        self._ranked_lock = threading.Lock()

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

    def content(self, models_dir: Path) -> ContentContext | None:
        """The latest content model's context, reloaded when a newer model is fitted; None
        before the first one, or when it cannot be read now."""
        now = time.monotonic()
        if self._content is not None and now - self._content_checked < CONTENT_CHECK_SECONDS:
            return self._content[1]  # asked a moment ago: no need to read its pointer file again
        try:
            path = latest_path(models_dir, CONTENT_ALIAS)
        except (FileNotFoundError, OSError):
            return None
        if self._content is not None and self._content[0] == path:
            self._content_checked = now
            return self._content[1]
        with self._load_lock:
            if self._content is not None and self._content[0] == path:
                return self._content[1]
            try:
                with self.db_lock, connect(self.db, read_only=True, wait_seconds=5) as con:
                    context = ContentContext.load(con, models_dir)
                context.prime(candidate_pool(context, ServingPolicy()))
            except (ModelFileError, WarehouseError, OSError, RuntimeError) as exc:
                log.warning("content model %s not loaded for filtered lists: %s", path, exc)
                return None
            self._content, self._content_checked = (path, context), now
            return context

    def rank_member(
        self,
        inputs: ServingInputs,
        models_dir: Path,
        username: str,
        observations: pl.DataFrame,
        keep: FilmFilter,
        limit: int,
        watchlist: Watchlist,
        generation: int,
    ) -> tuple[pl.DataFrame, bool]:
        """The member's films among those ``keep`` lets through, and whether the content
        model's new films are in them (False before the first content model). The answer is
        kept for the serving data of ``generation``: a member asking again pays nothing."""
        context = self.content(models_dir)
        memo = (generation, id(inputs), id(context), username.lower(), keep, limit, watchlist)
        with self._ranked_lock:
            if (hit := self._ranked.get(memo)) is not None:
                self._ranked.move_to_end(memo)
                return hit
        answer = self._rank(inputs, context, username, observations, keep, limit, watchlist)
        with self._ranked_lock:
            self._ranked[memo] = answer
            while len(self._ranked) > RANKED_KEPT:
                self._ranked.popitem(last=False)
        return answer

    def _rank(
        self,
        inputs: ServingInputs,
        context: ContentContext | None,
        username: str,
        observations: pl.DataFrame,
        keep: FilmFilter,
        limit: int,
        watchlist: Watchlist,
    ) -> tuple[pl.DataFrame, bool]:
        key = member_key(username)
        recs = ranked_for_member(inputs, key, observations, keep, limit, watchlist)
        if context is None:
            return recs, False
        policy = watchlist_policy(inputs.policy, watchlist)
        narrowed = narrowed_filter(keep, observations, watchlist)
        return blend_for_member(recs, key, observations, policy, context, narrowed, limit), True
