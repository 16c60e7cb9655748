"""TV entries in Letterboxd logs: miniseries and episodes sit among the films ("Baby Reindeer"
(2024), "Black Mirror: San Junipero" (2016)).

TMDb keeps TV apart from films, with ids of its own: TV show 1399 is not film 1399. A film
search for a TV title either finds nothing or lands on a film with a similar name, so TMDb TV
(``/search/tv``) is asked whenever the film search found no exact-ish title: a show with the
same name first aired within a year of the entry, or, for "Series: Episode", the series itself
first aired no later than the episode, makes the entry TV. A film matched by its exact title
(or original or alternative title) is never asked about: the film wins.

Only a live TMDb source answers TV searches: the bundled snapshot holds films alone, so offline
a TV entry cannot be told from a film TMDb's catalogue lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lbx_orchestration.core.tmdb.base import TmdbAuthError, TmdbError, TmdbRetryLater, TmdbSource
from lbx_orchestration.core.tmdb.normalize import match_key
from lbx_orchestration.core.tmdb.resolve import MAX_YEAR_DISTANCE, Resolution, _year_of

#: film search methods that matched the title itself: TV is not asked about these
FILM_EXACT_METHODS = frozenset({"search_exact_title", "search_exact_original_title", "search_alternative_title"})
TV_SEARCH = "tv_search"
TV_EPISODE_SEARCH = "tv_episode_search"
TV_SOURCE = "tv_source"


@dataclass(frozen=True)
class TvMatch:
    tmdb_tv_id: int
    name: str
    first_air_year: int | None
    confidence: float
    method: str  # TV_SEARCH (the show's own name) or TV_EPISODE_SEARCH (an episode of the series)


def wants_tv(film: Resolution) -> bool:
    """True when the film search's answer leaves room for TV: no film, or one not matched by title."""
    return film.tmdb_id is None or film.method not in FILM_EXACT_METHODS


def series_title(title: str) -> str | None:
    """ "Black Mirror: San Junipero" -> "Black Mirror"; None for a title without a series part."""
    head, sep, tail = title.partition(":")
    return head.strip() if sep and head.strip() and tail.strip() and match_key(head) else None


def match_show(title: str, year: int | None, results: list[dict[str, Any]]) -> TvMatch | None:
    """The show named ``title`` (name or original name) that first aired within a year of
    ``year``: the closest year, then the most popular; None when no show qualifies."""
    wanted = match_key(title)
    found = []
    for r in _shows(results):
        if wanted not in {match_key(r.get("name") or ""), match_key(r.get("original_name") or "")}:
            continue
        aired = _year_of(r.get("first_air_date"))
        if year is not None and (aired is None or abs(aired - year) > MAX_YEAR_DISTANCE):
            continue
        distance = abs(aired - year) if year is not None and aired is not None else 0
        found.append((distance, -float(r.get("popularity") or 0), r, aired))
    if not found:
        return None
    distance, _, best, aired = min(found, key=lambda f: f[:2])
    confidence = 1.0 if distance == 0 and year is not None else 0.85
    return TvMatch(int(best["id"]), str(best.get("name") or best.get("original_name")), aired, confidence, TV_SEARCH)


def match_episode(title: str, year: int | None, results: list[dict[str, Any]]) -> TvMatch | None:
    """For "Series: Episode": the show named like the series part that first aired no later
    than the episode's year (an episode never airs before its series)."""
    series = series_title(title)
    if series is None:
        return None
    wanted = match_key(series)
    found = []
    for r in _shows(results):
        if wanted not in {match_key(r.get("name") or ""), match_key(r.get("original_name") or "")}:
            continue
        aired = _year_of(r.get("first_air_date"))
        if year is not None and (aired is None or aired > year):
            continue
        found.append((-float(r.get("popularity") or 0), r, aired))
    if not found:
        return None
    _, best, aired = min(found, key=lambda f: f[0])
    name = str(best.get("name") or best.get("original_name"))
    return TvMatch(int(best["id"]), name, aired, 0.9, TV_EPISODE_SEARCH)


def resolve_tv(source: TmdbSource, title: str, year: int | None) -> TvMatch | None:
    """Ask TMDb TV about one entry (at most two searches); None when the source has no TV
    search (the snapshot) or no show fits."""
    lookup = getattr(source, "search_tv", None)
    if lookup is None or not match_key(title):
        return None

    def search(query: str, aired: int | None) -> list[dict[str, Any]]:
        # a TV search TMDb cannot answer leaves the entry an unmatched film; a refused key or a
        # long rate limit stops the import as the film search would
        try:
            return lookup(query, aired)
        except (TmdbAuthError, TmdbRetryLater):
            raise
        except TmdbError:
            return []

    found = match_show(title, year, search(title, year))
    if found is not None:
        return found
    series = series_title(title)
    if series is not None:
        return match_episode(title, year, search(series, None))
    return match_show(title, year, search(title, None)) if year is not None else None


def tv_reason(match: TvMatch, film: Resolution) -> str:
    what = "an episode of the TV show" if match.method == TV_EPISODE_SEARCH else "the TV show"
    aired = match.first_air_year or "?"
    film_part = (
        f"; the film search's best was #{film.tmdb_id or film.candidate_id}, not matched by title"
        if (film.tmdb_id or film.candidate_id)
        else ""
    )
    return f"{what} {match.name} (first aired {aired}) #tv/{match.tmdb_tv_id} on TMDb{film_part}"


def _shows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if isinstance(r, dict) and r.get("id") is not None]
