"""`import_export` (the code path of `lbx import` and the inbox) on real DuckDB files."""

import datetime as dt
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from lbx_orchestration.core.catalog import RESOLVER_VERSION
from lbx_orchestration.core.importer import OlderExport, import_export
from lbx_orchestration.core.letterboxd.export import ExportError, read_export
from lbx_orchestration.core.observations import export_observations
from lbx_orchestration.core.warehouse import read_frame
from lbx_orchestration_tests.unit.export_builders import REAL_EXPORTS, minimal_files, write_zip

TABLES = ("raw.letterboxd_export_entries", "raw.letterboxd_imports", "ingest.reviews", "metadata.film_resolution")
DAY = dt.date(2026, 11, 20)
NEXT_DAY = dt.date(2026, 11, 21)


def snapshot(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The three bundled exports imported into one fresh DuckDB file (done once)."""
    path = tmp_path_factory.mktemp("import") / "lbx.duckdb"
    con = duckdb.connect(str(path))
    reports = {name: import_export(con, folder, scrape_date=DAY) for name, folder in REAL_EXPORTS.items()}
    con.close()
    return path, reports


@pytest.fixture
def db(imported: tuple[Path, dict], tmp_path: Path) -> Path:
    copy = tmp_path / "lbx.duckdb"
    shutil.copy(imported[0], copy)
    return copy


def test_three_exports_into_a_fresh_warehouse(imported: tuple[Path, dict]) -> None:
    path, reports = imported
    con = duckdb.connect(str(path), read_only=True)
    for name, folder in REAL_EXPORTS.items():
        export = read_export(folder)
        report = reports[name]
        summary = export.summary()
        assert report.username == export.username
        assert report.status == "imported"
        assert report.content_sha256 == export.content_sha256
        assert report.scrape_date == DAY
        assert report.counts == {k: summary[k] for k in report.counts}
        entries = con.execute(
            "select count(*), min(scrape_date), max(scrape_date) from raw.letterboxd_export_entries where username = ?",
            [export.username],
        ).fetchall()[0]
        assert entries == (export.entries.height, DAY, DAY)
        expected = export_observations(export.entries, DAY)
        got = read_frame(
            con,
            "select observation_id, kind, film_key, rating from ingest.reviews where user_key = ? "
            "and scrape_date = ? and source = 'letterboxd_export' order by observation_id",
            [f"letterboxd:{export.username}", DAY],
        )
        assert got.equals(expected.select("observation_id", "kind", "film_key", "rating").sort("observation_id"))
        # every film of the user has a resolution row, and the report's numbers are the table's
        film_keys = expected["film_key"].unique().to_list()
        marks = ", ".join("?" * len(film_keys))
        rows = con.execute(
            "select count(*), count(tmdb_id), count(distinct tmdb_id) "
            f"from metadata.film_resolution where film_key in ({marks})",
            film_keys,
        ).fetchall()[0]
        assert rows == (len(film_keys), report.resolved, report.tmdb_films)
        assert report.films == len(film_keys)
        assert report.resolved_share == pytest.approx(report.resolved / report.films)
    ledger = con.execute(
        "select username, content_sha256, scrape_date from raw.letterboxd_imports order by username"
    ).fetchall()
    assert ledger == sorted((r.username, r.content_sha256, DAY) for r in reports.values())
    assert con.execute("select count(*) - count(distinct film_key) from metadata.film_resolution").fetchall()[0][0] == 0
    con.close()
    # the bundled snapshot resolves a good part of the exports' films (it stops early in 2024)
    assert all(r.resolved_share > 0.3 for r in reports.values())


def test_report_counts_rated_and_watched_films_and_no_match_is_a_year_off(imported: tuple[Path, dict]) -> None:
    from lbx_orchestration.core.tmdb.records import release_year
    from lbx_orchestration.core.tmdb.snapshot import TmdbSnapshot

    path, reports = imported
    con = duckdb.connect(str(path), read_only=True)
    for report in reports.values():
        for kind in ("rating", "watched"):
            matched, total = con.execute(
                "select count(distinct r.film_key) filter (where coalesce(r.tmdb_id, f.tmdb_id) is not null), "
                "count(distinct r.film_key) from ingest.reviews r left join metadata.film_resolution f "
                "using (film_key) where r.user_key = ? and r.kind = ?",
                [report.user_key, kind],
            ).fetchall()[0]
            assert report.by_kind[kind] == (matched, total)
            assert report.share(kind) == (matched, total, pytest.approx(matched / total))
        assert report.as_metadata()["rating_films"] == report.by_kind["rating"][1]
    matches = con.execute(
        "select film_year, tmdb_id, method from metadata.film_resolution "
        "where tmdb_id is not null and film_year is not null"
    ).fetchall()
    refused = con.execute(
        "select count(*) from metadata.film_resolution where method = 'refused' "
        "and candidate_id is not null and reason is not null"
    ).fetchall()[0][0]
    con.close()
    years = TmdbSnapshot().records
    off = [
        (y, t, m) for y, t, m in matches if (found := release_year(years.get(t, {}))) is not None and abs(found - y) > 1
    ]
    assert off == []  # before issue 12, 228 of these were accepted
    assert refused > 0


def test_same_export_again_is_unchanged_and_writes_nothing(db: Path) -> None:
    before = snapshot(db)
    con = duckdb.connect(str(db))
    report = import_export(con, REAL_EXPORTS["melvincarvalho"], scrape_date=NEXT_DAY)
    zipped = import_export(
        con,
        write_zip(
            db.parent / "e.zip",
            {
                p.relative_to(REAL_EXPORTS["extratone"]).as_posix(): p.read_bytes()
                for p in REAL_EXPORTS["extratone"].rglob("*")
                if p.is_file()
            },
        ),
    )
    con.close()
    assert (report.status, zipped.status) == ("unchanged", "unchanged")
    summary = read_export(REAL_EXPORTS["melvincarvalho"]).summary()
    assert report.counts == {k: summary[k] for k in report.counts}
    assert report.scrape_date == NEXT_DAY and report.username == "melvincarvalho"
    assert snapshot(db) == before


def test_the_same_export_after_a_resolver_change_is_resolved_again(db: Path) -> None:
    # a warehouse whose resolutions an older resolver made (its rules, TV among them, have changed since)
    con = duckdb.connect(str(db))
    con.execute(
        "update metadata.film_resolution set resolver = '2', tmdb_id = null where resolver = ?", [RESOLVER_VERSION]
    )
    report = import_export(con, REAL_EXPORTS["melvincarvalho"], scrape_date=NEXT_DAY)
    rows = con.execute(
        "select count(*), count(tmdb_id) from metadata.film_resolution where resolver = ?", [RESOLVER_VERSION]
    ).fetchall()[0]
    con.close()
    assert report.status == "unchanged"
    matched, total, _ = report.share("rating")
    assert total > 0 and matched / total > 0.8  # not the 0 of N an old warehouse's rows would give
    assert rows[0] >= report.films and rows[1] == report.resolved


def _newer_export(tmp_path: Path) -> Path:
    """melvincarvalho's export with the last rating dropped and one rating changed, exported later
    (the name Letterboxd gives an export carries its time)."""
    name = "letterboxd-melvincarvalho-2026-11-20-10-05-utc"
    folder = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / name)
    lines = (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:-1]
    first = rows[0].rsplit(",", 1)
    rows[0] = f"{first[0]},{'1' if first[1] != '1' else '2'}"
    (folder / "ratings.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("day", [DAY, NEXT_DAY])
def test_newer_export_updates_without_duplicates(db: Path, tmp_path: Path, day: dt.date) -> None:
    newer = _newer_export(tmp_path)
    export = read_export(newer)
    con = duckdb.connect(str(db))
    report = import_export(con, newer, scrape_date=day)
    assert report.status == "updated"
    original = read_export(REAL_EXPORTS["melvincarvalho"])
    assert report.counts["rated"] == original.summary()["rated"] - 1
    user = ["melvincarvalho"]
    entries = con.execute(
        "select count(*), count(distinct scrape_date) from raw.letterboxd_export_entries where username = ?", user
    ).fetchall()
    assert entries[0] == (export.entries.height, 1)
    ledger = con.execute(
        "select content_sha256, status from raw.letterboxd_imports where username = ? order by imported_at", user
    ).fetchall()
    assert ledger == [(original.content_sha256, "imported"), (export.content_sha256, "updated")]
    per_date = dict(
        con.execute(
            "select scrape_date, count(*) from ingest.reviews where user_key = 'letterboxd:melvincarvalho' group by all"
        ).fetchall()
    )
    fresh = export_observations(export.entries, day).height
    old = export_observations(original.entries, DAY).height
    assert per_date == ({DAY: fresh} if day == DAY else {DAY: old, NEXT_DAY: fresh})
    # the newest export's rows are what stg_reviews keeps: no observation twice on one date
    assert (
        con.execute("select count(*) - count(distinct (scrape_date, observation_id)) from ingest.reviews").fetchall()[
            0
        ][0]
        == 0
    )
    # the other users are untouched
    assert con.execute("select count(distinct username) from raw.letterboxd_export_entries").fetchall()[0][0] == 3
    con.close()


def test_an_older_export_after_a_newer_one_is_refused_and_changes_nothing(db: Path, tmp_path: Path) -> None:
    newer = _newer_export(tmp_path)
    con = duckdb.connect(str(db))
    assert import_export(con, newer, scrape_date=NEXT_DAY).status == "updated"
    con.close()
    before = snapshot(db)
    older = shutil.copytree(REAL_EXPORTS["melvincarvalho"], tmp_path / "letterboxd-melvincarvalho-2025-01-02-08-00-utc")
    con = duckdb.connect(str(db))
    with pytest.raises(OlderExport) as err:
        import_export(con, older, scrape_date=NEXT_DAY)
    with pytest.raises(OlderExport):  # an unnamed folder is dated by its newest entry (2021): older too
        import_export(con, REAL_EXPORTS["melvincarvalho"], scrape_date=NEXT_DAY)
    con.close()
    message = str(err.value)
    assert "made 2025-01-02 08:00, before the one already imported (" in message
    assert "made 2026-11-20 10:05" in message
    assert "nothing was changed" in message
    assert snapshot(db) == before


def _climbing_zip(tmp_path: Path) -> Path:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member, text in minimal_files().items():
            zf.writestr(member, text)
        zf.writestr(zipfile.ZipInfo("../x.csv"), b"x")
    return archive


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_climbing_zip, "evil.zip: entry '../x.csv' points outside the archive; refusing it"),
        (
            lambda tmp: write_zip(tmp / "bad.zip", {**minimal_files(), "watched.csv": "Date,Name,Letterboxd URI\n"}),
            "watched.csv: unexpected header: expected 'Date,Name,Year,Letterboxd URI', "
            "found 'Date,Name,Letterboxd URI'",
        ),
    ],
    ids=["path-traversal", "wrong-header"],
)
def test_bad_export_changes_nothing(db: Path, tmp_path: Path, build: Callable[[Path], Path], message: str) -> None:
    before = snapshot(db)
    con = duckdb.connect(str(db))
    with pytest.raises(ExportError) as err:
        import_export(con, build(tmp_path))
    con.close()
    assert str(err.value) == message
    assert snapshot(db) == before
