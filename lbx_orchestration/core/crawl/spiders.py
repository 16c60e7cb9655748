"""The two spiders: `rss` (recent diary of each user) and `profile` (films grid, diary, films)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from lbx_orchestration.core.letterboxd import pages, rss
from lbx_orchestration.core.letterboxd.usernames import validate_username

log = logging.getLogger(__name__)
Parsed = TypeVar("Parsed")

LETTERBOXD_HOSTS = {"letterboxd.com", "www.letterboxd.com"}


def normalize_base_url(base_url: str) -> str:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must be http(s)://host[:port], got {base_url!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(f"base URL must have no path or query, got {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def parse_users(users: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if users is None:
        return []
    raw = users.split(",") if isinstance(users, str) else list(users)
    out: list[str] = []
    for name in raw:
        name = name.strip()
        if name and name not in out:
            out.append(validate_username(name))
    return out


SPIDER_ARGS: dict[str, set[str]] = {
    "rss": set(),
    "profile": {"include_diary", "include_film_pages", "max_pages", "members_pages"},
}


def check_spider_args(spider: str, args: dict[str, Any]) -> dict[str, Any]:
    """The spider's arguments, or ValueError naming the bad one (checked in parent and child)."""
    if spider not in SPIDER_ARGS:
        raise ValueError(f"unknown spider {spider!r}; choose one of {', '.join(SPIDER_ARGS)}")
    unknown = sorted(set(args) - SPIDER_ARGS[spider])
    if unknown:
        allowed = ", ".join(sorted(SPIDER_ARGS[spider])) or "none"
        raise ValueError(f"unknown argument(s) {unknown} for spider {spider!r}; allowed: {allowed}")
    for key in ("max_pages", "members_pages"):
        value = args.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a whole number >= 1, got {value!r}")
    for key in ("include_diary", "include_film_pages"):
        if key in args and not isinstance(args[key], bool):
            raise ValueError(f"{key} must be true or false, got {args[key]!r}")
    return args


class LbxSpider(scrapy.Spider):
    def __init__(
        self,
        users: str | list[str] | None = None,
        base_url: str = "https://letterboxd.com",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.users = parse_users(users)
        self.base_url = normalize_base_url(base_url)
        self.allowed_domains = [urlsplit(self.base_url).hostname or ""]
        self._pages: dict[str, dict[tuple[Any, ...], int]] = {}

    def url(self, path: str) -> str:
        return self.base_url + path

    def rebase(self, href: str) -> str:
        """Links on Letterboxd pages may be absolute: keep every request on base_url's host."""
        parts = urlsplit(href)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.url(path if path.startswith("/") else "/" + path)

    def request(self, url: str, callback: Any, cb_kwargs: dict[str, Any], **meta: Any) -> scrapy.Request:
        """A listing request (feed, grid, diary, members): robots.txt refusing it is an error."""
        return scrapy.Request(
            url,
            callback=callback,
            cb_kwargs=cb_kwargs,
            errback=self.dropped,
            meta={"handle_httpstatus_list": [404], **meta},
        )

    def dropped(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        if failure.check(IgnoreRequest) and "robots.txt" in str(failure.value) and request is not None:
            self._append("lbx/robots_refused_urls", request.url)

    def _append(self, key: str, value: Any) -> None:
        stats = self.crawler.stats
        stats.set_value(key, [*(stats.get_value(key) or []), value])

    def page_done(self, n_items: int, invalid: list[str] | None = None, url: str | None = None) -> None:
        stats = self.crawler.stats
        stats.inc_value("lbx/pages")
        if n_items == 0:
            stats.inc_value("lbx/empty_pages")
        if invalid:
            stats.inc_value("lbx/invalid_items", len(invalid))
            self._append("lbx/invalid_item_notes", f"{url}: {len(invalid)} skipped ({invalid[0]})")

    def repeats(self, listing: str, page: int, keys: list[Any], url: str) -> bool:
        """True (and noted) when this page's films are exactly those of an earlier page.

        A site whose "next" link keeps serving the same films would otherwise be followed
        forever; the crawl stops following that listing and keeps what it already has.
        """
        if not keys:
            return False
        seen = self._pages.setdefault(listing, {})
        fingerprint = tuple(keys)
        first = seen.get(fingerprint)
        if first is None:
            seen[fingerprint] = page
            return False
        self._append(
            "lbx/repeated_pages",
            f"{url}: page {page} of {listing} repeats page {first} (the same {len(keys)} entries); "
            "stopped following its next link",
        )
        return True

    def not_found(self, response: Response) -> None:
        self.crawler.stats.inc_value("lbx/not_found")
        self._append("lbx/not_found_urls", response.url)

    def unparsable(self, response: Response, exc: Exception) -> None:
        self.crawler.stats.inc_value("lbx/unparsable_pages")
        self._append("lbx/unparsable_urls", f"{response.url} ({exc})")
        log.warning("could not parse %s: %s", response.url, exc)

    def parsed(self, response: Response, parse: Callable[[bytes], Parsed]) -> Parsed | None:
        """``parse`` of the page's body, or None once the page is counted as unparsable."""
        try:
            return parse(response.body)
        except pages.PageError as exc:
            self.unparsable(response, exc)
            return None

    def found_and_parsed(self, response: Response, parse: Callable[[bytes], Parsed]) -> Parsed | None:
        """As ``parsed``, and None once a missing page (404) is counted as not found."""
        if response.status == 404:
            self.not_found(response)
            return None
        return self.parsed(response, parse)


class RssSpider(LbxSpider):
    name = "rss"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for user in self.users:
            yield self.request(self.url(f"/{user}/rss/"), self.parse_feed, {"username": user})

    def parse_feed(self, response: Response, username: str) -> Iterator[dict[str, Any]]:
        rows = self.found_and_parsed(response, lambda body: rss.parse_feed(body, username))
        if rows is None:
            return
        self.page_done(len(rows))
        yield from rows


class ProfileSpider(LbxSpider):
    name = "profile"

    def __init__(
        self,
        users: str | list[str] | None = None,
        base_url: str = "https://letterboxd.com",
        include_diary: bool = False,
        include_film_pages: bool = False,
        max_pages: int | None = None,
        members_pages: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(users=users, base_url=base_url, **kwargs)
        given = {"include_diary": include_diary, "include_film_pages": include_film_pages,
                 "max_pages": max_pages, "members_pages": members_pages}  # fmt: skip
        check_spider_args(self.name, {k: v for k, v in given.items() if v is not None})
        self.include_diary = include_diary
        self.include_film_pages = include_film_pages
        self.max_pages = max_pages
        self.members_pages = members_pages or 0
        self._seen_users: set[str] = set()
        self._seen_films: set[str] = set()

    def _more(self, page: int) -> bool:
        return self.max_pages is None or page < self.max_pages

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.members_pages:
            yield self.request(self.url("/members/popular/this/week/"), self.parse_members, {"page": 1})
        for user in self.users:
            for request in self.user_requests(user):
                yield request

    def user_requests(self, user: str) -> Iterator[scrapy.Request]:
        if user in self._seen_users:
            return
        self._seen_users.add(user)
        yield self.request(self.url(f"/{user}/films/"), self.parse_grid, {"username": user, "page": 1})
        if self.include_diary:
            yield self._diary_request(user, f"/{user}/diary/", page=1, legacy=False)

    def _diary_request(self, user: str, path: str, page: int, legacy: bool) -> scrapy.Request:
        return self.request(self.url(path), self.parse_diary, {"username": user, "page": page, "legacy": legacy})

    def parse_members(self, response: Response, page: int) -> Iterator[Any]:
        members = self.parsed(response, pages.parse_members)
        if members is None:
            return
        names, next_url = members
        if self.repeats("the popular members", page, names, response.url):
            return
        self.page_done(len(names))
        for name in names:
            yield {"kind": "member", "username": name, "source": "popular_this_week", "page": page}
            yield from self.user_requests(name)
        if next_url and page < self.members_pages:
            yield self.request(self.rebase(next_url), self.parse_members, {"page": page + 1})

    def parse_grid(self, response: Response, username: str, page: int) -> Iterator[Any]:
        grid = self.found_and_parsed(response, lambda body: pages.parse_films_grid(body, username))
        if grid is None:
            return
        if self.repeats(f"{username}'s films", page, [i["slug"] for i in grid.items], response.url):
            return
        self.page_done(len(grid.items), grid.invalid, response.url)
        for item in grid.items:
            yield {"kind": "watched", **item, "page": page}
            if self.include_film_pages:
                yield from self._film_request(item["slug"])
        if grid.next_url and self._more(page):
            yield self.request(self.rebase(grid.next_url), self.parse_grid, {"username": username, "page": page + 1})

    def parse_diary(self, response: Response, username: str, page: int, legacy: bool) -> Iterator[Any]:
        if response.status == 404:
            if page == 1 and not legacy:  # diary moved from /USER/films/diary/ in Nov 2025
                yield self._diary_request(username, f"/{username}/films/diary/", 1, legacy=True)
            else:
                self.not_found(response)
            return
        invalid: list[str] = []
        rows = self.parsed(response, lambda body: pages.parse_diary(body, username, invalid))
        if rows is None:
            return
        keys = [(r["viewing_id"], r["film_slug"], r["watched_date"]) for r in rows]
        if self.repeats(f"{username}'s diary", page, keys, response.url):
            return
        self.page_done(len(rows), invalid, response.url)
        for row in rows:
            yield row
            if self.include_film_pages:
                yield from self._film_request(row["film_slug"])
        next_url = pages.next_page_url(response.text)
        if next_url and self._more(page):
            yield self.request(
                self.rebase(next_url),
                self.parse_diary,
                {"username": username, "page": page + 1, "legacy": legacy},
            )

    def _film_request(self, slug: str) -> Iterator[scrapy.Request]:
        if slug in self._seen_films:
            return
        self._seen_films.add(slug)
        yield scrapy.Request(
            self.url(f"/film/{slug}/"),
            callback=self.parse_film,
            cb_kwargs={"requested_slug": slug},
            meta={"handle_httpstatus_list": [404]},
        )

    def parse_film(self, response: Response, requested_slug: str) -> Iterator[dict[str, Any]]:
        film = self.found_and_parsed(response, pages.parse_film_page)
        if film is None:
            return
        self.crawler.stats.inc_value("lbx/pages")
        if film["tmdb_type"] != "movie":  # TV titles on Letterboxd: not ours to recommend
            self.crawler.stats.inc_value("lbx/tv_pages_skipped")
            return
        yield {"kind": "film_page", "requested_slug": requested_slug, **film}


SPIDERS: dict[str, type[LbxSpider]] = {"rss": RssSpider, "profile": ProfileSpider}
