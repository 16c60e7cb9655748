"""Exports the importer must refuse, each with a message naming the cause, file and line."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from lbx_orchestration.core.letterboxd.export import (
    ExportError,
    InvalidUsername,
    read_export,
    validate_username,
)
from lbx_orchestration_tests.unit.export_builders import (
    DIARY_HEADER,
    REAL_EXPORTS,
    minimal_files,
    patch_declared_size,
    with_files,
    write_folder,
    write_zip,
    zip_folder,
)

RATINGS_HEADER = "Date,Name,Year,Letterboxd URI,Rating\n"


def refuse(files: dict[str, str | bytes], tmp_path: Path, **kwargs) -> str:
    """Read `files` both as a folder and as a zip; both must fail with the same message."""
    folder = write_folder(tmp_path / "folder", files)
    archive = write_zip(tmp_path / "export.zip", files)
    with pytest.raises(ExportError) as from_folder:
        read_export(folder, **kwargs)
    with pytest.raises(ExportError) as from_zip:
        read_export(archive, **kwargs)
    folder_msg = str(from_folder.value).replace("folder: ", "SOURCE: ")
    zip_msg = str(from_zip.value).replace("export.zip: ", "SOURCE: ")
    assert folder_msg == zip_msg
    return folder_msg


# --- usernames --------------------------------------------------------------------------------


def test_validate_username_accepts_letters_digits_underscores():
    assert validate_username("DavidBlue") == "DavidBlue"
    assert validate_username("a_1") == "a_1"


@pytest.mark.parametrize("bad", ["", "bad name", "x/../y", "élodie", "line\n", "a-b"])
def test_validate_username_refuses(bad: str):
    with pytest.raises(InvalidUsername) as err:
        validate_username(bad)
    assert str(err.value) == (
        f"invalid Letterboxd username {bad!r}: a username has 1 to 64 letters, digits and underscores only"
    )


def test_invalid_username_message_truncates_long_values():
    with pytest.raises(InvalidUsername) as err:
        validate_username("x" * 500 + "!")
    assert str(err.value).startswith(f"invalid Letterboxd username {'x' * 40!r}...: ")
    assert isinstance(err.value, ExportError)
    assert isinstance(err.value, ValueError)


def test_bad_username_argument_is_refused_before_reading(tmp_path: Path):
    with pytest.raises(InvalidUsername, match=r"^invalid Letterboxd username '\.\./etc'"):
        read_export(tmp_path / "does-not-exist.zip", "../etc")


def test_bad_username_in_profile(tmp_path: Path):
    profile = "Date Joined,Username,Given Name\n2020-01-01,not ok!,X\n"
    message = refuse(with_files({"profile.csv": profile}), tmp_path)
    assert message == (
        "profile.csv line 2: invalid Letterboxd username 'not ok!': "
        "a username has 1 to 64 letters, digits and underscores only"
    )


def test_no_username_anywhere(tmp_path: Path):
    message = refuse(with_files({"profile.csv": None}), tmp_path)
    assert message == (
        "SOURCE: no username given, no profile.csv to read it from, and the file name is not "
        "Letterboxd's letterboxd-<username>-<date>-utc.zip; give the username explicitly"
    )


# --- not an export ----------------------------------------------------------------------------


def test_not_a_zip_nor_a_folder(tmp_path: Path):
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS_HEADER)
    with pytest.raises(ExportError) as err:
        read_export(path)
    assert str(err.value) == ("ratings.csv: not a zip file or a folder (expected a Letterboxd data export)")


def test_missing_path(tmp_path: Path):
    with pytest.raises(ExportError, match=r"nope\.zip: no such file or folder$"):
        read_export(tmp_path / "nope.zip")


def test_truncated_zip(tmp_path: Path):
    archive = zip_folder(REAL_EXPORTS["melvincarvalho"], tmp_path / "export.zip")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ExportError, match=r"^export\.zip: truncated or corrupt zip \("):
        read_export(archive)


def test_corrupt_member_data(tmp_path: Path):
    archive = write_zip(tmp_path / "export.zip", minimal_files(), compression=zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    at = data.index(b"Parasite")
    data[at : at + 8] = b"Parasitf"
    archive.write_bytes(bytes(data))
    with pytest.raises(ExportError) as err:
        read_export(archive)
    assert str(err.value) == ("export.zip: truncated or corrupt zip: ratings.csv fails its CRC check")


def test_neither_ratings_nor_watched(tmp_path: Path):
    message = refuse(with_files({"ratings.csv": None, "watched.csv": None}), tmp_path)
    assert message == ("SOURCE: neither ratings.csv nor watched.csv found; is this a Letterboxd data export?")


def test_ratings_only_in_deleted_is_not_an_export(tmp_path: Path):
    files = {
        "profile.csv": minimal_files()["profile.csv"],
        "deleted/diary.csv": DIARY_HEADER,
        "deleted/ratings.csv": RATINGS_HEADER,
    }
    assert "neither ratings.csv nor watched.csv found" in refuse(files, tmp_path)


def test_wrong_header(tmp_path: Path):
    files = with_files({"watched.csv": "Date,Name,Letterboxd URI\n"})
    assert refuse(files, tmp_path) == (
        "watched.csv: unexpected header: expected 'Date,Name,Year,Letterboxd URI', found 'Date,Name,Letterboxd URI'"
    )


def test_empty_file_is_a_wrong_header(tmp_path: Path):
    assert refuse(with_files({"ratings.csv": ""}), tmp_path) == (
        "ratings.csv: unexpected header: expected 'Date,Name,Year,Letterboxd URI,Rating', found ''"
    )


# --- hostile archives -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.csv", "a/../../evil.csv", "/etc/evil.csv", "C:/evil.csv", "..\\evil.csv"])
def test_entries_climbing_out_are_refused(tmp_path: Path, name: str):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member, text in minimal_files().items():
            zf.writestr(member, text)
        zf.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(ExportError) as err:
        read_export(archive)
    assert str(err.value) == (f"export.zip: entry {name!r} points outside the archive; refusing it")


def test_declared_size_over_the_limit(tmp_path: Path):
    archive = write_zip(tmp_path / "export.zip", with_files({"big.txt": b"0" * 5000}))
    with pytest.raises(ExportError) as err:
        read_export(archive, max_uncompressed_bytes=4096)
    declared = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    assert str(err.value) == (
        f"export.zip: the archive declares {declared:,} uncompressed bytes, more than the limit of 4,096"
    )


def test_lying_size_header_is_caught_while_inflating(tmp_path: Path):
    rows = "".join(f"2020-01-01,Film {i},2000,https://boxd.it/a{i},3\n" for i in range(20_000))
    archive = write_zip(tmp_path / "export.zip", with_files({"ratings.csv": RATINGS_HEADER + rows}))
    assert archive.stat().st_size < 200_000  # it compresses well: a small bomb
    patch_declared_size(archive, "ratings.csv", 100)
    declared = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    assert declared < 1_000  # the headers now claim a tiny archive
    with pytest.raises(ExportError) as err:
        read_export(archive, max_uncompressed_bytes=100_000)
    assert str(err.value) == (
        "export.zip: ratings.csv inflates past the limit of 100,000 uncompressed bytes for the whole export"
    )
    # within the limit, the lie itself is named
    with pytest.raises(ExportError) as err:
        read_export(archive)
    actual = len(RATINGS_HEADER + rows)
    assert str(err.value) == (
        f"export.zip: truncated or corrupt zip: ratings.csv declares 100 bytes but holds {actual:,}"
    )


def test_limit_counts_real_bytes_in_a_folder_too(tmp_path: Path):
    folder = write_folder(tmp_path / "x", minimal_files())
    with pytest.raises(ExportError, match=r"^x: .* inflates past the limit of 64 uncompressed"):
        read_export(folder, max_uncompressed_bytes=64)


def test_too_many_members(tmp_path: Path):
    files = with_files({f"lists/{i}.csv": "x" for i in range(5)})
    archive = write_zip(tmp_path / "export.zip", files)
    with pytest.raises(ExportError) as err:
        read_export(archive, max_members=6)
    assert str(err.value) == "export.zip: the archive has 8 entries, more than the limit of 6"
    folder = write_folder(tmp_path / "x", files)
    with pytest.raises(ExportError) as err:
        read_export(folder, max_members=6)
    assert str(err.value) == "x: the folder has more than the limit of 6 files"


def test_symlink_out_of_a_folder_is_refused(tmp_path: Path):
    outside = tmp_path / "secret.csv"
    outside.write_text("x")
    folder = write_folder(tmp_path / "x", minimal_files())
    (folder / "watchlist.csv").symlink_to(outside)
    with pytest.raises(ExportError) as err:
        read_export(folder)
    assert str(err.value) == "x: watchlist.csv links outside the export folder; refusing it"


# --- bad records ------------------------------------------------------------------------------


def test_not_utf8_names_file_and_line(tmp_path: Path):
    latin1 = (
        RATINGS_HEADER + "2020-01-01,Heat,1995,https://boxd.it/2aHi,4\n2020-01-02,Amélie,2001,https://boxd.it/1Z8c,4\n"
    ).encode("latin-1")
    message = refuse(with_files({"ratings.csv": latin1}), tmp_path)
    offset = latin1.index(b"\xe9")
    assert message == (
        f"ratings.csv line 3: not UTF-8 text (byte 0xe9 at offset {offset}); Letterboxd exports are UTF-8"
    )


@pytest.mark.parametrize("rating", ["7", "0", "2.25", "-1", "five", "5.5", "nan"])
def test_rating_not_in_halves(tmp_path: Path, rating: str):
    ratings = (
        RATINGS_HEADER
        + "2020-01-01,Heat,1995,https://boxd.it/2aHi,4\n" * 5
        + (f"2020-01-01,Heat,1995,https://boxd.it/2aHi,{rating}\n")
    )
    assert refuse(with_files({"ratings.csv": ratings}), tmp_path) == (
        f"ratings.csv line 7: rating {rating!r} is not 0.5-5 in halves"
    )


def test_empty_rating_in_ratings_csv(tmp_path: Path):
    ratings = RATINGS_HEADER + "2020-01-01,Heat,1995,https://boxd.it/2aHi,\n"
    assert refuse(with_files({"ratings.csv": ratings}), tmp_path) == (
        "ratings.csv line 2: rating '' is not 0.5-5 in halves"
    )


@pytest.mark.parametrize(
    ("column", "row"),
    [
        ("Date", "2021/06/13,Heat,1995,https://boxd.it/aa,,,,2021-06-12"),
        ("Date", ",Heat,1995,https://boxd.it/aa,,,,2021-06-12"),
        ("Watched Date", "2021-06-13,Heat,1995,https://boxd.it/aa,,,,2021-02-30"),
    ],
)
def test_dates_that_do_not_parse(tmp_path: Path, column: str, row: str):
    diary = DIARY_HEADER + '2021-06-13,"Multi\nline",1995,https://boxd.it/ab,,,,2021-06-12\n' + row
    bad = row.split(",")[0 if column == "Date" else -1]
    assert refuse(with_files({"diary.csv": diary}), tmp_path) == (
        f"diary.csv line 4: {column} {bad!r} is not a date (YYYY-MM-DD)"
    )


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "ratings.csv",
            RATINGS_HEADER + "2020-01-01,Heat,95AD,https://boxd.it/2aHi,4\n",
            "ratings.csv line 2: Year '95AD' is not a year",
        ),
        (
            "ratings.csv",
            RATINGS_HEADER + "2020-01-01,Heat,1995,https://letterboxd.com/x,4\n",
            ("ratings.csv line 2: Letterboxd URI 'https://letterboxd.com/x' is not a https://boxd.it/ link"),
        ),
        (
            "watched.csv",
            "Date,Name,Year,Letterboxd URI\n2020-01-01,Heat,1995,\n",
            "watched.csv line 2: Letterboxd URI '' is not a https://boxd.it/ link",
        ),
        (
            "ratings.csv",
            RATINGS_HEADER + "2020-01-01,Heat,1995,https://boxd.it/2aHi\n",
            "ratings.csv line 2: expected 5 fields, found 4",
        ),
        (
            "diary.csv",
            DIARY_HEADER + "2020-01-01,Heat,1995,https://boxd.it/aa,,maybe,,\n",
            "diary.csv line 2: Rewatch 'maybe' is not 'Yes' or empty",
        ),
        (
            "ratings.csv",
            RATINGS_HEADER + '2020-01-01,"Heat,1995,https://boxd.it/2aHi,4\n',
            "ratings.csv line 2: malformed CSV (unexpected end of data)",
        ),
    ],
)
def test_bad_fields(tmp_path: Path, file: str, text: str, message: str):
    assert refuse(with_files({file: text}), tmp_path) == message


def test_long_bad_values_are_truncated_in_messages(tmp_path: Path):
    ratings = RATINGS_HEADER + f"2020-01-01,Heat,1995,https://boxd.it/2aHi,{'9' * 1000}\n"
    message = refuse(with_files({"ratings.csv": ratings}), tmp_path)
    assert message == f"ratings.csv line 2: rating {'9' * 60!r}... is not 0.5-5 in halves"


def test_errors_in_a_later_file_leave_nothing_behind(tmp_path: Path):
    files = with_files({"watchlist.csv": "nope\n"})
    folder = write_folder(tmp_path / "x", files)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ExportError, match=re.escape("watchlist.csv: unexpected header")):
        read_export(folder)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("Date Joined,Name\n2020-01-01,x\n", "profile.csv: no Username column; give the username"),
        ("Date Joined,Username\n", "profile.csv: no data row; give the username explicitly"),
        ("Date Joined,Username\n2020-01-01\n", "profile.csv line 2: the record has no Username"),
    ],
)
def test_profile_without_a_username(tmp_path: Path, profile: str, message: str):
    assert refuse(with_files({"profile.csv": profile}), tmp_path).startswith(message)
    # with the username given, profile.csv is not even read
    folder = write_folder(tmp_path / "given", with_files({"profile.csv": profile}))
    assert read_export(folder, "tester_2").username == "tester_2"
