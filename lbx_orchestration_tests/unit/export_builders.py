"""Build small Letterboxd exports (folders and zips) in tmp_path for the importer's tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

SAMPLE_EXPORTS = Path(__file__).resolve().parents[2] / "lbx_orchestration/sample_data/letterboxd_exports"
REAL_EXPORTS = {
    "extratone": SAMPLE_EXPORTS / "extratone_2024-04",
    "melvincarvalho": SAMPLE_EXPORTS / "melvincarvalho_2021-11",
    "patrickmjones": SAMPLE_EXPORTS / "patrickmjones_2022-08",
}

PROFILE = (
    "Date Joined,Username,Given Name,Family Name,Email Address,Location,Website,Bio,Pronoun,"
    "Favorite Films\n2020-01-01,tester_1,Test,,t@example.invalid,,,,,\n"
)
RATINGS = "Date,Name,Year,Letterboxd URI,Rating\n2020-11-02,Parasite,2019,https://boxd.it/hTha,5\n"
WATCHED = "Date,Name,Year,Letterboxd URI\n2020-11-02,Parasite,2019,https://boxd.it/hTha\n"
DIARY_HEADER = "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
REVIEWS_HEADER = "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Review,Tags,Watched Date\n"


def minimal_files() -> dict[str, str | bytes]:
    """A small valid export: profile (username tester_1), one rating, one watched film."""
    return {"profile.csv": PROFILE, "ratings.csv": RATINGS, "watched.csv": WATCHED}


def with_files(changes: dict[str, str | bytes | None]) -> dict[str, str | bytes]:
    """minimal_files() with some files replaced or added; a None value drops the file."""
    files: dict[str, str | bytes | None] = {**minimal_files(), **changes}
    return {name: value for name, value in files.items() if value is not None}


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def write_folder(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, value in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_as_bytes(value))
    return root


def write_zip(
    path: Path,
    files: dict[str, str | bytes],
    *,
    prefix: str = "",
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, value in files.items():
            zf.writestr(prefix + name, _as_bytes(value))
    return path


def zip_folder(folder: Path, path: Path, *, prefix: str = "") -> Path:
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return write_zip(path, files, prefix=prefix)


def patch_declared_size(path: Path, member: str, size: int) -> None:
    """Make both zip headers of `member` claim `size` uncompressed bytes (a lying archive)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(member).header_offset
    # Local file header: uncompressed size at +22.
    data[offset + 22 : offset + 26] = size.to_bytes(4, "little")
    # Central directory header: signature, ..., uncompressed size at +24, name at +46.
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_len] == member.encode():
            data[pos + 24 : pos + 28] = size.to_bytes(4, "little")
            break
        pos = data.find(b"PK\x01\x02", pos + 4)
    else:
        raise AssertionError(f"{member} not in the central directory")
    path.write_bytes(bytes(data))
