"""Resolve a (title, year) to a TMDb id through search, with a confidence and a runner-up.

Ranking, strongest rule first: title match tier (exact normalised title or original title,
then close fuzzy matches, then the rest), year tier (same year, one year off, unknown, further),
closer year, fuzzy similarity, then popularity to break ties.

Confidence = the winner's match score x (1 - p), where the score multiplies a title factor
(1 for exact) by a year factor (1 same year, 0.85 one off, 0.8 no year to check ...), and ``p``
(at most 0.5) is how much of the decision the runner-up could claim: its score ratio to the
winner, to the 4th power, times its share of the two films' popularity. Two equally popular
films that match equally well split the confidence; a weaker or far less popular runner-up
barely dents it.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.tmdb.normalize import normalize_title

FUZZY_TIER_MIN = 0.85  # similarity for a "close" title (typos, subtitles dropped ...)
NO_MATCH_BELOW = 0.5  # best similarity under this: no film is returned
AMBIGUITY_RATIO = 0.5  # runner-up confidence >= this share of the winner's: ambiguous


@dataclass(frozen=True)
class Resolution:
    tmdb_id: int | None
    confidence: float
    method: str
    runner_up: int | None
    runner_up_confidence: float | None
    candidates: int

    @property
    def is_ambiguous(self) -> bool:
        if self.tmdb_id is None or self.runner_up_confidence is None:
            return False
        return self.runner_up_confidence >= AMBIGUITY_RATIO * self.confidence


@dataclass(frozen=True)
class _Scored:
    tmdb_id: int
    title_tier: int  # 3 exact title, 2 exact original title, 1 close, 0 other
    year_tier: int  # 3 same, 2 one off, 1 unknown, 0 further
    year_distance: int  # 0 when unknown
    similarity: float
    popularity: float
    score: float

    @property
    def key(self) -> tuple[int, int, int, int, float, float]:
        exact = 1 if self.title_tier >= 2 else self.title_tier - 1
        return (
            exact,
            self.year_tier,
            -self.year_distance,
            self.title_tier,
            self.similarity,
            self.popularity,
        )


def resolve_by_search(source: TmdbSource, title: str, year: int | None) -> Resolution:
    if not title or not normalize_title(title):
        raise ValueError(f"cannot resolve an empty title: {title!r}")
    results = source.search_movie(title, year)
    if not results and year is not None:
        results = source.search_movie(title, None)
    return rank_candidates(title, year, results)


def rank_candidates(title: str, year: int | None, results: list[dict[str, Any]]) -> Resolution:
    """The pure part of :func:`resolve_by_search`: pick among search results."""
    wanted = normalize_title(title)
    scored = [_score(wanted, year, r) for r in results if r.get("id") is not None]
    if not scored:
        return Resolution(None, 0.0, "search_no_candidates", None, None, 0)
    ranked = sorted(scored, key=lambda s: s.key, reverse=True)
    best = ranked[0]
    if best.similarity < NO_MATCH_BELOW:
        return Resolution(None, 0.0, "search_no_match", None, None, len(scored))
    method = {3: "search_exact_title", 2: "search_exact_original_title"}.get(
        best.title_tier, "search_fuzzy_title"
    )
    if len(ranked) == 1:
        return Resolution(best.tmdb_id, _round(best.score), method, None, None, 1)
    second = ranked[1]
    pop_total = best.popularity + second.popularity
    pop_share = second.popularity / pop_total if pop_total > 0 else 0.5
    ratio = second.score / best.score if best.score > 0 else 1.0
    claim = min(0.5, min(1.0, ratio) ** 4 * pop_share)
    return Resolution(
        tmdb_id=best.tmdb_id,
        confidence=_round(best.score * (1 - claim)),
        method=method,
        runner_up=second.tmdb_id,
        runner_up_confidence=_round(second.score * claim),
        candidates=len(scored),
    )


def _score(wanted: str, year: int | None, result: dict[str, Any]) -> _Scored:
    names = [
        normalize_title(result.get("title") or ""),
        normalize_title(result.get("original_title") or ""),
    ]
    if names[0] and names[0] == wanted:
        title_tier, similarity = 3, 1.0
    elif names[1] and names[1] == wanted:
        title_tier, similarity = 2, 1.0
    else:
        similarity = max(
            (SequenceMatcher(None, wanted, n).ratio() for n in names if n), default=0.0
        )
        title_tier = 1 if similarity >= FUZZY_TIER_MIN else 0
    title_factor = 1.0 if title_tier >= 2 else similarity * (0.9 if title_tier else 0.6)
    found = _year_of(result.get("release_date"))
    distance = 0
    if year is None or found is None:
        year_tier, year_factor = 1, (0.8 if year is None else 0.6)
    else:
        distance = abs(found - year)
        year_tier = {0: 3, 1: 2}.get(distance, 0)
        year_factor = {0: 1.0, 1: 0.85}.get(distance, max(0.1, 0.5 - 0.1 * distance))
    return _Scored(
        tmdb_id=int(result["id"]),
        title_tier=title_tier,
        year_tier=year_tier,
        year_distance=distance,
        similarity=similarity,
        popularity=max(0.0, float(result.get("popularity") or 0.0)),
        score=title_factor * year_factor,
    )


def _year_of(release_date: Any) -> int | None:
    text = str(release_date or "")
    return int(text[:4]) if len(text) >= 4 and text[:4].isdigit() else None


def _round(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)
