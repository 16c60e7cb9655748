"""The Letterboxd export importer on the three real exports and on hand-built format variations.

Expected values are computed here from the CSV files with the csv module, not copied from the
importer's output.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from lbx_orchestration.core.letterboxd.export import (
    ENTRY_SCHEMA,
    LetterboxdExport,
    read_export,
)
from lbx_orchestration_tests.unit.export_builders import (
    DIARY_HEADER,
    REAL_EXPORTS,
    REVIEWS_HEADER,
    minimal_files,
    with_files,
    write_folder,
    write_zip,
    zip_folder,
)

SUMMARY_FILES = {
    "rated": "ratings.csv",
    "watched": "watched.csv",
    "watchlist": "watchlist.csv",
    "diary": "diary.csv",
    "likes": "likes/films.csv",
    "reviews": "reviews.csv",
}
FILM_FILES = ("ratings.csv", "watched.csv", "watchlist.csv", "likes/films.csv")


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def code(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def real() -> dict[str, LetterboxdExport]:
    return {name: read_export(folder) for name, folder in REAL_EXPORTS.items()}


# --- the real exports -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_EXPORTS))
def test_real_export_counts_match_the_csv_files(real: dict[str, LetterboxdExport], name: str):
    folder = REAL_EXPORTS[name]
    export = real[name]
    expected = {key: len(csv_rows(folder / file)) for key, file in SUMMARY_FILES.items()}
    films = {code(row["Letterboxd URI"]) for file in FILM_FILES for row in csv_rows(folder / file)}
    expected["distinct_films"] = len(films)
    assert export.summary() == expected
    assert export.entries.height == sum(expected[key] for key in SUMMARY_FILES)
    assert dict(export.entries.schema) == ENTRY_SCHEMA
    assert export.source_name == folder.name
    assert export.username == csv_rows(folder / "profile.csv")[0]["Username"].lower()  # one spelling per member


def test_extratone_username_is_davidblue(real: dict[str, LetterboxdExport]):
    assert real["extratone"].username == "davidblue"
    assert set(real["extratone"].entries["username"].unique().to_list()) == {"davidblue"}


@pytest.mark.parametrize("name", ["extratone", "melvincarvalho"])
def test_deleted_and_orphaned_rows_are_skipped_and_counted(real: dict[str, LetterboxdExport], name: str):
    folder = REAL_EXPORTS[name]
    export = real[name]
    expected_skipped = {}
    skipped_uris = set()
    for sub in ("deleted", "orphaned"):
        for file in ("diary.csv", "reviews.csv"):
            path = folder / sub / file
            if path.exists():
                rows = csv_rows(path)
                expected_skipped[f"{sub}/{file}"] = len(rows)
                skipped_uris |= {row["Letterboxd URI"] for row in rows}
    assert export.skipped == expected_skipped
    assert skipped_uris  # the fixture does have deleted rows
    assert skipped_uris.isdisjoint(set(export.entries["letterboxd_uri"].drop_nulls().to_list()))
    assert not any(f.startswith(("deleted/", "orphaned/")) for f in export.entries["source_file"])
    assert "deleted/comments.csv" in export.unknown_files
    assert "comments.csv" in export.unknown_files


def test_known_rating_is_parsed(real: dict[str, LetterboxdExport]):
    ratings = real["patrickmjones"].entries.filter(pl.col("kind") == "rating")
    parasite = ratings.filter(pl.col("film_key") == "hTha").row(0, named=True)
    assert parasite["film_name"] == "Parasite"
    assert parasite["film_year"] == 2019
    assert parasite["rating"] == 5.0
    assert parasite["letterboxd_uri"] == "https://boxd.it/hTha"
    assert parasite["entry_key"] is None
    assert parasite["logged_date"] == dt.date(2020, 11, 2)
    assert parasite["liked"] is False
    assert parasite["source_file"] == "ratings.csv"
    # the header is line 1; Parasite is the second record in the file
    assert parasite["source_line"] == 3


@pytest.mark.parametrize("name", sorted(REAL_EXPORTS))
def test_ratings_rows_match_csv_module(real: dict[str, LetterboxdExport], name: str):
    rows = csv_rows(REAL_EXPORTS[name] / "ratings.csv")
    expected = [
        (
            r["Name"],
            int(r["Year"]) if r["Year"] else None,
            code(r["Letterboxd URI"]),
            float(r["Rating"]),
            dt.date.fromisoformat(r["Date"]),
        )
        for r in rows
    ]
    got = (
        real[name]
        .entries.filter(pl.col("kind") == "rating")
        .sort("source_line")
        .select("film_name", "film_year", "film_key", "rating", "logged_date")
        .rows()
    )
    assert got == expected


def test_diary_rows_match_csv_module(real: dict[str, LetterboxdExport]):
    rows = csv_rows(REAL_EXPORTS["patrickmjones"] / "diary.csv")
    expected = [
        (
            r["Name"],
            code(r["Letterboxd URI"]) if r["Letterboxd URI"] else None,
            float(r["Rating"]) if r["Rating"] else None,
            r["Rewatch"] == "Yes",
            r["Tags"] or None,
            dt.date.fromisoformat(r["Watched Date"]),
        )
        for r in rows
    ]
    diary = real["patrickmjones"].entries.filter(pl.col("kind") == "diary").sort("source_line")
    got = diary.select("film_name", "entry_key", "rating", "rewatch", "tags", "watched_date").rows()
    assert got == expected
    assert diary["film_key"].null_count() == diary.height
    # the real file has entries whose film left Letterboxd: no URI, so no entry key
    assert diary["entry_key"].null_count() == sum(1 for r in rows if not r["Letterboxd URI"]) > 0


@pytest.mark.parametrize("name", ["patrickmjones", "extratone"])
def test_source_line_points_at_the_record_start_despite_multiline_reviews(real: dict[str, LetterboxdExport], name: str):
    path = REAL_EXPORTS[name] / "reviews.csv"
    physical = path.read_bytes().decode("utf-8").splitlines()
    reviews = real[name].entries.filter(pl.col("kind") == "review")
    assert len(physical) > reviews.height + 1  # some reviews do span lines
    for line, logged in reviews.select("source_line", "logged_date").rows():
        assert physical[line - 1].startswith(f"{logged.isoformat()},")


@pytest.mark.parametrize("prefix", ["", "extratone_2024-04/"])
def test_zip_reads_like_its_folder(real: dict[str, LetterboxdExport], tmp_path: Path, prefix):
    folder = REAL_EXPORTS["extratone"]
    archive = zip_folder(folder, tmp_path / "letterboxd-davidblue.zip", prefix=prefix)
    before = sorted(p.name for p in tmp_path.iterdir())
    export = read_export(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted or written
    from_folder = real["extratone"]
    assert export.entries.equals(from_folder.entries)
    assert export.content_sha256 == from_folder.content_sha256
    assert export.skipped == from_folder.skipped
    assert export.unknown_files == from_folder.unknown_files
    assert export.source_name == "letterboxd-davidblue.zip"


def test_same_zip_twice_same_hash_and_changed_content_new_hash(tmp_path: Path):
    folder = REAL_EXPORTS["melvincarvalho"]
    archive = zip_folder(folder, tmp_path / "a.zip")
    original = read_export(archive).content_sha256
    assert read_export(archive).content_sha256 == original
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    # one rating fewer: a new hash
    fewer = dict(files)
    fewer["ratings.csv"] = b"".join(files["ratings.csv"].splitlines(keepends=True)[:-1])
    assert (
        read_export(zip_folder(write_folder(tmp_path / "fewer", fewer), tmp_path / "fewer.zip")).content_sha256
        != original
    )

    # profile.csv's personal fields are not hashed (only the username is)
    edited = dict(files)
    edited["profile.csv"] = files["profile.csv"].replace(b"https://melvincarvalho.com", b"x")
    assert edited["profile.csv"] != files["profile.csv"]
    assert read_export(write_folder(tmp_path / "edited", edited)).content_sha256 == original


def test_username_argument_wins_over_profile(tmp_path: Path):
    export = read_export(REAL_EXPORTS["extratone"], "someone_else")
    assert export.username == "someone_else"
    assert set(export.entries["username"].to_list()) == {"someone_else"}
    assert export.content_sha256 != read_export(REAL_EXPORTS["extratone"]).content_sha256


def test_username_argument_makes_profile_optional(tmp_path: Path):
    folder = write_folder(tmp_path / "x", with_files({"profile.csv": None}))
    assert read_export(folder, "alice_99").username == "alice_99"


# --- format variations ------------------------------------------------------------------------

DIARY_ROWS = [
    '2021-06-13,Soylent Green,1973,https://boxd.it/1VoAHp,4.5,Yes,"on-vhs, sci-fi",1996-08-24',
    '2021-06-14,"Amélie, 千と千尋の神隠し",,https://boxd.it/aBc9,,,,2021-06-12',
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_crlf_and_lf_read_the_same(tmp_path: Path, newline: str):
    text = (DIARY_HEADER + "\n".join(DIARY_ROWS) + "\n").replace("\n", newline)
    folder = write_folder(tmp_path / newline.encode().hex(), with_files({"diary.csv": text}))
    diary = read_export(folder).entries.filter(pl.col("kind") == "diary")
    assert diary.select(
        "film_name",
        "film_year",
        "entry_key",
        "rating",
        "rewatch",
        "tags",
        "logged_date",
        "watched_date",
        "source_line",
    ).rows() == [
        (
            "Soylent Green",
            1973,
            "1VoAHp",
            4.5,
            True,
            "on-vhs, sci-fi",
            dt.date(2021, 6, 13),
            dt.date(1996, 8, 24),
            2,
        ),
        (
            "Amélie, 千と千尋の神隠し",
            None,
            "aBc9",
            None,
            False,
            None,
            dt.date(2021, 6, 14),
            dt.date(2021, 6, 12),
            3,
        ),
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_quoted_multiline_review_keeps_line_numbers(tmp_path: Path, newline: str):
    review = '"First line,\nsecond ""quoted"" line\n\nfourth line"'
    text = (
        REVIEWS_HEADER
        + f"2020-01-04,Roma,2018,https://boxd.it/ATu2F,3,,{review},,2020-01-03\n"
        + "2020-01-05,Her,2013,,,Yes,short,,\n"
    ).replace("\n", newline)
    folder = write_folder(tmp_path / "x", with_files({"reviews.csv": text}))
    reviews = read_export(folder).entries.filter(pl.col("kind") == "review")
    assert reviews.select("entry_key", "rating", "rewatch", "watched_date", "source_line").rows() == [
        ("ATu2F", 3.0, False, dt.date(2020, 1, 3), 2),
        (None, None, True, None, 6),
    ]


def test_bom_is_ignored(tmp_path: Path):
    folder = write_folder(
        tmp_path / "x",
        with_files(
            {
                "ratings.csv": "\ufeffDate,Name,Year,Letterboxd URI,Rating\r\n"
                "2020-11-02,Léon: The Professional,1994,https://boxd.it/2b0k,0.5\r\n"
            }
        ),
    )
    rating = read_export(folder).entries.filter(pl.col("kind") == "rating").row(0, named=True)
    assert (rating["film_name"], rating["film_key"], rating["rating"]) == (
        "Léon: The Professional",
        "2b0k",
        0.5,
    )


def test_likes_watchlist_and_unknown_files(tmp_path: Path):
    films = "Date,Name,Year,Letterboxd URI\n2022-01-01,Heat,1995,https://boxd.it/2aHi/\n"
    files = with_files(
        {
            "likes/films.csv": films,
            "watchlist.csv": films.replace("Heat,1995", "Ran,"),
            "likes/reviews.csv": "Date,Content\n",
            "lists/my-list.csv": "Letterboxd list export v7\n",
        }
    )
    export = read_export(write_folder(tmp_path / "x", files))
    like = export.entries.filter(pl.col("kind") == "like").row(0, named=True)
    assert (like["film_key"], like["liked"], like["rewatch"]) == ("2aHi", True, False)
    listed = export.entries.filter(pl.col("kind") == "watchlist").row(0, named=True)
    assert (listed["film_name"], listed["film_year"], listed["liked"]) == ("Ran", None, False)
    assert export.unknown_files == ("likes/reviews.csv", "lists/my-list.csv")
    assert export.summary() == {
        "rated": 1,
        "watched": 1,
        "watchlist": 1,
        "diary": 0,
        "likes": 1,
        "reviews": 0,
        "distinct_films": 2,
    }


def test_zip_inside_single_top_folder_with_macos_junk(tmp_path: Path):
    archive = tmp_path / "export.zip"
    files = {f"letterboxd-tester_1/{k}": v for k, v in minimal_files().items()}
    files["__MACOSX/letterboxd-tester_1/._ratings.csv"] = b"\x00\x05\x16\x07"
    write_zip(archive, files)
    export = read_export(archive)
    assert export.username == "tester_1"
    assert export.summary()["rated"] == 1
    assert export.unknown_files == ("__MACOSX/letterboxd-tester_1/._ratings.csv",)


def test_stored_zip_and_folder_give_the_same_hash(tmp_path: Path):
    import zipfile

    folder = write_folder(tmp_path / "x", minimal_files())
    archive = write_zip(tmp_path / "x.zip", minimal_files(), compression=zipfile.ZIP_STORED)
    assert read_export(archive).content_sha256 == read_export(folder).content_sha256


def test_empty_export_files_give_an_empty_typed_frame(tmp_path: Path):
    files = with_files(
        {
            "ratings.csv": "Date,Name,Year,Letterboxd URI,Rating\r\n",
            "watched.csv": "Date,Name,Year,Letterboxd URI\r\n",
        }
    )
    export = read_export(write_folder(tmp_path / "x", files))
    assert export.entries.height == 0
    assert dict(export.entries.schema) == ENTRY_SCHEMA
    assert export.summary()["distinct_films"] == 0


def test_folder_holding_the_export_one_level_down(tmp_path: Path):
    write_folder(tmp_path / "outer" / "letterboxd-tester_1-2026", minimal_files())
    export = read_export(tmp_path / "outer")
    assert (export.username, export.summary()["watched"], export.unknown_files) == (
        "tester_1",
        1,
        (),
    )
