"""Letterboxd HTML parsers against the recorded pages; expected values are read from the files
independently (regexes over the raw markup), not copied from the parser's output."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from lbx_orchestration.core.crawl.spiders import parse_users
from lbx_orchestration.core.letterboxd import pages
from lbx_orchestration.core.letterboxd.errors import InvalidUsername
from lbx_orchestration.core.letterboxd.pages import (
    CAUSE_403,
    CAUSE_CHALLENGE,
    CAUSE_OUTAGE,
    CrawlBlocked,
    OutagePageError,
    PageError,
)
from lbx_orchestration.core.letterboxd.usernames import validate_username

HTML = Path(__file__).resolve().parents[1] / "fixtures" / "letterboxd" / "html"
GRIDS = sorted((HTML / "user-films-grid").iterdir())
OUTAGE = HTML / "error" / "2026-08_maintenance_outage_instead_of_rss.html"
OLD_2023 = HTML / "list" / "2023-06_dave_official-top-250_p1.reserialized.html"
DIARY = HTML / "diary" / "2025-10_hyumiguel_diary_p1.rendered.htm"
MEMBERS = HTML / "members" / "2025-11_members_popular_this_week_p1.rendered.html"

# No 403 / challenge / 429 page was ever recorded: these are minimal stand-ins built from what
# Cloudflare documents (the "Just a moment..." interstitial and its challenge-platform script).
CHALLENGE_BODY = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    b"<noscript>Enable JavaScript and cookies to continue</noscript>"
    b"<script>window._cf_chl_opt={cType:'managed'};</script>"
    b'<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script>'
    b"</body></html>"
)
CLOUDFLARE_403_HEADERS = {"Server": "cloudflare", "cf-ray": "8f0c0ffee-AMS"}


def _griditem_chunks(text: str) -> list[str]:
    return text.split('<li class="griditem">')[1:]


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_films_grid_items_match_the_markup(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    chunks = _griditem_chunks(text)
    expected_slugs = [re.search(r'data-item-slug="([^"]+)"', c).group(1) for c in chunks]
    expected_ratings = []
    for chunk in chunks:
        m = re.search(r'class="rating[^"]*rated-(\d+)"', chunk)
        expected_ratings.append(int(m.group(1)) / 2 if m else None)

    grid = pages.parse_films_grid(path.read_bytes(), "someone")

    assert len(chunks) == 72  # a full page, as Letterboxd serves it
    assert [i["slug"] for i in grid.items] == expected_slugs
    assert [i["rating"] for i in grid.items] == expected_ratings
    assert None in expected_ratings, "each grid fixture has unrated films"
    assert all(i["username"] == "someone" for i in grid.items)
    assert all(isinstance(i["film_id"], int) and i["lid"] for i in grid.items)
    assert grid.next_url is not None and grid.next_url.endswith("/films/page/2/")


def test_unrated_grid_item_has_empty_viewing_data() -> None:
    path = HTML / "user-films-grid" / "2025-12_thebigal_films_p1.raw.html"
    chunks = _griditem_chunks(path.read_text(encoding="utf-8"))
    grid = pages.parse_films_grid(path.read_bytes(), "thebigal")
    unrated = [i for i, item in enumerate(grid.items) if item["rating"] is None]
    assert unrated
    for index in unrated:
        viewing = re.search(r'<p class="poster-viewingdata"[^>]*>(.*?)</p>', chunks[index], re.S)
        assert "rating" not in viewing.group(1)


def test_films_grid_first_item_fields_and_page_count() -> None:
    grid = pages.parse_films_grid(
        (HTML / "user-films-grid" / "2025-12_thebigal_films_p1.raw.html").read_bytes(), "thebigal"
    )
    first = grid.items[0]
    # From the markup: data-item-name="One Battle After Another (2025)", rated-9, icon-liked,
    # data-postered-identifier='{"lid":"DUHM",...}', data-film-id="951277".
    assert first == {
        "username": "thebigal",
        "slug": "one-battle-after-another",
        "name": "One Battle After Another",
        "year": 2025,
        "film_id": 951277,
        "lid": "DUHM",
        "rating": 4.5,
        "liked": True,
    }
    assert grid.next_url == "/thebigal/films/page/2/"
    assert grid.page_count == 13


def test_rated_n_is_half_stars() -> None:
    assert [pages.rating_from_classes(f"rating -micro rated-{n}") for n in range(1, 11)] == [
        0.5,
        1.0,
        1.5,
        2.0,
        2.5,
        3.0,
        3.5,
        4.0,
        4.5,
        5.0,
    ]
    assert pages.rating_from_classes("rating -micro") is None
    assert pages.rating_from_classes(None) is None


def test_grid_2023_markup() -> None:
    text = OLD_2023.read_text(encoding="utf-8")
    expected = re.findall(r'data-film-slug="/film/([^/"]+)/"', text)
    # data-owner-rating="0" is an unrated film
    owner = [int(n) / 2 or None for n in re.findall(r'data-owner-rating="(\d+)"', text)]

    grid = pages.parse_films_grid(OLD_2023.read_bytes(), "dave")

    assert len(expected) == 100
    assert [i["slug"] for i in grid.items] == expected
    assert [i["rating"] for i in grid.items] == owner
    assert grid.items[0]["name"] == "Spider-Man: Across the Spider-Verse"
    assert grid.items[0]["film_id"] == 497631
    assert grid.next_url == "/dave/list/official-top-250-narrative-feature-films/page/2/"


def test_grid_without_items_is_empty_not_an_error() -> None:
    # Derived from a real grid: every li.griditem and the pagination removed.
    text = (HTML / "user-films-grid" / "2025-12_thebigal_films_p1.raw.html").read_text("utf-8")
    text = re.sub(r'<li class="griditem">.*?</li>', "", text, flags=re.S)
    text = re.sub(r'<div class="pagination">.*?</ul> </div> </div>', "", text, flags=re.S)
    grid = pages.parse_films_grid(text, "thebigal")
    assert "griditem" not in text and "pagination" not in text
    assert grid.items == [] and grid.next_url is None


def test_diary_rows() -> None:
    text = DIARY.read_text(encoding="utf-8")
    row_chunks = text.split('<tr class="diary-entry-row')[1:]
    expected_dates = [
        date(*map(int, re.search(r'class="daydate" href="[^"]*/(\d{4})/(\d\d)/(\d\d)/"', c).groups()))
        for c in row_chunks
    ]
    expected_rewatch = [not re.search(r'class="col-rewatch[^"]*icon-status-off', c) for c in row_chunks]

    rows = pages.parse_diary(DIARY.read_bytes(), "hyumiguel")

    assert len(rows) == len(row_chunks) == 50
    assert [r["watched_date"] for r in rows] == expected_dates
    assert [r["rewatch"] for r in rows] == expected_rewatch
    assert any(expected_rewatch)
    first = rows[0]
    assert (first["film_slug"], first["film_title"], first["film_year"]) == ("the-hitch-hiker", "The Hitch-Hiker", 1953)
    assert (first["rating"], first["liked"], first["viewing_id"]) == (4.0, True, 1018545884)
    assert first["watched_date"] == date(2025, 9, 19)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "2026-01_mulholland-drive.raw.html",
            ("mulholland-drive", 1018, "movie", "tt0166924", "Mulholland Drive", 2001),
        ),
        (
            "2025-10_mulholland-drive.rendered.htm",
            ("mulholland-drive", 1018, "movie", "tt0166924", "Mulholland Drive", 2001),
        ),
        (
            "2025-11_the-zone-of-interest.rendered.html",
            ("the-zone-of-interest", 467244, "movie", "tt7160372", "The Zone of Interest", 2023),
        ),
        (
            "2026-01_unbelievable-2019_tv-miniseries.raw.html",
            ("unbelievable-2019", None, "tv", "tt7909970", "Unbelievable", 2019),
        ),
    ],
)
def test_film_page(name: str, expected: tuple) -> None:
    film = pages.parse_film_page((HTML / "film" / name).read_bytes())
    keys = ("slug", "tmdb_id", "tmdb_type", "imdb_id", "title", "year")
    assert tuple(film[k] for k in keys) == expected


def test_film_page_refuses_a_fragment() -> None:
    fragment = HTML / "film" / "2026-01_mulholland-drive_csi-ratings-summary.fragment.html"
    with pytest.raises(PageError, match="not a Letterboxd film page"):
        pages.parse_film_page(fragment.read_bytes())


def test_members() -> None:
    text = MEMBERS.read_text(encoding="utf-8")
    table = text[text.index('<table class="table-base member-table">') :]
    table = table[: table.index("</table>")]
    expected = re.findall(r'<a class="avatar[^"]*" href="/([^/"]+)/"', table)

    names, next_url = pages.parse_members(MEMBERS.read_bytes())

    assert len(expected) == 30
    assert names == expected
    assert names[0] == "schaffrillas"
    assert next_url == "/members/popular/this/week/page/2/"


@pytest.mark.parametrize(
    "parse",
    [
        lambda b: pages.parse_films_grid(b, "u"),
        lambda b: pages.parse_diary(b, "u"),
        pages.parse_film_page,
        pages.parse_members,
    ],
)
def test_parsers_refuse_the_outage_page(parse) -> None:
    with pytest.raises(OutagePageError):
        parse(OUTAGE.read_bytes())


def test_detect_block_causes() -> None:
    assert pages.detect_block(403, CLOUDFLARE_403_HEADERS, b"<html>Forbidden</html>") == CAUSE_403
    assert pages.detect_block(403, CLOUDFLARE_403_HEADERS, CHALLENGE_BODY) == CAUSE_CHALLENGE
    assert pages.detect_block(200, {}, CHALLENGE_BODY) == CAUSE_CHALLENGE
    assert pages.detect_block(403, {b"cf-mitigated": [b"challenge"]}, b"") == CAUSE_CHALLENGE
    assert pages.detect_block(200, {}, OUTAGE.read_bytes()) == CAUSE_OUTAGE
    assert pages.detect_block(503, {}, OUTAGE.read_bytes()) == CAUSE_OUTAGE
    assert pages.detect_block(429, {"Retry-After": "5"}, b"Too Many Requests") is None
    assert pages.detect_block(404, {}, b"Sorry, we can't find the page") is None


def test_ordinary_pages_are_not_blocks() -> None:
    # Real pages carry Cloudflare's bot-telemetry script (challenge-platform/scripts/jsd):
    # that alone is not a challenge.
    profile = HTML / "profile" / "2026-01_spazznolo_profile.rendered.html"
    assert b"/cdn-cgi/challenge-platform/scripts/jsd/" in profile.read_bytes()
    for path in sorted(HTML.rglob("*.htm*")):
        if path != OUTAGE:
            assert pages.detect_block(200, {}, path.read_bytes()) is None, path.name


def test_crawl_blocked_message() -> None:
    exc = CrawlBlocked(CAUSE_403, "https://letterboxd.com/someone/rss/")
    assert (exc.cause, exc.url) == (CAUSE_403, "https://letterboxd.com/someone/rss/")
    assert str(exc) == (
        "Letterboxd answered 403 (blocked, or the profile is private) at "
        "https://letterboxd.com/someone/rss/: use your data export (Settings > Data > Export) "
        "and `lbx import`"
    )
    assert "Cloudflare challenge" in str(CrawlBlocked(CAUSE_CHALLENGE, None))
    assert "outage" in str(CrawlBlocked(CAUSE_OUTAGE, None))


@pytest.mark.parametrize("bad", ["a b", "../admin", "x" * 65, "ümlaut", "a/b", "a.b"])
def test_one_username_rule_for_crawls_and_exports(bad: str) -> None:
    with pytest.raises(InvalidUsername) as from_export:
        validate_username(bad)
    with pytest.raises(InvalidUsername) as from_crawl:
        parse_users([bad, "filipe_furtado"])
    assert str(from_crawl.value) == str(from_export.value)
    assert "1 to 64 letters, digits and underscores only" in str(from_crawl.value)


def test_username_accepted() -> None:
    assert parse_users("filipe_furtado, x_1 ,filipe_furtado") == ["filipe_furtado", "x_1"]
    assert validate_username("x" * 64) == "x" * 64


def test_grid_posters_without_a_slug_or_a_name_are_left_out_and_described() -> None:
    text = GRIDS[0].read_text(encoding="utf-8")
    chunks = text.split('<li class="griditem">')
    chunks[1] = re.sub(r'data-item-slug="[^"]+"', 'data-item-slug="&lt;&lt;&lt;"', chunks[1], count=1)
    chunks[2] = re.sub(r'data-item-(full-display-)?name="[^"]*"', "", chunks[2])
    grid = pages.parse_films_grid('<li class="griditem">'.join(chunks), "someone")
    second = re.search(r'data-item-slug="([^"]+)"', chunks[2]).group(1)
    assert len(grid.items) == 70
    assert grid.invalid == ["slug '<<<' is not a Letterboxd film slug", f"film {second!r} has no name"]


def test_a_grid_of_only_junk_is_refused() -> None:
    junk = '<ul><li class="griditem"><div class="react-component" data-item-slug="<<<"></div></li>'
    with pytest.raises(PageError, match=r"none of the 1 posters on this page is a film lbx can read \(slug '<<<'"):
        pages.parse_films_grid(junk, "someone")


def test_diary_rows_without_a_film_are_left_out_and_described() -> None:
    text = DIARY.read_text(encoding="utf-8")
    first = re.search(r'data-item-slug="([^"]+)"', text).group(1)
    broken = text.replace(f'data-item-slug="{first}"', 'data-item-slug="a b"', 1)
    invalid: list[str] = []
    rows = pages.parse_diary(broken, "hyumiguel", invalid)
    assert len(rows) == len(pages.parse_diary(text, "hyumiguel")) - 1
    assert invalid == ["slug 'a b' is not a Letterboxd film slug"]
