"""Parsers for Letterboxd HTML pages (films grid, diary, film page, members) and block detection.

Pure functions over bytes/str: no Scrapy engine needed. Markup notes live in
lbx_orchestration_tests/fixtures/letterboxd/SOURCES.md ("Markup facts").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from parsel import Selector

from lbx_orchestration.core.letterboxd.usernames import is_username

EXPORT_HINT = "use your data export (Settings > Data > Export) and `lbx import`"

CAUSE_403 = "403 blocked or private profile"
CAUSE_CHALLENGE = "Cloudflare challenge page"
CAUSE_OUTAGE = "Letterboxd outage page"

_NAME_YEAR_RE = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
_RATED_RE = re.compile(r"\brated-(\d{1,2})\b")
_TMDB_LINK_RE = re.compile(r"themoviedb\.org/(?P<type>movie|tv)/(?P<id>\d+)")
_IMDB_RE = re.compile(r"/title/(tt\d+)")
_FILM_SLUG_RE = re.compile(r"/film/([^/]+)/")
# Letterboxd film slugs are lowercase ASCII words joined by hyphens ("8-1-2", "amelie").
_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
# Cloudflare's interstitial: "Just a moment..." title, the _cf_chl_opt config, cf-chl-* ids,
# or the challenge-platform orchestration path. Ordinary Letterboxd pages also carry
# `/cdn-cgi/challenge-platform/scripts/jsd/main.js` (bot telemetry), which is NOT a challenge.
_CHALLENGE_MARKERS = (
    re.compile(rb"<title>\s*Just a moment\.\.\.\s*</title>", re.I),
    re.compile(rb"_cf_chl_opt|cf-chl-|cf_chl_"),
    re.compile(rb"/cdn-cgi/challenge-platform/(?!scripts/jsd/)"),
    re.compile(rb"<title>\s*Attention Required! \| Cloudflare\s*</title>", re.I),
)


class PageError(ValueError):
    """A page is not what was asked for (an outage or challenge page, or not a feed)."""

    cause = "unexpected page"


class OutagePageError(PageError):
    cause = CAUSE_OUTAGE


class ChallengePageError(PageError):
    cause = CAUSE_CHALLENGE


class NotAFeedError(PageError):
    cause = "not an RSS feed"


class CrawlBlocked(RuntimeError):  # not "...Error": the name the CLI and assets use
    """Letterboxd refused the crawl: the message names the cause, the URL and the way out."""

    def __init__(
        self,
        cause: str,
        url: str | None,
        *,
        items: list[dict[str, Any]] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        self.cause = cause
        self.url = url
        self.items = items or []
        self.stats = stats or {}
        super().__init__(blocked_message(cause, url))


def blocked_message(cause: str, url: str | None) -> str:
    if cause == CAUSE_403:
        what = "Letterboxd answered 403 (blocked, or the profile is private)"
    elif cause == CAUSE_CHALLENGE:
        what = "Letterboxd answered a Cloudflare challenge page (scripts are blocked)"
    elif cause == CAUSE_OUTAGE:
        what = "Letterboxd answered its outage page (the site is down)"
    else:
        what = f"Letterboxd stopped the crawl ({cause})"
    where = f" at {url}" if url else ""
    return f"{what}{where}: {EXPORT_HINT}"


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _as_text(html: bytes | str) -> str:
    return html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html


def is_outage_page(body: bytes | str) -> bool:
    raw = _as_bytes(body)
    if b"error" not in raw or b"message" not in raw:
        return False
    sel = Selector(text=_as_text(raw))
    return bool(sel.css("body.error > section.message"))


def is_challenge_page(body: bytes | str) -> bool:
    raw = _as_bytes(body)[:200_000]
    return any(marker.search(raw) for marker in _CHALLENGE_MARKERS)


def _header(headers: dict[Any, Any], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() != wanted:
            continue
        if isinstance(value, list | tuple):
            value = value[0] if value else b""
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def detect_block(status: int, headers: dict[Any, Any], body: bytes | str) -> str | None:
    """Why this response means "stop crawling", or None when it is an ordinary page.

    A private profile and a Cloudflare block both answer 403 with Cloudflare headers, so a 403
    is "blocked or private"; the outage page and a challenge body are recognised by their
    markup whatever the status (Cloudflare serves challenges with 403 or 503, sometimes 200).
    """
    if is_outage_page(body):
        return CAUSE_OUTAGE
    if is_challenge_page(body) or _header(headers, "cf-mitigated").lower() == "challenge":
        return CAUSE_CHALLENGE
    if status == 403:
        return CAUSE_403
    return None


def refuse_block_page(body: bytes | str) -> None:
    """Raise a PageError subclass when the body is an outage or challenge page."""
    if is_outage_page(body):
        raise OutagePageError("got the Letterboxd outage page instead of the requested page")
    if is_challenge_page(body):
        raise ChallengePageError("got a Cloudflare challenge page instead of the requested page")


def split_name_year(name: str | None) -> tuple[str | None, int | None]:
    """'Title (2001)' -> ('Title', 2001); a name without a year keeps its text and year None."""
    if not name:
        return None, None
    m = _NAME_YEAR_RE.match(name.strip())
    if not m:
        return name.strip(), None
    return m.group("title"), int(m.group("year"))


def rating_from_classes(classes: str | None) -> float | None:
    """'rating -micro rated-9' -> 4.5 (N half-stars); no rated-N class -> None (unrated)."""
    if not classes:
        return None
    m = _RATED_RE.search(classes)
    if not m:
        return None
    half_stars = int(m.group(1))
    if not 1 <= half_stars <= 10:
        return None
    return half_stars / 2


def _lid(identifier: str | None) -> str | None:
    if not identifier:
        return None
    try:
        data = json.loads(identifier)
    except ValueError:
        return None
    lid = data.get("lid") if isinstance(data, dict) else None
    return str(lid) if lid else None


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def next_page_url(html: bytes | str | Selector) -> str | None:
    """The `a.next` link of `div.pagination` (relative or absolute, as written), or None."""
    sel = html if isinstance(html, Selector) else Selector(text=_as_text(html))
    href = sel.css("div.pagination a.next::attr(href)").get()
    return href.strip() if href else None


def _page_count(sel: Selector) -> int | None:
    numbers = [int(t) for t in sel.css("div.pagination li.paginate-page ::text").getall() if t.strip().isdigit()]
    return max(numbers) if numbers else None


@dataclass
class GridPage:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_url: str | None = None
    page_count: int | None = None
    invalid: list[str] = field(default_factory=list)  # posters skipped, and why


def film_problem(slug: Any, title: Any) -> str | None:
    """Why a poster or diary row is not a film lbx can keep (None when it is one)."""
    if not isinstance(slug, str) or not _SLUG_RE.fullmatch(slug):
        shown = repr(slug[:40]) if isinstance(slug, str) else repr(slug)
        return f"slug {shown} is not a Letterboxd film slug"
    if not isinstance(title, str) or not title.strip():
        return f"film {slug!r} has no name"
    return None


def _keep_films(
    rows: list[dict[str, Any]], slug_key: str, title_key: str, what: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows that are films, and the others described; PageError when only junk is left."""
    kept, invalid = [], []
    for row in rows:
        problem = film_problem(row.get(slug_key), row.get(title_key))
        if problem is None:
            kept.append(row)
        else:
            invalid.append(problem)
    if invalid and not kept:
        shown = "; ".join(invalid[:3]) + ("; ..." if len(invalid) > 3 else "")
        raise PageError(f"none of the {len(invalid)} {what} on this page is a film lbx can read ({shown})")
    return kept, invalid


def _grid_item_new(li: Selector, username: str) -> dict[str, Any] | None:
    comp = li.css("div.react-component[data-item-slug]")
    if not comp:
        return None
    comp = comp[0]
    name = comp.attrib.get("data-item-name") or comp.attrib.get("data-item-full-display-name")
    title, year = split_name_year(name)
    rating_classes = li.css("p.poster-viewingdata span.rating::attr(class)").get()
    liked = bool(li.css("p.poster-viewingdata span.like.icon-liked"))
    return {
        "username": username,
        "slug": comp.attrib["data-item-slug"],
        "name": title,
        "year": year,
        "film_id": _int_or_none(comp.attrib.get("data-film-id")),
        "lid": _lid(comp.attrib.get("data-postered-identifier")),
        "rating": rating_from_classes(rating_classes),
        "liked": liked,
    }


def _grid_item_2023(li: Selector, username: str) -> dict[str, Any] | None:
    poster = li.css("div.film-poster[data-film-slug]")
    if not poster:
        return None
    poster = poster[0]
    m = _FILM_SLUG_RE.search(poster.attrib["data-film-slug"])
    slug = m.group(1) if m else poster.attrib["data-film-slug"].strip("/")
    title, year = split_name_year(poster.css("img::attr(alt)").get())
    rating = rating_from_classes(li.css("p.poster-viewingdata span.rating::attr(class)").get())
    if rating is None:
        owner = _int_or_none(li.attrib.get("data-owner-rating"))
        rating = owner / 2 if owner and 1 <= owner <= 10 else None
    return {
        "username": username,
        "slug": slug,
        "name": title,
        "year": year,
        "film_id": _int_or_none(poster.attrib.get("data-film-id")),
        "lid": None,
        "rating": rating,
        "liked": bool(li.css("p.poster-viewingdata span.like.icon-liked")),
    }


def parse_films_grid(html: bytes | str, username: str) -> GridPage:
    """A /USER/films/ page: one dict per poster, in page order (2025+ and 2023 markup).

    Posters without a valid slug or a name are left out and described in ``invalid``; a page
    whose posters are all like that raises PageError.
    """
    refuse_block_page(html)
    sel = Selector(text=_as_text(html))
    items: list[dict[str, Any]] = []
    for li in sel.css("li.griditem, li.posteritem"):
        item = _grid_item_new(li, username)
        if item:
            items.append(item)
    if not items:
        for li in sel.css("li.poster-container"):
            item = _grid_item_2023(li, username)
            if item:
                items.append(item)
    items, invalid = _keep_films(items, "slug", "name", "posters")
    return GridPage(items=items, next_url=next_page_url(sel), page_count=_page_count(sel), invalid=invalid)


def _diary_date(href: str | None) -> date | None:
    if not href:
        return None
    parts = [p for p in href.split("/") if p]
    if len(parts) < 3 or not all(p.isdigit() for p in parts[-3:]):
        return None
    y, m, d = (int(p) for p in parts[-3:])
    return date(y, m, d)


def parse_diary(html: bytes | str, username: str, invalid: list[str] | None = None) -> list[dict[str, Any]]:
    """Diary rows of /USER/diary/ (or the older /USER/films/diary/), one dict per viewing.

    Rows without a valid film slug or name are left out (described in ``invalid`` when given);
    a page whose rows are all like that raises PageError.
    """
    refuse_block_page(html)
    sel = Selector(text=_as_text(html))
    rows: list[dict[str, Any]] = []
    for tr in sel.css("tr.diary-entry-row"):
        comp = tr.css("td.col-production div.react-component[data-item-slug]")
        if not comp:
            continue
        comp = comp[0]
        title, year = split_name_year(comp.attrib.get("data-item-name"))
        rewatch_classes = tr.css("td.col-rewatch::attr(class)").get() or ""
        rows.append(
            {
                "username": username,
                "kind": "diary",
                "viewing_id": _int_or_none(tr.attrib.get("data-viewing-id")),
                "film_slug": comp.attrib["data-item-slug"],
                "film_title": title,
                "film_year": year,
                "film_id": _int_or_none(comp.attrib.get("data-film-id")),
                "lid": _lid(comp.attrib.get("data-postered-identifier")),
                "watched_date": _diary_date(tr.css("td.col-daydate a::attr(href)").get()),
                "rewatch": "icon-status-off" not in rewatch_classes.split(),
                "rating": rating_from_classes(tr.css("td.col-rating span.rating::attr(class)").get()),
                "liked": bool(tr.css("td.col-like .icon-liked")),
            }
        )
    rows, skipped = _keep_films(rows, "film_slug", "film_title", "diary rows")
    if invalid is not None:
        invalid.extend(skipped)
    return rows


def parse_film_page(html: bytes | str) -> dict[str, Any]:
    """/film/SLUG/: ids and title. TV titles (empty data-tmdb-id, /tv/ link) get tmdb_type 'tv'."""
    refuse_block_page(html)
    sel = Selector(text=_as_text(html))
    body = sel.css("body")
    if not body or "film" not in (body[0].attrib.get("class") or "").split():
        raise PageError('not a Letterboxd film page (no <body class="film">)')
    attrs = body[0].attrib
    tmdb_link = sel.css('a[data-track-action="TMDB"]::attr(href)').get() or ""
    link = _TMDB_LINK_RE.search(tmdb_link)
    tmdb_type = link.group("type") if link else (attrs.get("data-tmdb-type") or None)
    tmdb_id = _int_or_none(attrs.get("data-tmdb-id"))
    if tmdb_id is None and link and tmdb_type == "movie":
        tmdb_id = int(link.group("id"))
    if tmdb_type != "movie":
        tmdb_id = None
    imdb_link = sel.css('a[data-track-action="IMDb"]::attr(href)').get() or ""
    imdb = _IMDB_RE.search(imdb_link)
    og_url = sel.css('meta[property="og:url"]::attr(content)').get() or ""
    slug_m = _FILM_SLUG_RE.search(og_url)
    title, year = split_name_year(sel.css('meta[property="og:title"]::attr(content)').get())
    if title is None:
        title = " ".join(sel.css("h1.primaryname span.name ::text").getall()).strip() or None
    return {
        "slug": slug_m.group(1) if slug_m else None,
        "tmdb_id": tmdb_id,
        "tmdb_type": tmdb_type,
        "imdb_id": imdb.group(1) if imdb else None,
        "title": title,
        "year": year,
    }


def parse_members(html: bytes | str) -> tuple[list[str], str | None]:
    """Usernames from /members/popular/... (`table.member-table a.avatar`), and the next page."""
    refuse_block_page(html)
    sel = Selector(text=_as_text(html))
    names: list[str] = []
    for href in sel.css("table.member-table a.avatar::attr(href)").getall():
        name = href.strip("/").split("/")[-1] if href.strip("/") else ""
        if is_username(name) and name not in names:
            names.append(name)
    return names, next_page_url(sel)
