"""Film search: BM25, title trigrams and a dense retriever fused by reciprocal rank, under the
rules of ``search_rules`` (a named title or person first, language intent, a relevance floor).

Which dense retriever serves (LSA, WordLlama or both) was chosen by ``benchmarks/search_bench.py``
(docs/search.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from lbx_orchestration.core.search import (
    FIELD_WEIGHTS,
    Bm25,
    Hit,
    Lsa,
    _field_text,
    _ranking,
    film_documents,
    reciprocal_rank_fusion,
)
from lbx_orchestration.core.search_dense import TitleTrigrams, WordLlamaIndex
from lbx_orchestration.core.search_rules import (
    EXACT,
    LEADING,
    OTHER,
    PERSON,
    Floors,
    keep_hit,
    language_intent,
    title_key,
    title_tier,
)
from lbx_orchestration.core.search_text import tokenize

DENSE_RETRIEVERS = ("lsa", "wordllama")
SERVED_DENSE: tuple[str, ...] = ()
# cosine under which a dense hit is not even ranked (scales differ between the two)
DENSE_RANK_FLOOR = {"lsa": 0.2, "wordllama": 0.3}
TRIGRAM_RANK_FLOOR = 0.3
MATCH_NAMES = {EXACT: "title", LEADING: "leading title", PERSON: "person", OTHER: "text"}


def _names(row: dict) -> list[str]:
    names = [row.get("title"), row.get("original_title"), *(row.get("alt_titles") or [])]
    return [n for n in names if n]


def _semantic_text(row: dict) -> str:
    parts = [row.get("title"), row.get("overview"), _field_text(row.get("keywords")), _field_text(row.get("genres"))]
    return ". ".join(p for p in parts if p)


class FilmSearch:
    def __init__(
        self,
        films: pl.DataFrame,
        dims: int = 128,
        depth: int = 100,
        dense: Sequence[str] = SERVED_DENSE,
        floors: Floors = Floors(),
    ) -> None:
        rows = list(films.iter_rows(named=True))
        docs = film_documents(films)
        self.bm25 = Bm25(film_documents(films, {**FIELD_WEIGHTS, "genres": 1}))
        self.lsa = Lsa(docs, dims=dims)  # also the content half of "more like this"
        self.wordllama = WordLlamaIndex([_semantic_text(r) for r in rows]) if "wordllama" in dense else None
        self.dense = tuple(d for d in DENSE_RETRIEVERS if d in dense)
        self.depth, self.floors = depth, floors
        self.title_keys = [{title_key(n) for n in _names(r)} - {""} for r in rows]
        self.trigrams = TitleTrigrams([sorted(keys) for keys in self.title_keys])
        self.people: dict[str, set[int]] = {}
        for i, r in enumerate(rows):
            for person in [*(r.get("directors") or []), *(r.get("cast_top") or [])]:
                if key := " ".join(tokenize(person)):
                    self.people.setdefault(key, set()).add(i)
        self.languages = np.array([r.get("original_language") or "" for r in rows], dtype=object)
        self.popularity = np.array([float(r.get("vote_count") or r.get("popularity") or 0) for r in rows])

    def _tiers(self, query_key: str, tokens: list[str]) -> dict[int, int]:
        tiers = {i: t for i, keys in enumerate(self.title_keys) if (t := title_tier(query_key, keys)) > OTHER}
        for i in self.people.get(" ".join(tokens), ()) if tokens else ():
            tiers[i] = max(tiers.get(i, OTHER), PERSON)
        return tiers

    def _dense_scores(self, name: str, text: str, tokens: list[str]) -> np.ndarray | None:
        if name == "lsa":
            return self.lsa.scores(tokens)
        return self.wordllama.scores(text) if self.wordllama is not None else None

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        tokens = tokenize(query)
        query_key = title_key(query)
        if not query_key:
            return []
        tiers = self._tiers(query_key, tokens)
        intent = language_intent(query)
        mask = None
        if intent.languages and not tiers:
            mask = np.isin(self.languages, list(intent.languages))
            if not mask.any():
                mask = None
            elif intent.listing:
                order = np.flatnonzero(mask)[np.argsort(-self.popularity[mask], kind="stable")][:limit]
                return [Hit(int(i), 0.0, None, None, match="language") for i in order]
            else:
                tokens = list(intent.content)
        text = " ".join(tokens)
        keep = mask if mask is not None else np.ones(len(self.languages), bool)

        lexical_scores = self.bm25.scores(tokens) * keep
        trigram_scores = self.trigrams.scores(query_key) * keep
        rankings = [_ranking(lexical_scores, self.depth), _ranking(trigram_scores, self.depth, TRIGRAM_RANK_FLOOR)]
        dense_scores: list[tuple[str, np.ndarray]] = []
        for name in self.dense:
            scores = self._dense_scores(name, text, tokens)
            if scores is None:
                continue
            scores = np.where(keep, scores, -1.0)
            dense_scores.append((name, scores))
            rankings.append(_ranking(scores, self.depth, floor=DENSE_RANK_FLOOR[name]))
        fused = reciprocal_rank_fusion(rankings)
        best_lexical = float(lexical_scores.max(initial=0.0))
        best_dense = {name: float(scores.max()) for name, scores in dense_scores}
        found = {i for i, _, _ in fused}
        hits = []
        for i, score, ranks in [*fused, *((i, 0.0, [None] * len(rankings)) for i in tiers if i not in found)]:
            tier = tiers.get(i, OTHER)
            dense_ok = any(
                keep_hit(0.0, 0.0, 0.0, float(s[i]), best_dense[n], self.floors, DENSE_RANK_FLOOR[n])
                for n, s in dense_scores
            )
            lexical_ok = keep_hit(
                float(lexical_scores[i]), best_lexical, float(trigram_scores[i]), None, None, self.floors
            )
            if tier == OTHER and not (dense_ok or lexical_ok):
                continue
            dense_rank = next((r for r in ranks[2:] if r is not None), None)
            hits.append((tier, score, Hit(int(i), score, ranks[0], dense_rank, ranks[1], MATCH_NAMES[tier])))
        hits.sort(key=lambda h: (-h[0], -h[1], h[2].index))
        return [h for _, _, h in hits[:limit]]
