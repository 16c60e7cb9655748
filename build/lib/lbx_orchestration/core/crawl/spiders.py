"""The two spiders: `rss` (recent diary of each user) and `profile` (films grid, diary, films)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response

from lbx_orchestration.core.letterboxd import pages, rss

log = logging.getLogger(__name__)

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
            out.append(pages.check_username(name))
    return out


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return number


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

    def url(self, path: str) -> str:
        return self.base_url + path

    def rebase(self, href: str) -> str:
        """Links on Letterboxd pages may be absolute: keep every request on base_url's host."""
        parts = urlsplit(href)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.url(path if path.startswith("/") else "/" + path)

    def page_done(self, n_items: int) -> None:
        stats = self.crawler.stats
        stats.inc_value("lbx/pages")
        if n_items == 0:
            stats.inc_value("lbx/empty_pages")

    def not_found(self, response: Response) -> None:
        stats = self.crawler.stats
        stats.inc_value("lbx/not_found")
        missing = stats.get_value("lbx/not_found_urls") or []
        stats.set_value("lbx/not_found_urls", [*missing, response.url])

    def unparsable(self, response: Response, exc: Exception) -> None:
        stats = self.crawler.stats
        stats.inc_value("lbx/unparsable_pages")
        urls = stats.get_value("lbx/unparsable_urls") or []
        stats.set_value("lbx/unparsable_urls", [*urls, f"{response.url} ({exc})"])
        log.warning("could not parse %s: %s", response.url, exc)


class RssSpider(LbxSpider):
    name = "rss"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for user in self.users:
            yield scrapy.Request(
                self.url(f"/{user}/rss/"),
                callback=self.parse_feed,
                cb_kwargs={"username": user},
                meta={"handle_httpstatus_list": [404]},
            )

    def parse_feed(self, response: Response, username: str) -> Iterator[dict[str, Any]]:
        if response.status == 404:
            self.not_found(response)
            return
        try:
            rows = rss.parse_feed(response.body, username)
        except pages.PageError as exc:
            self.unparsable(response, exc)
            return
        self.page_done(len(rows))
        yield from rows


class ProfileSpider(LbxSpider):
    name = "profile"

    def __init__(
        self,
        users: str | list[str] | None = None,
        base_url: str = "https://letterboxd.com",
        include_diary: bool | str = False,
        include_film_pages: bool | str = False,
        max_pages: int | str | None = None,
        members_pages: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(users=users, base_url=base_url, **kwargs)
        self.include_diary = _flag(include_diary)
        self.include_film_pages = _flag(include_film_pages)
        self.max_pages = _optional_int(max_pages, "max_pages")
        self.members_pages = _optional_int(members_pages, "members_pages") or 0
        self._seen_users: set[str] = set()
        self._seen_films: set[str] = set()

    def _more(self, page: int) -> bool:
        return self.max_pages is None or page < self.max_pages

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.members_pages:
            yield scrapy.Request(
                self.url("/members/popular/this/week/"),
                callback=self.parse_members,
                cb_kwargs={"page": 1},
            )
        for user in self.users:
            for request in self.user_requests(user):
                yield request

    def user_requests(self, user: str) -> Iterator[scrapy.Request]:
        if user in self._seen_users:
            return
        self._seen_users.add(user)
        yield scrapy.Request(
            self.url(f"/{user}/films/"),
            callback=self.parse_grid,
            cb_kwargs={"username": user, "page": 1},
            meta={"handle_httpstatus_list": [404]},
        )
        if self.include_diary:
            yield self._diary_request(user, f"/{user}/diary/", page=1, legacy=False)

    def _diary_request(self, user: str, path: str, page: int, legacy: bool) -> scrapy.Request:
        return scrapy.Request(
            self.url(path),
            callback=self.parse_diary,
            cb_kwargs={"username": user, "page": page, "legacy": legacy},
            meta={"handle_httpstatus_list": [404]},
        )

    def parse_members(self, response: Response, page: int) -> Iterator[Any]:
        names, next_url = pages.parse_members(response.body)
        self.page_done(len(names))
        for name in names:
            yield {"kind": "member", "username": name, "source": "popular_this_week", "page": page}
            yield from self.user_requests(name)
        if next_url and page < self.members_pages:
            yield scrapy.Request(
                self.rebase(next_url), callback=self.parse_members, cb_kwargs={"page": page + 1}
            )

    def parse_grid(self, response: Response, username: str, page: int) -> Iterator[Any]:
        if response.status == 404:
            self.not_found(response)
            return
        grid = pages.parse_films_grid(response.body, username)
        self.page_done(len(grid.items))
        for item in grid.items:
            yield {"kind": "watched", **item, "page": page}
            if self.include_film_pages:
                yield from self._film_request(item["slug"])
        if grid.next_url and self._more(page):
            yield scrapy.Request(
                self.rebase(grid.next_url),
                callback=self.parse_grid,
                cb_kwargs={"username": username, "page": page + 1},
                meta={"handle_httpstatus_list": [404]},
            )

    def parse_diary(
        self, response: Response, username: str, page: int, legacy: bool
    ) -> Iterator[Any]:
        if response.status == 404:
            if page == 1 and not legacy:  # diary moved from /USER/films/diary/ in Nov 2025
                yield self._diary_request(username, f"/{username}/films/diary/", 1, legacy=True)
            else:
                self.not_found(response)
            return
        rows = pages.parse_diary(response.body, username)
        self.page_done(len(rows))
        for row in rows:
            yield row
            if self.include_film_pages:
                yield from self._film_request(row["film_slug"])
        next_url = pages.next_page_url(response.text)
        if next_url and self._more(page):
            yield scrapy.Request(
                self.rebase(next_url),
                callback=self.parse_diary,
                cb_kwargs={"username": username, "page": page + 1, "legacy": legacy},
                meta={"handle_httpstatus_list": [404]},
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
        if response.status == 404:
            self.not_found(response)
            return
        try:
            film = pages.parse_film_page(response.body)
        except pages.PageError as exc:
            self.unparsable(response, exc)
            return
        self.crawler.stats.inc_value("lbx/pages")
        if film["tmdb_type"] != "movie":  # TV titles on Letterboxd: not ours to recommend
            self.crawler.stats.inc_value("lbx/tv_pages_skipped")
            return
        yield {"kind": "film_page", "requested_slug": requested_slug, **film}


SPIDERS: dict[str, type[LbxSpider]] = {"rss": RssSpider, "profile": ProfileSpider}
