"""Read the lists (``lists/*.csv``) of a Letterboxd data export: one row per film in a list.

The export importer leaves lists out (they say nothing about what a member has seen); the web
service uses them to restrict recommendations to a list. Same limits and refusals as
``read_export``: the archive is opened through the same safe source.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import polars as pl

from lbx_orchestration.core.letterboxd.errors import ExportError
from lbx_orchestration.core.letterboxd.records import decode_utf8
from lbx_orchestration.core.letterboxd.sources import open_source

LIST_SCHEMA: dict[str, pl.DataType] = {
    "list_slug": pl.Utf8(),
    "list_name": pl.Utf8(),
    "position": pl.Int32(),
    "film_name": pl.Utf8(),
    "film_year": pl.Int32(),
    "film_key": pl.Utf8(),  # the film's boxd.it code, as ``film_key`` in ingest.reviews
}
_FOLDER = "lists/"
_SKIPPED = ("deleted/", "orphaned/")


def _code(url: str) -> str | None:
    url = (url or "").strip().rstrip("/")
    return url.rsplit("/", 1)[-1] if "boxd.it/" in url else None


def _year(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def parse_list(text: str, file: str) -> list[dict]:
    """One list file: a title block (Date, Name, Tags, URL, Description), a blank line, then
    the films (Position, Name, Year, URL, Description)."""
    rows = list(csv.reader(io.StringIO(text)))
    header_at = next((i for i, r in enumerate(rows) if r[:2] == ["Date", "Name"]), None)
    films_at = next((i for i, r in enumerate(rows) if r[:3] == ["Position", "Name", "Year"]), None)
    if header_at is None or films_at is None or header_at + 1 >= len(rows):
        raise ExportError(f"{file}: not a Letterboxd list (no 'Date,Name' or 'Position,Name,Year' header)")
    name = rows[header_at + 1][1].strip() if len(rows[header_at + 1]) > 1 else ""
    slug = file.rsplit("/", 1)[-1].removesuffix(".csv")
    out = []
    for offset, record in enumerate(rows[films_at + 1 :], start=films_at + 2):
        if not record or not any(cell.strip() for cell in record):
            continue
        if len(record) < 4:
            raise ExportError(f"{file} line {offset}: expected Position,Name,Year,URL, got {len(record)} fields")
        position = record[0].strip()
        out.append(
            {
                "list_slug": slug,
                "list_name": name or slug,
                "position": int(position) if position.isdigit() else None,
                "film_name": record[1].strip(),
                "film_year": _year(record[2]),
                "film_key": _code(record[3]),
            }
        )
    return out


def read_lists(
    path: str | os.PathLike[str],
    *,
    max_uncompressed_bytes: int = 256 * 2**20,
    max_members: int = 10_000,
) -> pl.DataFrame:
    """Every film of every list in the export at ``path`` (zip or folder); deleted lists left out."""
    source = open_source(Path(path), max_uncompressed_bytes, max_members)
    rows: list[dict] = []
    for member in sorted(source.members):
        parts = member.split("/")
        # lists/x.csv at the root, or under the export's single top folder
        rel = "/".join(parts[-2:])
        if not rel.startswith(_FOLDER) or not rel.endswith(".csv") or any(s in member for s in _SKIPPED):
            continue
        if len(parts) > 3:
            continue
        rows.extend(parse_list(decode_utf8(source.read(member), rel), rel))
    return pl.DataFrame(rows, schema=LIST_SCHEMA)
