"""RSS feed parser on the four recorded feeds; expectations are read from each <item> chunk with
regexes, independently of the lxml-based parser."""

from __future__ import annotations

import html
import re
from datetime import date
from pathlib import Path

import pytest

from lbx_orchestration.core.letterboxd.pages import (
    ChallengePageError,
    NotAFeedError,
    OutagePageError,
    PageError,
)
from lbx_orchestration.core.letterboxd.rss import parse_feed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "letterboxd"
FEEDS = sorted((FIXTURES / "rss").glob("*.xml"))
OUTAGE = FIXTURES / "html" / "error" / "2026-08_maintenance_outage_instead_of_rss.html"


def _tag(chunk: str, name: str) -> str | None:
    m = re.search(rf"<{name}>([^<]*)</{name}>", chunk)
    return m.group(1) if m else None


def _film_items(text: str) -> list[str]:
    chunks = re.findall(r"<item>(.*?)</item>", text, re.S)
    return [c for c in chunks if "letterboxd-list-" not in c]


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name)
def test_feed_rows_match_items(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    items = _film_items(text)
    rows = parse_feed(path.read_bytes(), "member")

    assert len(rows) == len(items)
    assert [r["guid"] for r in rows] == [re.search(r">(letterboxd-[a-z]+-\d+)</guid>", c).group(1) for c in items]
    assert [r["film_title"] for r in rows] == [html.unescape(_tag(c, "letterboxd:filmTitle")) for c in items]
    assert [r["film_year"] for r in rows] == [int(_tag(c, "letterboxd:filmYear")) for c in items]
    ratings = [_tag(c, "letterboxd:memberRating") for c in items]
    assert [r["rating"] for r in rows] == [float(v) if v else None for v in ratings]
    watched = [_tag(c, "letterboxd:watchedDate") for c in items]
    assert [r["watched_date"] for r in rows] == [date.fromisoformat(v) if v else None for v in watched]
    assert [r["rewatch"] for r in rows] == [_tag(c, "letterboxd:rewatch") == "Yes" for c in items]
    likes = [_tag(c, "letterboxd:memberLike") for c in items]
    assert [r["liked"] for r in rows] == [None if v is None else v == "Yes" for v in likes]
    tmdb = [_tag(c, "tmdb:movieId") for c in items]
    assert [r["tmdb_id"] for r in rows] == [int(v) if v else None for v in tmdb]
    assert all(r["username"] == "member" and r["kind"] == "diary" for r in rows)
    assert all(r["letterboxd_link"].startswith("https://letterboxd.com/") for r in rows)


def test_feed_counts_and_list_items_skipped() -> None:
    counts = {p.name: len(parse_feed(p.read_bytes(), "m")) for p in FEEDS}
    assert counts == {
        "2022-02_joshuasalazar.rss.xml": 50,
        "2022-10_aron.rss.xml": 50,  # 51 items, one of them a list
        "2025-12_filipe_furtado.rss.xml": 50,  # 100 items, 50 of them lists
        "2026-08_sdiamond.rss.xml": 50,
    }


def test_feeds_with_and_without_tmdb_ids() -> None:
    old = parse_feed((FIXTURES / "rss" / "2022-10_aron.rss.xml").read_bytes(), "aron")
    new = parse_feed((FIXTURES / "rss" / "2026-08_sdiamond.rss.xml").read_bytes(), "sdiamond")
    assert all(r["tmdb_id"] is None for r in old)
    assert sum(r["rating"] is None for r in old) == 41  # mostly unrated (9 memberRating tags)
    assert all(isinstance(r["tmdb_id"], int) for r in new)
    assert new[0] == {
        "username": "sdiamond",
        "kind": "diary",
        "film_title": "The Sheep Detectives",
        "film_year": 2026,
        "film_slug": "the-sheep-detectives",
        "watched_date": date(2026, 8, 3),
        "rewatch": False,
        "rating": 3.5,
        "liked": False,
        "tmdb_id": 1301421,
        "letterboxd_link": "https://letterboxd.com/sdiamond/film/the-sheep-detectives/",
        "guid": "letterboxd-watch-1431013820",
    }


def test_repeat_entry_link_keeps_the_slug() -> None:
    rows = parse_feed((FIXTURES / "rss" / "2022-10_aron.rss.xml").read_bytes(), "aron")
    assert rows[0]["letterboxd_link"].endswith("/film/miles-davis-birth-of-the-cool/1/")
    assert rows[0]["film_slug"] == "miles-davis-birth-of-the-cool"


def test_outage_page_is_refused() -> None:
    with pytest.raises(OutagePageError, match="outage page"):
        parse_feed(OUTAGE.read_bytes(), "sdiamond")


def test_challenge_page_is_refused() -> None:
    # Built here: no challenge page was ever recorded.
    body = (
        b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
        b'<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script>'
        b"</body></html>"
    )
    with pytest.raises(ChallengePageError):
        parse_feed(body, "sdiamond")


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml at all", b"<html><body><p>hello</p></body></html>", b"<feed></feed>"],
)
def test_non_feed_is_refused(body: bytes) -> None:
    with pytest.raises(NotAFeedError, match="not an RSS feed"):
        parse_feed(body, "someone")
    assert issubclass(NotAFeedError, PageError)


def test_a_tv_item_is_never_a_film() -> None:
    """Letterboxd's feed names a show's TMDb id as tmdb:tvId (no tmdb:movieId): the item is
    left out rather than matched to a film by its title. The first item of a real feed is
    turned into a show here."""
    raw = (FIXTURES / "rss" / "2026-08_sdiamond.rss.xml").read_text(encoding="utf-8")
    films = parse_feed(raw, "sdiamond")
    first = films[0]
    item = re.search(r"<item>.*?</item>", raw, re.S).group(0)
    assert f"<tmdb:movieId>{first['tmdb_id']}</tmdb:movieId>" in item
    show = item.replace(f"<tmdb:movieId>{first['tmdb_id']}</tmdb:movieId>", "<tmdb:tvId>87108</tmdb:tvId>")
    rows = parse_feed(raw.replace(item, show), "sdiamond")
    assert len(rows) == len(films) - 1
    assert first["guid"] not in {r["guid"] for r in rows}
