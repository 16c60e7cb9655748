"""A film feature space built from flat TMDb rows (``core.tmdb.flatten``), for any film.

The dbt features only cover films someone has logged; a film fresh from the catalogue needs
the same columns. ``FeatureSpace.fit`` learns the vocabularies from a frame of flat rows and
``transform`` turns any frame into rows over those columns, so a model trained on the
community's films can score catalogue films it never saw. Films without keywords or credits
keep what they have: genres, language, decade, runtime, and (from live TMDb details) the
overview's words, the collection and the production companies.

Blocks, each L1-normalised and weighted before the final row norm: genres, directors, top
cast, keywords, original language, decade, runtime band, collection, companies, TMDb's vote
count (log2 bins) and rating (half-star bins, only over ``RATED_VOTES`` votes), and the
overview: its meaning (``overview="wordllama"``, a dense embedding block, see
``overview_embedding``) or its words (``overview="words"``: lower-case words of four letters
or more, minus common English words, that at least ``min_films`` films use).

Without the vote and rating blocks the content model cannot tell an acclaimed film from an
obscure one of the same genres: on the cold-film protocol they lift the content baseline's
NDCG@10 about fourfold (docs/evaluation.md, section 6). They are TMDb's figures, not the
community's, so a film nobody here has rated has them too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from lbx_orchestration.core.recsys.data.features import normalize_rows
from lbx_orchestration.core.recsys.data.overview_embedding import CACHE_FILE, DIMS, embed_overviews
from lbx_orchestration.core.recsys.data.overview_modes import DEFAULT_OVERVIEW, OVERVIEW_MODES
from lbx_orchestration.core.settings import cache_dir

BLOCK_WEIGHTS = {
    "genre": 1.0,
    "director": 0.6,
    "cast": 0.6,
    "keyword": 1.0,
    "lang": 0.3,
    "decade": 0.5,
    "runtime": 0.2,
    "collection": 0.8,
    "company": 0.3,
    "word": 0.4,
    "votes": 1.0,
    "rating": 1.0,
}
#: the overview's meaning, against the other blocks' (each sums to its weight)
OVERVIEW_WEIGHT = 1.0
#: changes whenever the features of the same rows change: the content model refits then
FEATURES_VERSION = 3
#: TMDb's average rating means little below this many votes
RATED_VOTES = 20
LIST_COLUMNS = {
    "genre": "genres",
    "director": "directors",
    "cast": "cast_top",
    "keyword": "keywords",
    "company": "companies",
}
WORD = re.compile(r"[a-z][a-z'-]{3,}")
_STOP = """about after again against also among another around back because been before being between
both cannot come comes could does down during each even ever every find finds first from gets have
having help here into just know last life like live lives long made make makes many more most much must
never only other over own same should since some soon still such take takes than that their them then
there these they things this those through time together under until upon very want wants well were
what when where which while will with world would year years young your himself herself itself
themselves story film movie able tell tells become becomes begin begins called named whose along"""
STOP_WORDS = frozenset(_STOP.split())
#: everyday words that name no subject, yet rarer than a reason's common-word share ("instead" is in
#: 0.9% of the bundled overviews, "heist" in 0.7%): a reason never says two films are "both about"
#: them. Only reasons leave them out (content_serving.common_words): in STOP_WORDS they would
#: change the features, and every content model would refit and be measured again.
_PLAIN = """instead puts getting goes going gone went came coming took taking taken turns turned
turning found became seems seem tries trying tried decides decide decided learns learn forced
forces began starts start started meets meet leads lead discovers discover realizes realize
returns return leaves leave left keeps keep brings bring sets shows show uses using used need
needs thing something someone anything everything nothing everyone anyone nobody whole really
rather quite almost already always often away across behind beyond within without toward
towards onto once twice though although however whether either neither enough several others
little great good best better next later early might shall unless whom whoever wherever
whatever less least ways part kind sort lots forth right high full half true real certain
different final finally suddenly eventually alone yourself myself ourselves amid despite
beside besides three four five seven eight nine twelve twenty thirty forty fifty hundred thousand
million"""
PLAIN_WORDS = frozenset(_PLAIN.split())
RUNTIME_BANDS = (0, 80, 95, 110, 130, 160)


def _decade(year: int | None) -> str | None:
    if year is None:
        return None
    return "pre1950" if year < 1950 else str(year // 10 * 10)


def _runtime(minutes: int | None) -> str | None:
    if not minutes:
        return None
    return str(max(b for b in RUNTIME_BANDS if minutes >= b))


def film_tokens(row: dict) -> dict[str, list[str]]:
    """A flat TMDb row's tokens per block."""
    out = {block: [str(v) for v in (row.get(col) or []) if v] for block, col in LIST_COLUMNS.items()}
    out["lang"] = [row["original_language"]] if row.get("original_language") else []
    decade, runtime = _decade(row.get("year")), _runtime(row.get("runtime"))
    out["decade"] = [decade] if decade else []
    out["runtime"] = [runtime] if runtime else []
    out["collection"] = [row["collection"]] if row.get("collection") else []
    out["word"] = sorted({w for w in WORD.findall((row.get("overview") or "").lower()) if w not in STOP_WORDS})
    votes, rating = row.get("vote_count") or 0, row.get("vote_average")
    out["votes"] = [str(int(math.log2(1 + votes)))] if votes > 0 else []
    out["rating"] = [f"{round(rating * 2) / 2:g}"] if rating and votes >= RATED_VOTES else []
    return out


@dataclass
class FeatureSpace:
    """Column vocabulary per block; ``min_films`` drops tokens rarer than that in ``fit``."""

    vocab: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=lambda: dict(BLOCK_WEIGHTS))
    overview: str = DEFAULT_OVERVIEW

    @classmethod
    def fit(
        cls, films: pl.DataFrame, min_films: int = 2, max_per_block: int = 3000, overview: str = DEFAULT_OVERVIEW
    ) -> FeatureSpace:
        if overview not in OVERVIEW_MODES:
            raise ValueError(f"overview must be one of {OVERVIEW_MODES}, not {overview!r}")
        counts: dict[str, Counter] = {block: Counter() for block in BLOCK_WEIGHTS}
        for row in films.iter_rows(named=True):
            for block, tokens in film_tokens(row).items():
                counts[block].update(set(tokens))
        vocab = {}
        for block, counter in counts.items():
            keep = [(t, n) for t, n in counter.items() if n >= min_films]
            keep.sort(key=lambda tn: (-tn[1], tn[0]))
            vocab[block] = sorted(t for t, _ in keep[:max_per_block])
        weights = dict(BLOCK_WEIGHTS)
        if overview != "words":
            weights["word"] = 0.0
            vocab["word"] = []
        return cls(vocab=vocab, weights=weights, overview=overview)

    @property
    def names(self) -> list[str]:
        sparse = [f"{block}:{t}" for block, tokens in self.vocab.items() for t in tokens]
        return sparse + ([f"overview:{i}" for i in range(DIMS)] if self.overview == "wordllama" else [])

    def transform(self, films: pl.DataFrame) -> sp.csr_matrix:
        """One row per film of ``films`` (in order) over ``names``."""
        offsets, start = {}, 0
        index = {}
        for block, tokens in self.vocab.items():
            offsets[block] = start
            index[block] = {t: i for i, t in enumerate(tokens)}
            start += len(tokens)
        rows, cols, vals = [], [], []
        for r, row in enumerate(films.iter_rows(named=True)):
            for block, tokens in film_tokens(row).items():
                hits = [index[block][t] for t in set(tokens) if t in index.get(block, {})]
                for h in hits:
                    rows.append(r)
                    cols.append(offsets[block] + h)
                    vals.append(self.weights.get(block, 1.0) / len(hits))
        matrix = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(films.height, start))
        if self.overview == "wordllama":
            matrix = sp.hstack([matrix, self._overview_block(films)], format="csr")
        return normalize_rows(matrix, "l1")

    @staticmethod
    def _overview_block(films: pl.DataFrame) -> sp.csr_matrix:
        """The overview embedding scaled so each row's L1 norm is ``OVERVIEW_WEIGHT``, as a sparse
        block's would be."""
        texts = films["overview"].to_list() if "overview" in films.columns else [None] * films.height
        dense = embed_overviews(texts, cache_dir() / CACHE_FILE)
        l1 = np.abs(dense).sum(axis=1, keepdims=True)
        return sp.csr_matrix(dense / np.where(l1 > 0, l1, 1.0) * OVERVIEW_WEIGHT)

    def save(self, path: Path) -> None:
        data = {"vocab": self.vocab, "weights": self.weights, "overview": self.overview}
        Path(path).write_text(json.dumps(data, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> FeatureSpace:
        data = json.loads(Path(path).read_text())
        # a space saved before the overview embedding used the overview's words
        return cls(vocab=data["vocab"], weights=data["weights"], overview=data.get("overview", "words"))


def shared_tokens(a: dict[str, list[str]], b: dict[str, list[str]], blocks: Iterable[str]) -> dict[str, list[str]]:
    """Tokens two films share, per block (in ``a``'s order)."""
    return {block: [t for t in a.get(block, []) if t in set(b.get(block, []))] for block in blocks}
