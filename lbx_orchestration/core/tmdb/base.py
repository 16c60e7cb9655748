"""One interface for TMDb: the live HTTP client and the bundled snapshot both honour it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class TmdbError(RuntimeError):
    """TMDb answered something lbx cannot use (the message names the cause)."""


class TmdbAuthError(TmdbError):
    """TMDb refused the credentials (401): stop at once."""


class TmdbRetryLater(TmdbError):
    """TMDb asked lbx to wait longer than it is willing to (429 + a long Retry-After).

    ``retry_at`` (UTC) is when TMDb said it would answer again; every later film would get
    the same answer, so a batch stops at once rather than skipping film after film.
    """

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class TmdbSource(Protocol):
    kind: str  # "live" or "snapshot"

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        """TMDb's movie-details shape (credits, keywords, genres ...); None when TMDb has no such film."""
        ...

    def search_movie(self, title: str, year: int | None = None) -> list[dict[str, Any]]:
        """TMDb's search results (id, title, original_title, release_date, popularity ...)."""
        ...
