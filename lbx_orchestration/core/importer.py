"""Import one Letterboxd export into the warehouse: the path shared by `lbx import` and the inbox.

The export is read (and refused) before anything is written; the writes (raw entries, the
imports ledger, the user's observations for one scrape date, and resolutions of films not yet
resolved) happen in one transaction, so a failure leaves every table as it was.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import polars as pl

from lbx_orchestration.core.catalog import (
    RESOLUTION_SCHEMA,
    match_summary,
    read_overrides,
    resolve_films,
    reusable,
    upgrade_resolution_table,
)
from lbx_orchestration.core.letterboxd.export import LetterboxdExport, read_export
from lbx_orchestration.core.observations import export_observations
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.warehouse import read_frame, replace_many, table_exists

EXPORT_ENTRIES = "raw.letterboxd_export_entries"
EXPORT_IMPORTS = "raw.letterboxd_imports"
REVIEWS = "ingest.reviews"
RESOLUTION = "metadata.film_resolution"
EXPORT_SOURCE = "letterboxd_export"

IMPORTS_SCHEMA: dict[str, pl.DataType] = {
    "username": pl.Utf8(),
    "source_name": pl.Utf8(),
    "content_sha256": pl.Utf8(),
    "scrape_date": pl.Date(),
    "imported_at": pl.Datetime("us"),
}

Status = Literal["imported", "updated", "unchanged"]


@dataclass(frozen=True)
class ImportReport:
    username: str
    status: Status
    content_sha256: str
    scrape_date: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    films: int = 0  # distinct film keys (a boxd.it code, or title + year for diary rows)
    resolved: int = 0  # of those, how many have a TMDb id
    resolved_share: float = 0.0
    tmdb_films: int = 0  # distinct TMDb ids among them
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (matched, films)

    def share(self, kind: str) -> tuple[int, int, float]:
        """(matched, films, share) for one kind of observation (rating, watched, diary ...)."""
        matched, total = self.by_kind.get(kind, (0, 0))
        return matched, total, matched / total if total else 1.0

    @property
    def user_key(self) -> str:
        return f"letterboxd:{self.username}"

    def as_metadata(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "status": self.status,
            "content_sha256": self.content_sha256,
            "scrape_date": self.scrape_date.isoformat(),
            **{f"count_{k}": v for k, v in self.counts.items()},
            "films": self.films,
            "resolved": self.resolved,
            "resolved_share": round(self.resolved_share, 4),
            "tmdb_films": self.tmdb_films,
            **{f"{kind}_matched": m for kind, (m, _) in self.by_kind.items()},
            **{f"{kind}_films": n for kind, (_, n) in self.by_kind.items()},
            "rated_matched_share": round(self.share("rating")[2], 4),
            "watched_matched_share": round(self.share("watched")[2], 4),
        }


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _previous_sha(con: duckdb.DuckDBPyConnection, username: str) -> str | None:
    if not table_exists(con, EXPORT_IMPORTS):
        return None
    rows = con.execute(
        f"select content_sha256 from {EXPORT_IMPORTS} where username = ? "
        "order by imported_at desc limit 1",
        [username],
    ).fetchall()
    return rows[0][0] if rows else None


def _user_films(observations: pl.DataFrame) -> pl.DataFrame:
    return observations.group_by("film_key", maintain_order=True).agg(
        pl.col("film_title").first(), pl.col("film_year").first(), pl.col("tmdb_id").max()
    )


def _known_resolutions(con: duckdb.DuckDBPyConnection, keys: list[str]) -> pl.DataFrame:
    if not keys or not table_exists(con, RESOLUTION):
        return pl.DataFrame(schema=RESOLUTION_SCHEMA)
    con.register("_lbx_keys", pl.DataFrame({"film_key": keys}).to_arrow())
    try:
        return read_frame(
            con,
            f"select r.* from {RESOLUTION} r join _lbx_keys k using (film_key)",
        )
    finally:
        con.unregister("_lbx_keys")


def _default_source() -> TmdbSource:
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    return TmdbSnapshot()


def _counts(export: LetterboxdExport) -> dict[str, int]:
    summary = export.summary()
    return {k: int(summary.get(k, 0)) for k in
            ("rated", "watched", "watchlist", "diary", "likes", "reviews")}


def _report(export: LetterboxdExport, status: Status, scrape_date: dt.date,
            films: pl.DataFrame, resolutions: pl.DataFrame, observations: pl.DataFrame) -> ImportReport:
    ids = films.join(resolutions.select("film_key", pl.col("tmdb_id").alias("_rid")),
                     on="film_key", how="left")
    resolved_ids = ids.select(pl.coalesce("tmdb_id", "_rid")).to_series().drop_nulls()
    resolved_keys = int(ids.filter(pl.coalesce("tmdb_id", "_rid").is_not_null()).height)
    return ImportReport(
        username=export.username,
        status=status,
        content_sha256=export.content_sha256,
        scrape_date=scrape_date,
        counts=_counts(export),
        films=films.height,
        resolved=resolved_keys,
        resolved_share=resolved_keys / films.height if films.height else 1.0,
        tmdb_films=int(resolved_ids.n_unique()),
        by_kind=match_summary(observations, resolutions),
    )


def import_export(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike[str],
    username: str | None = None,
    scrape_date: dt.date | None = None,
    tmdb_source: TmdbSource | None = None,
) -> ImportReport:
    """Import the export at ``path`` for scrape date ``scrape_date`` (default: today, UTC).

    Raises ExportError (nothing written) for a bad export. Importing the same content again
    for the same user writes nothing and reports ``unchanged``.
    """
    export = read_export(path, username)
    scrape_date = scrape_date or _today()
    observations = export_observations(export.entries, scrape_date)
    films = _user_films(observations)
    known = _known_resolutions(con, films["film_key"].to_list())
    previous = _previous_sha(con, export.username)
    if previous == export.content_sha256:
        return _report(export, "unchanged", scrape_date, films, known, observations)

    overrides = read_overrides(con)  # the member's corrections win over search
    known = reusable(known, overrides)
    new_films = films.join(known.select("film_key"), on="film_key", how="anti")
    resolved = (
        resolve_films(new_films, tmdb_source or _default_source(), overrides=overrides)
        if new_films.height
        else pl.DataFrame(schema=RESOLUTION_SCHEMA)
    )
    entries = export.entries.with_columns(pl.lit(scrape_date, pl.Date).alias("scrape_date"))
    ledger = pl.DataFrame(
        {
            "username": [export.username],
            "source_name": [export.source_name],
            "content_sha256": [export.content_sha256],
            "scrape_date": [scrape_date],
            "imported_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        },
        schema=IMPORTS_SCHEMA,
    )
    user = export.username
    upgrade_resolution_table(con, RESOLUTION)
    replace_many(con, {  # every write of one import in one transaction
        EXPORT_ENTRIES: (entries, {"username": [user]}),
        EXPORT_IMPORTS: (ledger, {"username": [user]}),
        REVIEWS: (observations, {"scrape_date": [scrape_date], "source": [EXPORT_SOURCE],
                                 "user_key": [f"letterboxd:{user}"]}),
        RESOLUTION: (resolved, {"film_key": resolved["film_key"].to_list()}),
    })
    status: Status = "imported" if previous is None else "updated"
    return _report(export, status, scrape_date, films, pl.concat([known, resolved],
                                                                  how="vertical_relaxed"), observations)
