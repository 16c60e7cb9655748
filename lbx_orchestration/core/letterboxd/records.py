"""CSV records of a Letterboxd export and the parsers for their fields.

Every error names the file and the line where the offending record starts (header = line 1).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date

from lbx_orchestration.core.letterboxd.errors import ExportError

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_YEAR = re.compile(r"\d{1,4}")
_RATING = re.compile(r"\d(?:\.\d+)?")
_BOXD_URI = re.compile(r"https?://boxd\.it/([A-Za-z0-9]+)/?")
_SHOWN_CHARS = 60


def shown(value: str) -> str:
    """repr of a field value, cut short so a huge field cannot flood an error message."""
    if len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + "..."
    return repr(value)


def decode_utf8(data: bytes, file: str) -> str:
    """Strict UTF-8 (with or without BOM); the error gives the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ExportError(
            f"{file} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); Letterboxd exports are UTF-8"
        ) from exc
    return text.removeprefix("\ufeff")


def iter_records(text: str, file: str, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line where the record starts, fields) after checking the header exactly.

    Quoted fields may span lines; CRLF and LF both work; blank lines are skipped.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        found = next(reader, [])
        if tuple(found) != header:
            raise ExportError(f"{file}: unexpected header: expected {','.join(header)!r}, found {','.join(found)!r}")
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                continue
            if len(fields) != len(header):
                raise ExportError(f"{file} line {line}: expected {len(header)} fields, found {len(fields)}")
            yield line, fields
    except csv.Error as exc:
        raise ExportError(f"{file} line {reader.line_num}: malformed CSV ({exc})") from exc


def iter_rows(text: str, file: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of every non-blank record, header included, with no header check."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if fields:
                yield line, fields
    except csv.Error as exc:
        raise ExportError(f"{file} line {reader.line_num}: malformed CSV ({exc})") from exc


def count_records(data: bytes) -> int:
    """Records after the header, counted leniently: used only for files we skip."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    count = -1
    try:
        for fields in reader:
            if fields:
                count += 1
    except csv.Error:
        pass
    return max(count, 0)


def parse_date(value: str, column: str, file: str, line: int, *, required: bool) -> date | None:
    if value == "" and not required:
        return None
    match = _DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ExportError(f"{file} line {line}: {column} {shown(value)} is not a date (YYYY-MM-DD)") from None


def parse_year(value: str, file: str, line: int) -> int | None:
    if value == "":
        return None
    if _YEAR.fullmatch(value) is None:
        raise ExportError(f"{file} line {line}: Year {shown(value)} is not a year")
    return int(value)


def parse_rating(value: str, file: str, line: int, *, required: bool) -> float | None:
    if value == "" and not required:
        return None
    if _RATING.fullmatch(value) is not None:
        halves = float(value) * 2
        if halves == int(halves) and 1 <= halves <= 10:
            return halves / 2
    raise ExportError(f"{file} line {line}: rating {shown(value)} is not 0.5-5 in halves")


def parse_rewatch(value: str, file: str, line: int) -> bool:
    if value == "Yes":
        return True
    if value in ("", "No"):
        return False
    raise ExportError(f"{file} line {line}: Rewatch {shown(value)} is not 'Yes' or empty")


def parse_boxd_code(value: str, file: str, line: int, *, required: bool) -> str | None:
    """The short code of a boxd.it link (`https://boxd.it/hTha` -> `hTha`)."""
    if value == "" and not required:
        return None
    match = _BOXD_URI.fullmatch(value)
    if match is None:
        raise ExportError(f"{file} line {line}: Letterboxd URI {shown(value)} is not a https://boxd.it/ link")
    return match[1]
