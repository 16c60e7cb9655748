"""The page in a real browser: Debian's chromium, headless, driven by Playwright for Python,
against `lbx serve`'s app on 127.0.0.1 over a copy of the session warehouse."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from lbx_orchestration.web.app import WebSettings, create_app
from lbx_orchestration_tests.support.web import SAMPLE_EXPORTS, copy_warehouse, serve_in_thread, zip_folder

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError("/usr/bin/chromium is missing: `make test` installs it (apt-get install -y chromium)")
    pytest.skip("no /usr/bin/chromium: run `make test` (it installs Debian's chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(materialized_warehouse, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("web-page")
    db = copy_warehouse(materialized_warehouse.duckdb_path, root / "wh")
    app = create_app(
        WebSettings(
            db=db,
            state_dir=root / "state",
            background_refresh=False,
            settle_seconds=0,
            warm_imports=False,
            imports_burst=20,  # every upload of these tests comes from one address
        )
    )
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []
    pg.on(
        "request", lambda r: None if r.url.startswith(site[0]) or r.url.startswith("data:") else outside.append(r.url)
    )
    yield pg
    context.close()
    assert not errors, errors
    assert not outside, f"the page fetched from outside the server: {outside}"


def cards(pg) -> list[str]:
    return pg.locator("#rec-list > li").all_inner_texts()


def test_a_members_list_then_filters_then_csv(page, site) -> None:
    url, app = site
    page.goto(url)
    page.get_by_label("Letterboxd username").fill("PatrickMJones")
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_selector("#rec-list > li")
    texts = cards(page)
    expected = app.state.lbx.manager.current.user("patrickmjones")[1]
    assert len(texts) == 20
    first = page.locator("#rec-list > li").first
    assert first.locator(".textcard").inner_text().startswith(expected["title"][0])  # offline: a text card
    assert first.locator("h3").inner_text() == f"1.{expected['title'][0]} ({expected['year'][0]})"
    assert expected["reason"][0] in texts[0]
    assert page.locator("#rec-list img").count() == 0  # no posters offline
    # their new films, below the list, each with its reason and release date
    new = app.state.lbx.manager.current.new_films["patrickmjones"]
    page.wait_for_selector("#new-list > li")
    assert page.locator("#new-films").is_visible() and page.locator("#new-list > li").count() == len(new)
    first_new = page.locator("#new-list > li").first.inner_text()
    assert new[0]["title"] in first_new and new[0]["reason"] in first_new and new[0]["release_date"] in first_new

    genre = expected["genres"][0][0]
    page.get_by_label("Genre").select_option(genre)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        f"document.querySelector('#results-heading').textContent.includes('films for') && "
        f"[...document.querySelectorAll('#rec-list > li')].every(li => li.innerText.includes('{genre}'))"
    )
    want = expected.filter(expected["genres"].list.contains(genre)).head(20)
    assert page.locator("#rec-list > li").count() == 20  # ranked among every unseen film, not the stored 50
    href = page.locator("#csv-link").get_attribute("href")
    assert (
        href.startswith("/api/users/patrickmjones/recommendations.csv?") and f"genre={genre.replace(' ', '+')}" in href
    )
    csv_text = page.request.get(url + href).text()
    assert len(csv_text.strip().splitlines()) == 20 + 1 and want.height


def _search(page, url: str, query: str) -> list[str]:
    """The titles the page's search lists for ``query``, as a member types it."""
    page.goto(url)
    page.get_by_label("Title, director, cast, keywords or plot").fill(query)
    page.keyboard.press("Enter")
    page.wait_for_selector("#search-list > li")
    return page.locator("#search-list h3").all_inner_texts()


def test_search_and_more_like_this(page, site) -> None:
    url, _ = site
    titles = _search(page, url, "kubrick")
    assert any(t.startswith("The Shining") for t in titles)
    first = page.locator("#search-list > li").first
    first.get_by_role("button", name=re.compile("^More like")).click()
    page.wait_for_selector("#similar-list > li")
    assert page.locator("#similar").is_visible()
    assert page.locator("#similar-list > li").count() == 8
    assert page.evaluate("document.activeElement.id") == "similar"  # focus moves to the new section


def test_search_finds_the_film_first(page, site) -> None:
    url, _ = site
    titles = _search(page, url, "godfather")
    assert titles[0].startswith("The Godfather") and "Part" not in titles[0], titles
    assert len(titles) < 12  # a relevance floor, not a fixed count


def test_upload_an_export(page, site, tmp_path: Path) -> None:
    url, _ = site
    export = zip_folder(SAMPLE_EXPORTS / "extratone_2024-04", tmp_path / "export.zip")
    page.goto(url)
    page.set_input_files("#export-file", str(export))
    page.get_by_label("Username (optional: read from the export)").fill("page_tester")
    page.get_by_role("button", name="Upload and recommend").click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Imported')", timeout=60_000)
    assert "Imported page_tester" in page.locator("#status").inner_text()
    assert page.locator("#rec-list > li").count() == 50
    assert page.locator("#new-list > li").count() > 0  # new films at once, from the upload's answer
    options = page.locator("#f-list option").all_inner_texts()
    assert any(o.startswith("Software History") for o in options)
    key = page.locator("#member-key").inner_text()
    assert page.locator("#member-key-box").is_visible() and key.startswith("lbxk_")
    # a newer export, from the same browser: its cookie is the key, nothing to type
    newer = shutil.copytree(SAMPLE_EXPORTS / "extratone_2024-04", tmp_path / "newer")
    with (newer / "diary.csv").open("a", encoding="utf-8", newline="") as f:
        f.write("2026-12-01,Heat,1995,https://boxd.it/2aHi,4.5,,,2026-11-30\r\n")
    page.set_input_files("#export-file", str(zip_folder(newer, tmp_path / "newer.zip")))
    page.get_by_role("button", name="Upload and recommend").click()
    page.wait_for_function("document.querySelector('#status').textContent.includes('(updated)')", timeout=60_000)
    assert "Imported page_tester" in page.locator("#status").inner_text()
    assert page.locator("#member-key-box").is_hidden()  # a key is shown once, when it is issued
    # a bad file: the page says why, in words
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    page.set_input_files("#export-file", str(bad))
    page.get_by_role("button", name="Upload and recommend").click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Upload refused')")
    assert "not a zip" in page.locator("#status").inner_text()


def test_another_browser_needs_the_member_key(browser, site, tmp_path: Path) -> None:
    url, _ = site
    export = zip_folder(SAMPLE_EXPORTS / "melvincarvalho_2021-11", tmp_path / "export.zip")
    owner = browser.new_context().new_page()
    owner.goto(url)
    owner.set_input_files("#export-file", str(export))
    owner.get_by_label("Username (optional: read from the export)").fill("key_holder")
    owner.get_by_role("button", name="Upload and recommend").click()
    owner.wait_for_function("document.querySelector('#status').textContent.startsWith('Imported')", timeout=60_000)
    key = owner.locator("#member-key").inner_text()
    other = browser.new_context().new_page()
    other.goto(url)
    other.set_input_files("#export-file", str(export))
    other.get_by_label("Username (optional: read from the export)").fill("Key_Holder")
    other.get_by_role("button", name="Upload and recommend").click()
    other.wait_for_function("document.querySelector('#status').textContent.startsWith('Upload refused')")
    assert "only they can change their data" in other.locator("#status").inner_text()
    other.locator("summary").click()
    other.get_by_label("Member key", exact=False).fill(key)
    other.get_by_role("button", name="Upload and recommend").click()
    other.wait_for_function("document.querySelector('#status').textContent.startsWith('Imported')", timeout=60_000)
    assert "Imported key_holder" in other.locator("#status").inner_text()
    owner.context.close()
    other.context.close()


def test_readable_on_a_phone(browser, site) -> None:
    url, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    pg.goto(url + "/?user=melvincarvalho")
    pg.wait_for_selector("#rec-list > li")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    box = pg.locator("#rec-list > li").first.bounding_box()
    assert box["width"] <= 390 and box["width"] > 300  # one card per row
    for name in ("Show my films", "Upload and recommend", "Apply", "Search"):
        assert pg.get_by_role("button", name=name).bounding_box()["height"] >= 40  # big enough to tap
    context.close()
