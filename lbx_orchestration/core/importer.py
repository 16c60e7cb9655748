"""Import one Letterboxd export into the warehouse: the path shared by `lbx import`, the inbox
and the web upload.

Three phases, so the warehouse is held only while writing: ``prepare_import`` reads (and
refuses) the export with no database at all; ``resolve_import`` gives its new films TMDb ids
(reading the known ones first); ``write_import`` writes raw entries, the ledger row, the user's
observations for one scrape date and the new resolutions in ONE transaction, so a failure
leaves every table as it was. An export older than the one already imported for that member
is refused: a newer export always wins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import polars as pl

from lbx_orchestration.core.catalog import (
    RESOLUTION_SCHEMA,
    match_summary,
    override_resolutions,
    read_overrides,
    resolve_films,
    reusable,
    tv_entries,
    tv_summary,
    upgrade_resolution_table,
)
from lbx_orchestration.core.letterboxd.errors import ExportError
from lbx_orchestration.core.letterboxd.export import LetterboxdExport, read_export
from lbx_orchestration.core.letterboxd.lists import LIST_SCHEMA, read_lists
from lbx_orchestration.core.observations import export_observations
from lbx_orchestration.core.tables import EXPORT_ENTRIES, EXPORT_IMPORTS, EXPORT_LISTS, RESOLUTION, REVIEWS
from lbx_orchestration.core.tmdb.base import TmdbSource
from lbx_orchestration.core.warehouse import read_frame, registered, replace_many, table_exists, transaction

EXPORT_SOURCE = "letterboxd_export"

IMPORTS_SCHEMA: dict[str, pl.DataType] = {
    "username": pl.Utf8(),
    "source_name": pl.Utf8(),
    "content_sha256": pl.Utf8(),
    "scrape_date": pl.Date(),
    "imported_at": pl.Datetime("us"),
    "exported_at": pl.Datetime("us"),
    "status": pl.Utf8(),
}

Status = Literal["imported", "updated", "unchanged"]


class OlderExport(ExportError):
    """The export predates the one already imported for this member: importing it would lose rows."""


@dataclass(frozen=True)
class ImportReport:
    username: str
    status: Status
    content_sha256: str
    scrape_date: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    films: int = 0  # distinct film keys (a boxd.it code, or title + year for diary rows), TV left out
    resolved: int = 0  # of those, how many have a TMDb id
    resolved_share: float = 0.0
    tmdb_films: int = 0  # distinct TMDb ids among them
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (matched, films)
    tv: int = 0  # distinct entries resolved as TV (miniseries, episodes): no films, never matched to one
    tv_by_kind: dict[str, int] = field(default_factory=dict)  # kind -> TV entries
    # one film logged in the diary (keyed by title + year) and rated (keyed by its boxd.it code)
    # is two film keys: these count it once, by TMDb id, or by title and year when unmatched
    distinct_films: int = 0
    distinct_matched: int = 0

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
            "tv_entries": self.tv,
            "distinct_films": self.distinct_films,
            "distinct_matched": self.distinct_matched,
            **{f"{kind}_matched": m for kind, (m, _) in self.by_kind.items()},
            **{f"{kind}_films": n for kind, (_, n) in self.by_kind.items()},
            "rated_matched_share": round(self.share("rating")[2], 4),
            "watched_matched_share": round(self.share("watched")[2], 4),
        }


@dataclass(frozen=True)
class PreparedImport:
    """An export read and turned into observations; nothing touched the warehouse yet."""

    export: LetterboxdExport
    scrape_date: dt.date
    observations: pl.DataFrame
    films: pl.DataFrame  # film_key, film_title, film_year, tmdb_id: one row per film
    lists: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LIST_SCHEMA))  # lists/*.csv

    @property
    def username(self) -> str:
        return self.export.username


@dataclass(frozen=True)
class LedgerEntry:
    content_sha256: str
    exported_at: dt.datetime | None
    imported_at: dt.datetime
    source_name: str | None = None
    removes: int = 0  # stored entries (kind, film) the export being imported does not hold


@dataclass(frozen=True)
class ResolvedImport:
    prepared: PreparedImport
    previous: LedgerEntry | None
    known: pl.DataFrame  # resolutions already in the warehouse
    resolved: pl.DataFrame  # new resolutions to write


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def prepare_import(
    path: str | os.PathLike[str], username: str | None = None, scrape_date: dt.date | None = None
) -> PreparedImport:
    """Read the export (raises ExportError naming the file and line for a bad one)."""
    export = read_export(path, username)
    scrape_date = scrape_date or _today()
    observations = export_observations(export.entries, scrape_date)
    films = observations.group_by("film_key", maintain_order=True).agg(
        pl.col("film_title").first(), pl.col("film_year").first(), pl.col("tmdb_id").max()
    )
    return PreparedImport(export, scrape_date, observations, films, read_lists(path))


def last_import(con: duckdb.DuckDBPyConnection, username: str) -> LedgerEntry | None:
    if not table_exists(con, EXPORT_IMPORTS):
        return None
    columns = {r[0] for r in con.execute(f"describe {EXPORT_IMPORTS}").fetchall()}
    exported = "exported_at" if "exported_at" in columns else "null::timestamp"
    rows = con.execute(
        f"select content_sha256, {exported}, imported_at, source_name from {EXPORT_IMPORTS} where lower(username) = ? "
        "order by imported_at desc limit 1",
        [username.lower()],
    ).fetchall()
    return LedgerEntry(*rows[0]) if rows else None


def removed_entries(con: duckdb.DuckDBPyConnection, prepared: PreparedImport) -> int:
    """How many of the member's stored entries (a kind of log and a film) this export lacks."""
    if not table_exists(con, EXPORT_ENTRIES):
        return 0
    new = prepared.export.entries.select("kind", "film_key").unique()
    with registered(con, {"_lbx_new_entries": new}):
        return int(
            con.execute(
                f"""select count(*) from (
                    select distinct kind, film_key from {EXPORT_ENTRIES} where lower(username) = ?
                    except select kind, film_key from _lbx_new_entries)""",
                [prepared.username],
            ).fetchall()[0][0]
        )


def _with_removals(con: duckdb.DuckDBPyConnection, prepared: PreparedImport, entry: LedgerEntry | None):
    if entry is None or entry.content_sha256 == prepared.export.content_sha256:
        return entry
    return dataclasses.replace(entry, removes=removed_entries(con, prepared))


def check_newer(prepared: PreparedImport, previous: LedgerEntry | None) -> None:
    """Refuse an export older than the member's last import: it would roll their history back."""
    new, old = prepared.export.exported_at, previous.exported_at if previous else None
    if new is not None and old is not None and new < old:
        raise OlderExport(
            f"{prepared.export.source_name}: this export of {prepared.username} was made {new:%Y-%m-%d %H:%M}, "
            f"before the one already imported ({_named(previous)}{old:%Y-%m-%d %H:%M}, on "
            f"{previous.imported_at:%Y-%m-%d}); importing it would lose newer ratings, so nothing was changed. "
            "Import your newest export."
        )
    if previous is not None and previous.removes and not _later(new, old):
        when = f"its newest entry is from {new:%Y-%m-%d}" if new is not None else "it carries no date"
        raise OlderExport(
            f"{prepared.export.source_name}: this export of {prepared.username} is not newer than the one "
            f"already imported ({_named(previous)}imported {previous.imported_at:%Y-%m-%d}): {when}, and it "
            f"lacks {previous.removes:,} of the stored entries. Importing it would remove them, so nothing was "
            "changed. Import the export Letterboxd made most recently (its file name, "
            f"letterboxd-{prepared.username}-<date>-utc.zip, carries its date)."
        )


def _named(previous: LedgerEntry) -> str:
    return f"{previous.source_name}, made " if previous.source_name else ""


def _known_resolutions(con: duckdb.DuckDBPyConnection, keys: list[str]) -> pl.DataFrame:
    if not keys or not table_exists(con, RESOLUTION):
        return pl.DataFrame(schema=RESOLUTION_SCHEMA)
    with registered(con, {"_lbx_keys": pl.DataFrame({"film_key": keys})}):
        return read_frame(con, f"select r.* from {RESOLUTION} r join _lbx_keys k using (film_key)")


def read_state(con: duckdb.DuckDBPyConnection, prepared: PreparedImport) -> tuple[LedgerEntry | None, pl.DataFrame]:
    """What the warehouse already knows: the member's last import and the known resolutions that
    still hold, with the members' corrections (``lbx match``) applied: those win over search."""
    known = _known_resolutions(con, prepared.films["film_key"].to_list())
    overrides = read_overrides(con)
    fixed = override_resolutions(prepared.films, overrides)
    known = reusable(known, overrides).join(fixed.select("film_key"), on="film_key", how="anti")
    previous = _with_removals(con, prepared, last_import(con, prepared.username))
    return previous, pl.concat([known, fixed])


def _default_source() -> TmdbSource:
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    return TmdbSnapshot()


def resolve_import(
    prepared: PreparedImport,
    previous: LedgerEntry | None,
    known: pl.DataFrame,
    tmdb_source: TmdbSource | None = None,
) -> ResolvedImport:
    """Refuse an older export, then resolve the films the warehouse has not resolved yet (by
    this resolver: ``known`` holds only the current version's, so an export imported again after
    the rules changed has its films resolved again)."""
    check_newer(prepared, previous)
    new_films = prepared.films.join(known.select("film_key"), on="film_key", how="anti")
    resolved = (
        resolve_films(new_films, tmdb_source or _default_source())
        if new_films.height
        else pl.DataFrame(schema=RESOLUTION_SCHEMA)
    )
    return ResolvedImport(prepared, previous, known, resolved)


def write_import(
    con: duckdb.DuckDBPyConnection,
    plan: ResolvedImport,
    extra: dict[str, tuple[pl.DataFrame, dict[str, Any] | None]] | None = None,
) -> ImportReport:
    """Write one import in one transaction (nothing when the same content is already there).
    ``extra`` writes (table -> frame, where) go into the same transaction (a new member's key)."""
    prepared = plan.prepared
    export, user = prepared.export, prepared.username
    current = last_import(con, user)  # another import may have landed since read_state
    if current is not None and (plan.previous is None or current.imported_at != plan.previous.imported_at):
        check_newer(prepared, _with_removals(con, prepared, current))
    resolutions = pl.concat([plan.known, plan.resolved], how="vertical_relaxed")
    unchanged = current is not None and current.content_sha256 == export.content_sha256
    lists = {EXPORT_LISTS: (list_rows(prepared), {"username": [user]})}  # not in the content hash
    redone = {RESOLUTION: (plan.resolved, {"film_key": plan.resolved["film_key"].to_list()})}
    if unchanged and not _later(export.exported_at, current.exported_at):
        replace_many(con, {**lists, **redone})
        return _report(prepared, "unchanged", resolutions)
    status: Status = "imported" if current is None else "unchanged" if unchanged else "updated"
    ledger = pl.DataFrame(
        {
            "username": [user],
            "source_name": [export.source_name],
            "content_sha256": [export.content_sha256],
            "scrape_date": [prepared.scrape_date],
            "imported_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            "exported_at": [export.exported_at],
            "status": [status],
        },
        schema=IMPORTS_SCHEMA,
    )
    if unchanged:  # the same content exported again later: only the ledger learns of it
        replace_many(con, {EXPORT_IMPORTS: (ledger, None), **lists, **redone})
        return _report(prepared, status, resolutions)
    merge_case_variants(con, user)
    entries = export.entries.with_columns(pl.lit(prepared.scrape_date, pl.Date).alias("scrape_date"))
    # new resolutions, and corrections: each replaces its film's row (stale rows included)
    fresh = pl.concat([plan.resolved, plan.known.filter(pl.col("method") == "override")], how="vertical_relaxed")
    upgrade_resolution_table(con, RESOLUTION)
    replace_many(
        con,
        {  # every write of one import in one transaction
            EXPORT_ENTRIES: (entries, {"username": [user]}),
            EXPORT_IMPORTS: (ledger, None),  # the ledger keeps every file ever imported
            REVIEWS: (
                prepared.observations,
                {"scrape_date": [prepared.scrape_date], "source": [EXPORT_SOURCE], "user_key": [f"letterboxd:{user}"]},
            ),
            RESOLUTION: (fresh, {"film_key": fresh["film_key"].to_list()}),
            **lists,
            **(extra or {}),
        },
    )
    return _report(prepared, status, resolutions)


def list_rows(prepared: PreparedImport) -> pl.DataFrame:
    """The export's lists as raw.letterboxd_lists rows: the member's name, then the list's rows."""
    return prepared.lists.select(pl.lit(prepared.username, pl.Utf8).alias("username"), *LIST_SCHEMA)


def merge_case_variants(con: duckdb.DuckDBPyConnection, user: str) -> None:
    """Rows an older lbx stored under another case of this name (``DavidBlue``) become this
    member's, so a warehouse built before names were folded to lower case keeps one member."""
    if not table_exists(con, EXPORT_IMPORTS):
        return
    found = con.execute(
        f"select count(*) from {EXPORT_IMPORTS} where lower(username) = ? and username <> ?", [user, user]
    ).fetchall()[0][0]
    if not found:
        return
    with transaction(con):
        for table in (EXPORT_IMPORTS, EXPORT_ENTRIES):
            if table_exists(con, table):
                con.execute(
                    f"update {table} set username = ? where lower(username) = ? and username <> ?", [user, user, user]
                )
        if table_exists(con, REVIEWS):
            con.execute(
                f"update {REVIEWS} set username = ?, user_key = ? where lower(user_key) = ? and user_key <> ?",
                [user, f"letterboxd:{user}", f"letterboxd:{user}", f"letterboxd:{user}"],
            )


def _later(new: dt.datetime | None, old: dt.datetime | None) -> bool:
    return new is not None and (old is None or new > old)


def _counts(export: LetterboxdExport) -> dict[str, int]:
    summary = export.summary()
    return {k: int(summary.get(k, 0)) for k in ("rated", "watched", "watchlist", "diary", "likes", "reviews")}


def _report(prepared: PreparedImport, status: Status, resolutions: pl.DataFrame) -> ImportReport:
    tv = tv_entries(resolutions).select("film_key").unique()
    films = prepared.films.join(tv, on="film_key", how="anti")
    ids = films.join(resolutions.select("film_key", pl.col("tmdb_id").alias("_rid")), on="film_key", how="left")
    resolved_ids = ids.select(pl.coalesce("tmdb_id", "_rid")).to_series().drop_nulls()
    resolved_keys = int(ids.filter(pl.coalesce("tmdb_id", "_rid").is_not_null()).height)
    return ImportReport(
        username=prepared.username,
        status=status,
        content_sha256=prepared.export.content_sha256,
        scrape_date=prepared.scrape_date,
        counts=_counts(prepared.export),
        films=films.height,
        resolved=resolved_keys,
        resolved_share=resolved_keys / films.height if films.height else 1.0,
        tmdb_films=int(resolved_ids.n_unique()),
        by_kind=match_summary(prepared.observations, resolutions),
        tv=prepared.films.height - films.height,
        tv_by_kind=tv_summary(prepared.observations, resolutions),
        distinct_films=int(resolved_ids.n_unique()) + _unmatched_titles(ids),
        distinct_matched=int(resolved_ids.n_unique()),
    )


def _unmatched_titles(ids: pl.DataFrame) -> int:
    """Distinct (title, year) among film keys without a TMDb id, leaving out those another key
    of the same title and year has a TMDb id for (the same film)."""
    found = pl.coalesce("tmdb_id", "_rid").is_not_null()
    titles = ids.select(pl.col("film_title").str.strip_chars().str.to_lowercase(), "film_year", found.alias("_found"))
    matched = titles.filter(pl.col("_found")).select("film_title", "film_year")
    unmatched = titles.filter(~pl.col("_found")).select("film_title", "film_year").unique()
    return unmatched.join(matched, on=["film_title", "film_year"], how="anti", nulls_equal=True).height


def import_export(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike[str],
    username: str | None = None,
    scrape_date: dt.date | None = None,
    tmdb_source: TmdbSource | None = None,
) -> ImportReport:
    """All three phases on one connection (for callers that already hold the warehouse).

    Raises ExportError (nothing written) for a bad or older export. Importing the same content
    again for the same user writes nothing and reports ``unchanged``.
    """
    prepared = prepare_import(path, username, scrape_date)
    previous, known = read_state(con, prepared)
    return write_import(con, resolve_import(prepared, previous, known, tmdb_source))
