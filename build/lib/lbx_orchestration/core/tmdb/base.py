"""One interface for TMDb: the live HTTP client and the bundled snapshot both honour it."""

from __future__ import annotations

from typing import Any, Protocol


class TmdbError(RuntimeError):
    """TMDb answered something lbx cannot use (the message names the cause)."""


class TmdbAuthError(TmdbError):
    """TMDb refused the credentials (401): stop at once."""


class TmdbSource(Protocol):
    kind: str  # "live" or "snapshot"

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        """TMDb's movie-details shape (credits, keywords, genres ...); None when TMDb has no such film."""
        ...

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """TMDb's search results (id, title, original_title, release_date, popularity ...)."""
        ...
