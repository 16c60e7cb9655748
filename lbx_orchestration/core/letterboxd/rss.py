"""Parser for a member's RSS feed (/USER/rss/): the last 50 diary entries, list items skipped."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from lxml import etree

from lbx_orchestration.core.letterboxd.pages import NotAFeedError, refuse_block_page

_FILM_LINK_RE = re.compile(r"/film/([^/]+)/")


def _children(item: etree._Element) -> dict[str, str]:
    """Child elements by local name (namespace prefixes moved over the years: match names)."""
    out: dict[str, str] = {}
    for child in item:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        prefix = (child.prefix or "") + ":" if child.prefix else ""
        out[prefix + name] = (child.text or "").strip()
        out.setdefault(name, (child.text or "").strip())
    return out


def _yes_no(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v == "yes":
        return True
    if v == "no":
        return False
    return None


def _float_or_none(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _date_or_none(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_feed(xml: bytes | str, username: str) -> list[dict[str, Any]]:
    """One dict per diary item (watch or review) in feed order.

    Raises a PageError subclass when handed an outage or challenge page (Letterboxd serves its
    outage page with status 200 in place of the feed) or anything else that is not RSS.
    """
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser=parser)
    except etree.XMLSyntaxError as exc:
        refuse_block_page(raw)
        raise NotAFeedError(f"not an RSS feed for {username!r}: {exc}") from None
    if etree.QName(root).localname != "rss" or root.find("channel") is None:
        refuse_block_page(raw)
        raise NotAFeedError(f"not an RSS feed for {username!r}: root is <{root.tag}>")
    rows: list[dict[str, Any]] = []
    for item in root.find("channel").iterfind("item"):
        fields = _children(item)
        title = fields.get("letterboxd:filmTitle") or fields.get("filmTitle")
        if not title:  # list items (guid letterboxd-list-N) carry no film fields
            continue
        if fields.get("tmdb:tvId") or fields.get("tvId"):
            continue  # a TV show or episode: never a film, never matched to one by its title
        link = fields.get("link", "")
        slug = _FILM_LINK_RE.search(link)
        rows.append(
            {
                "username": username,
                "kind": "diary",
                "film_title": title,
                "film_year": _int_or_none(fields.get("filmYear")),
                "film_slug": slug.group(1) if slug else None,
                "watched_date": _date_or_none(fields.get("watchedDate")),
                "rewatch": bool(_yes_no(fields.get("rewatch"))),
                "rating": _float_or_none(fields.get("memberRating")),
                "liked": _yes_no(fields.get("memberLike")),
                "tmdb_id": _int_or_none(fields.get("tmdb:movieId") or fields.get("movieId")),
                "letterboxd_link": link or None,
                "guid": fields.get("guid") or None,
            }
        )
    return rows
