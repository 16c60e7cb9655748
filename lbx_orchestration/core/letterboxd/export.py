"""Read a Letterboxd data export (zip or unpacked folder) into one table of entries.

Pure: reads in memory, writes nothing. Any problem raises ExportError before anything is
returned, so callers never see half an export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from lbx_orchestration.core.letterboxd.errors import ExportError, InvalidUsername
from lbx_orchestration.core.letterboxd.records import (
    count_records,
    decode_utf8,
    iter_records,
    iter_rows,
    parse_boxd_code,
    parse_date,
    parse_rating,
    parse_rewatch,
    parse_year,
)
from lbx_orchestration.core.letterboxd.sources import ExportSource, open_source
from lbx_orchestration.core.letterboxd.usernames import canonical_username, validate_username

__all__ = [
    "ENTRY_SCHEMA",
    "KINDS",
    "ExportError",
    "InvalidUsername",
    "LetterboxdExport",
    "read_export",
    "validate_username",
]

ENTRY_SCHEMA: dict[str, Any] = {
    "username": pl.Utf8,
    "kind": pl.Utf8,
    "film_name": pl.Utf8,
    "film_year": pl.Int32,
    "letterboxd_uri": pl.Utf8,
    "film_key": pl.Utf8,
    "entry_key": pl.Utf8,
    "rating": pl.Float64,
    "rewatch": pl.Boolean,
    "liked": pl.Boolean,
    "tags": pl.Utf8,
    "logged_date": pl.Date,
    "watched_date": pl.Date,
    "source_file": pl.Utf8,
    "source_line": pl.Int32,
}

_FILM = ("Date", "Name", "Year", "Letterboxd URI")
_DIARY = (*_FILM, "Rating", "Rewatch", "Tags", "Watched Date")
_REVIEW = (*_FILM, "Rating", "Rewatch", "Review", "Tags", "Watched Date")

# file -> (kind, header). In the film files the URI is the film's boxd.it code; in diary and
# reviews it is the diary entry's code.
_ENTRY_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ratings.csv": ("rating", (*_FILM, "Rating")),
    "diary.csv": ("diary", _DIARY),
    "watched.csv": ("watched", _FILM),
    "watchlist.csv": ("watchlist", _FILM),
    "likes/films.csv": ("like", _FILM),
    "reviews.csv": ("review", _REVIEW),
}
KINDS = tuple(kind for kind, _ in _ENTRY_FILES.values())
_FILM_KINDS = frozenset({"rating", "watched", "watchlist", "like"})
_SKIPPED_FOLDERS = ("deleted/", "orphaned/")
_PROFILE = "profile.csv"
# Files that mark the root of an export when we look for it inside a zip.
_ROOT_MARKERS = frozenset({*_ENTRY_FILES, _PROFILE})
_JUNK_PREFIXES = ("__MACOSX/",)
_SUMMARY_KEYS = {
    "rated": "rating",
    "watched": "watched",
    "watchlist": "watchlist",
    "diary": "diary",
    "likes": "like",
    "reviews": "review",
}
_HASH_VERSION = b"lbx-letterboxd-export-v1"


@dataclass(frozen=True, eq=False)
class LetterboxdExport:
    username: str
    entries: pl.DataFrame
    content_sha256: str
    source_name: str
    skipped: dict[str, int]
    unknown_files: tuple[str, ...]

    @property
    def exported_at(self) -> dt.datetime | None:
        """When Letterboxd made the export (from its file name), else the newest logged entry."""
        parts = name_parts(self.source_name)
        if parts is not None:
            return parts[1]
        newest = self.entries.get_column("logged_date").max()
        return dt.datetime.combine(newest, dt.time()) if newest is not None else None

    def summary(self) -> dict[str, int]:
        """Rows per kind, plus distinct films (boxd.it film codes) across the film files."""
        counts = Counter(self.entries.get_column("kind").to_list())
        out = {key: counts.get(kind, 0) for key, kind in _SUMMARY_KEYS.items()}
        out["distinct_films"] = self.entries.get_column("film_key").drop_nulls().n_unique()
        return out


def _is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES) or name.rsplit("/", 1)[-1] == ".DS_Store"


def _export_root(members: Iterable[str]) -> str:
    """'' when the export sits at the top, else the single top folder holding it ('x/')."""
    names = [name for name in members if not _is_junk(name)]
    if any(name in _ROOT_MARKERS for name in names):
        return ""
    tops = {name.split("/", 1)[0] for name in names if "/" in name}
    loose = [name for name in names if "/" not in name]
    if len(tops) == 1 and not loose:
        return f"{tops.pop()}/"
    return ""


def _parse_file(text: str, file: str, kind: str, header: tuple[str, ...], username: str) -> list[dict[str, Any]]:
    col = {name: i for i, name in enumerate(header)}
    film_kind = kind in _FILM_KINDS
    rows: list[dict[str, Any]] = []
    for line, fields in iter_records(text, file, header):
        field = {name: fields[i] for name, i in col.items()}
        uri = field["Letterboxd URI"]
        code = parse_boxd_code(uri, file, line, required=film_kind)
        rating = None
        if "Rating" in field:
            rating = parse_rating(field["Rating"], file, line, required=kind == "rating")
        watched_date = None
        if "Watched Date" in field:
            watched_date = parse_date(field["Watched Date"], "Watched Date", file, line, required=False)
        rows.append(
            {
                "username": username,
                "kind": kind,
                "film_name": field["Name"],
                "film_year": parse_year(field["Year"], file, line),
                "letterboxd_uri": uri or None,
                "film_key": code if film_kind else None,
                "entry_key": None if film_kind else code,
                "rating": rating,
                "rewatch": parse_rewatch(field.get("Rewatch", ""), file, line),
                "liked": kind == "like",
                "tags": field.get("Tags") or None,
                "logged_date": parse_date(field["Date"], "Date", file, line, required=True),
                "watched_date": watched_date,
                "source_file": file,
                "source_line": line,
            }
        )
    return rows


#: the name Letterboxd gives an export: letterboxd-<username>-<yyyy-mm-dd-hh-mm>-utc(.zip)
EXPORT_NAME = re.compile(
    r"letterboxd-(?P<username>[A-Za-z0-9_]+)-(?P<stamp>\d{4}-\d{2}-\d{2}-\d{2}-\d{2})-utc", re.IGNORECASE
)


def name_parts(name: str) -> tuple[str, dt.datetime] | None:
    """(username, export time in UTC) from a file or folder name Letterboxd gave, else None."""
    found = EXPORT_NAME.search(name)
    if not found:
        return None
    try:
        stamp = dt.datetime.strptime(found["stamp"], "%Y-%m-%d-%H-%M")
    except ValueError:
        return None
    return found["username"], stamp


def _username_from_profile(source: ExportSource, root: str) -> str:
    member = root + _PROFILE
    if member not in source.members:
        parts = name_parts(source.name)
        if parts is not None:
            return validate_username(parts[0])
        raise ExportError(
            f"{source.name}: no username given, no profile.csv to read it from, and the file name "
            "is not Letterboxd's letterboxd-<username>-<date>-utc.zip; give the username explicitly"
        )
    text = decode_utf8(source.read(member), _PROFILE)
    records = iter_rows(text, _PROFILE)
    header = next(records, None)
    if header is None or "Username" not in header[1]:
        raise ExportError(f"{_PROFILE}: no Username column; give the username explicitly")
    record = next(records, None)
    if record is None:
        raise ExportError(f"{_PROFILE}: no data row; give the username explicitly")
    line, fields = record
    index = header[1].index("Username")
    if index >= len(fields):
        raise ExportError(f"{_PROFILE} line {line}: the record has no Username field")
    try:
        return validate_username(fields[index])
    except InvalidUsername as exc:
        raise InvalidUsername(f"{_PROFILE} line {line}: {exc}") from None


def read_export(
    path: str | os.PathLike[str],
    username: str | None = None,
    *,
    max_uncompressed_bytes: int = 256 * 2**20,
    max_members: int = 10_000,
) -> LetterboxdExport:
    """Read a Letterboxd export; `username` wins over profile.csv's and is always validated."""
    if username is not None:
        validate_username(username)
    source = open_source(Path(path), max_uncompressed_bytes, max_members)
    root = _export_root(source.members)
    relative = {m[len(root) :]: m for m in source.members if m.startswith(root)}
    if "ratings.csv" not in relative and "watched.csv" not in relative:
        raise ExportError(
            f"{source.name}: neither ratings.csv nor watched.csv found; is this a Letterboxd data export?"
        )
    username = canonical_username(username if username is not None else _username_from_profile(source, root))

    digest = hashlib.sha256(_HASH_VERSION + b"\0" + username.encode() + b"\0")
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    unknown: list[str] = [m for m in source.members if not m.startswith(root)]
    for rel, member in sorted(relative.items()):
        if rel in _ENTRY_FILES:
            kind, header = _ENTRY_FILES[rel]
            data = source.read(member)
            digest.update(f"{rel}\0{len(data)}\0".encode() + data)
            rows.extend(_parse_file(decode_utf8(data, rel), rel, kind, header, username))
        elif rel.startswith(_SKIPPED_FOLDERS) and rel.split("/", 1)[1] in _ENTRY_FILES:
            skipped[rel] = count_records(source.read(member))
        elif rel != _PROFILE:
            unknown.append(rel)

    entries = pl.DataFrame({name: [row[name] for row in rows] for name in ENTRY_SCHEMA}, schema=ENTRY_SCHEMA)
    return LetterboxdExport(
        username=username,
        entries=entries,
        content_sha256=digest.hexdigest(),
        source_name=source.name,
        skipped=skipped,
        unknown_files=tuple(sorted(unknown)),
    )
