"""Resolve a (title, year) to a TMDb id through search, with a confidence and a runner-up.

Titles are compared under :func:`match_key` (case, accents, punctuation, articles, numerals,
abbreviations and British spellings folded) against a candidate's title, original title and
alternative titles. Tiers, strongest first: exact title, exact original/alternative title,
main title or subtitle only ("Clue" = "Clue: The Movie"), close fuzzy match, the rest.

A candidate is *acceptable* only when its release year is at most one year from the wanted
year (or either year is unknown), a main-title/subtitle match has the same year, and the title
is at least a close fuzzy match. When no candidate is acceptable the film is refused: no id,
but the best candidate, its confidence and the reason are kept for the member to confirm
(``lbx unmatched`` / ``lbx match``). A remake decades away is never used as data.

Ranking among candidates: acceptable first, title tier group, year tier (same year, one year
off, unknown, further), closer year, exact tier, literal title match, fuzzy similarity, then
popularity to break ties.

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

from lbx_orchestration.core.tmdb.base import TmdbError, TmdbSource
from lbx_orchestration.core.tmdb.normalize import match_key, normalize_title, partial_keys

FUZZY_TIER_MIN = 0.85  # similarity for a "close" title (typos, subtitles dropped ...)
NO_MATCH_BELOW = 0.5  # best similarity under this: no film is returned
AMBIGUITY_RATIO = 0.5  # runner-up confidence >= this share of the winner's: ambiguous
MAX_YEAR_DISTANCE = 1  # a candidate further from the wanted year is never accepted
ALT_TITLE_LOOKUPS = 3  # live search: candidates whose alternative titles are fetched

EXACT, ORIGINAL, PARTIAL, CLOSE, OTHER = 4, 3, 2, 1, 0
REFUSED = "refused"


@dataclass(frozen=True)
class Resolution:
    tmdb_id: int | None
    confidence: float
    method: str
    runner_up: int | None
    runner_up_confidence: float | None
    candidates: int
    # a refused film: the best candidate, its title and year, and why it was not used
    candidate_id: int | None = None
    candidate_title: str | None = None
    candidate_year: int | None = None
    reason: str | None = None

    @property
    def is_ambiguous(self) -> bool:
        if self.tmdb_id is None or self.runner_up_confidence is None:
            return False
        return self.runner_up_confidence >= AMBIGUITY_RATIO * self.confidence

    @property
    def is_refused(self) -> bool:
        return self.method == REFUSED


@dataclass(frozen=True)
class _Scored:
    tmdb_id: int
    title: str
    year: int | None
    wanted_year: int | None
    title_tier: int  # EXACT, ORIGINAL (original or alternative title), PARTIAL, CLOSE, OTHER
    matched_by: str  # title, original_title, alternative_title, partial_title, fuzzy
    literal: bool  # the titles agree before match_key's folding too
    year_tier: int  # 3 same, 2 one off, 1 unknown, 0 further
    year_distance: int  # 0 when unknown
    similarity: float
    popularity: float
    score: float

    @property
    def refusal(self) -> str | None:
        """Why this candidate cannot be used as data, or None when it can."""
        if self.year_tier == 0:
            return f"released {self.year}, {self.year_distance} years from {self.wanted_year}: more than one year off"
        if self.title_tier == PARTIAL and self.year_tier != 3:
            return "only the main title or subtitle matches, and not in the same year"
        if self.title_tier == OTHER:
            return f"title too different (similarity {self.similarity:.2f})"
        return None

    @property
    def key(self) -> tuple[int, int, int, int, int, int, float, float]:
        group = 2 if self.title_tier >= ORIGINAL else (1 if self.title_tier > OTHER else 0)
        return (
            self.refusal is None,
            group,
            self.year_tier,
            -self.year_distance,
            self.title_tier,
            self.literal,
            self.similarity,
            self.popularity,
        )


def resolve_by_search(source: TmdbSource, title: str, year: int | None) -> Resolution:
    """Search (with the year, then without it to find candidates to report), rank, and, on a
    live source, look at the alternative titles of the leading candidates when no title matched
    exactly."""
    if not title or not match_key(title):
        raise ValueError(f"cannot resolve an empty title: {title!r}")
    results = source.search_movie(title, year)
    if not results and year is not None:
        results = source.search_movie(title, None)  # only ever reported: see MAX_YEAR_DISTANCE
    resolution = rank_candidates(title, year, results)
    lookup = getattr(source, "alternative_titles", None)
    if (
        lookup is not None
        and getattr(source, "kind", "") == "live"
        and resolution.method not in ("search_exact_title", "search_exact_original_title", "search_alternative_title")
    ):
        enriched = _with_alternative_titles(lookup, year, results)
        if enriched is not None:
            resolution = rank_candidates(title, year, enriched)
    return resolution


def _with_alternative_titles(
    lookup: Any, year: int | None, results: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    near = [
        r
        for r in results
        if r.get("id") is not None
        and (
            year is None or (found := _year_of(r.get("release_date"))) is None or abs(found - year) <= MAX_YEAR_DISTANCE
        )
    ]
    if not near:
        return None
    chosen = {int(r["id"]) for r in sorted(near, key=lambda r: -float(r.get("popularity") or 0))[:ALT_TITLE_LOOKUPS]}
    out = []
    for r in results:
        if r.get("id") is not None and int(r["id"]) in chosen:
            try:
                titles = list(lookup(int(r["id"])))
            except TmdbError:
                titles = []
            r = {**r, "alternative_titles": [*(r.get("alternative_titles") or []), *titles]}
        out.append(r)
    return out


def rank_candidates(title: str, year: int | None, results: list[dict[str, Any]]) -> Resolution:
    """The pure part of :func:`resolve_by_search`: pick among search results."""
    wanted = match_key(title)
    wanted_parts = partial_keys(title)
    literal = normalize_title(title)
    scored = [_score(wanted, wanted_parts, literal, year, r) for r in results if r.get("id") is not None]
    if not scored:
        return Resolution(None, 0.0, "search_no_candidates", None, None, 0)
    ranked = sorted(scored, key=lambda s: s.key, reverse=True)
    best = ranked[0]
    if best.similarity < NO_MATCH_BELOW and best.title_tier < PARTIAL:
        return Resolution(None, 0.0, "search_no_match", None, None, len(scored))
    second = ranked[1] if len(ranked) > 1 else None
    if best.refusal is not None:
        return Resolution(
            tmdb_id=None,
            confidence=_round(best.score),
            method=REFUSED,
            runner_up=second.tmdb_id if second else None,
            runner_up_confidence=_round(second.score) if second else None,
            candidates=len(scored),
            candidate_id=best.tmdb_id,
            candidate_title=best.title,
            candidate_year=best.year,
            reason=best.refusal,
        )
    method = {
        "title": "search_exact_title",
        "original_title": "search_exact_original_title",
        "alternative_title": "search_alternative_title",
        "partial_title": "search_partial_title",
    }.get(best.matched_by, "search_fuzzy_title")
    if second is None:
        return Resolution(best.tmdb_id, _round(best.score), method, None, None, 1)
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


def _title_match(wanted: str, wanted_parts: set[str], result: dict[str, Any]) -> tuple[int, str, float]:
    title = result.get("title") or ""
    others = [("original_title", result.get("original_title") or "")] + [
        ("alternative_title", t) for t in (result.get("alternative_titles") or []) if t
    ]
    if title and match_key(title) == wanted:
        return EXACT, "title", 1.0
    for kind, name in others:
        if match_key(name) == wanted:
            return ORIGINAL, kind, 1.0
    for name in [title, *(n for _, n in others)]:
        if name and (wanted in partial_keys(name) or match_key(name) in wanted_parts):
            return PARTIAL, "partial_title", 1.0
    similarity = max(
        (SequenceMatcher(None, wanted, match_key(n)).ratio() for n in [title, *(n for _, n in others)] if n),
        default=0.0,
    )
    return (CLOSE if similarity >= FUZZY_TIER_MIN else OTHER), "fuzzy", similarity


def _score(wanted: str, wanted_parts: set[str], literal: str, year: int | None, result: dict[str, Any]) -> _Scored:
    title_tier, matched_by, similarity = _title_match(wanted, wanted_parts, result)
    title_factor = {EXACT: 1.0, ORIGINAL: 1.0, PARTIAL: 0.9}.get(
        title_tier, similarity * (0.9 if title_tier == CLOSE else 0.6)
    )
    found = _year_of(result.get("release_date"))
    distance = 0
    if year is None or found is None:
        year_tier, year_factor = 1, (0.8 if year is None else 0.6)
    else:
        distance = abs(found - year)
        year_tier = {0: 3, 1: 2}.get(distance, 0)
        year_factor = {0: 1.0, 1: 0.85}.get(distance, max(0.1, 0.5 - 0.1 * distance))
    names = [result.get("title"), result.get("original_title"), *(result.get("alternative_titles") or [])]
    return _Scored(
        tmdb_id=int(result["id"]),
        title=str(result.get("title") or result.get("original_title") or ""),
        year=found,
        wanted_year=year,
        title_tier=title_tier,
        matched_by=matched_by,
        literal=any(n and normalize_title(n) == literal for n in names),
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
