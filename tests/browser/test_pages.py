"""The web pages as the records office uses them, in Chromium (issue #5).

A clerk uploads scans and watches them reach ``archived``; an auditor finds a student by name
and sees the name marked in the OCR text, but never a contract, which a director does find;
the pages switch between Chinese and English; signing in and out.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.live import ARCHIVE_TIMEOUT, CONTRACT_WORDS, UPLOAD_SCANS, LiveServer
from tests.corpus import scan

# Uploading three small scans: the bytes travel at once, the answer waits for both stores.
STORED_TIMEOUT_MS = 60_000


def _search(page: Page, live_server: LiveServer, words: str) -> None:
    page.goto(live_server.url("/search"))
    box = page.locator("#search-form input[name=q]")
    box.fill(words)
    with page.expect_navigation():
        box.press("Enter")


def _code_of(href: str | None) -> str:
    """The archive code a ``/records/CODE?q=...`` link points at."""
    assert href is not None
    path = urllib.parse.urlsplit(href).path
    assert path.startswith("/records/"), href
    return urllib.parse.unquote(path.removeprefix("/records/"))


def test_a_clerk_uploads_three_scans_and_watches_them_archived(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    entry = live_server.manifest[UPLOAD_SCANS[0]]  # one student's awards, uploaded together
    page = page_as("clerk")
    page.goto(live_server.url("/upload"))
    form = page.locator("#upload-form")
    form.locator("select[name=business_type]").select_option(entry["business_type"])
    form.locator("input[name=year]").fill(str(entry["year"]))
    form.locator("input[name=student_name]").fill(entry["student_name"])
    form.locator("input[name=student_no]").fill(entry["student_no"])
    form.locator("input[name=title]").fill(entry["title"])
    form.locator("input[name=paper_location]").fill(entry["paper_location"])
    expect(page.locator("#dropzone")).to_be_visible()
    page.locator("input#files[type=file][multiple]").set_input_files(
        [scan(name) for name in UPLOAD_SCANS]
    )
    page.locator("button#upload-button").click()

    items = page.locator(".upload-item")
    expect(items).to_have_count(len(UPLOAD_SCANS))
    expect(items.locator("progress")).to_have_count(len(UPLOAD_SCANS))
    stored = page.locator('.upload-item[data-state="stored"]')
    expect(stored).to_have_count(len(UPLOAD_SCANS), timeout=STORED_TIMEOUT_MS)
    links = stored.locator("a.record-link")
    codes = [text.strip() for text in links.all_inner_texts()]
    assert len(set(codes)) == len(UPLOAD_SCANS), codes
    prefix = f"{entry['year']}-{entry['business_type']}-"
    assert all(code.startswith(prefix) for code in codes), codes
    for i, code in enumerate(codes):
        assert _code_of(links.nth(i).get_attribute("href")) == code

    page.goto(live_server.url("/queue"))
    rows = {code: page.locator(f'tr.queue-row[data-code="{code}"]') for code in codes}
    for row in rows.values():
        expect(row).to_have_count(1)
    # A mark on the window that a reload would wipe: the statuses must change in place.
    page.evaluate("window.__notReloaded = true")
    for row in rows.values():
        expect(row.locator("td.status")).to_have_attribute(
            "data-status", "archived", timeout=ARCHIVE_TIMEOUT * 1000
        )
    assert page.evaluate("window.__notReloaded === true"), "the queue reloaded the page"


def test_an_auditor_finds_a_student_by_name_marked_in_the_ocr_text(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    seed = live_server.name_record
    assert seed.student_name is not None
    page = page_as("auditor")
    _search(page, live_server, seed.student_name)

    hits = page.locator(".hit")
    expect(hits).to_have_count(1)
    expect(hits.locator("mark").first).to_be_visible()
    link = hits.locator("a.hit-link")
    assert _code_of(link.get_attribute("href")) == seed.archive_code
    link.click()

    expect(page.locator("#archive-code")).to_have_text(seed.archive_code)
    expect(page.locator("img.page-image")).to_have_count(1)
    page.wait_for_function(  # the page image is served, not only referenced
        "() => [...document.querySelectorAll('img.page-image')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(page.locator(".ocr-text mark", has_text=seed.student_name).first).to_be_visible()


def test_an_auditor_never_finds_a_contract_that_a_director_finds(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    contract = live_server.contract
    auditor = page_as("auditor")
    _search(auditor, live_server, CONTRACT_WORDS)
    expect(auditor.locator(".no-hits")).to_be_visible()
    expect(auditor.locator(".hit")).to_have_count(0)
    assert contract.archive_code not in auditor.content()

    response = auditor.goto(live_server.url(f"/records/{contract.archive_code}"))
    assert response is not None
    assert response.status == 404
    expect(auditor.locator("#error")).to_be_visible()
    assert CONTRACT_WORDS not in auditor.content()
    # Not found and hidden read the same: a code that was never allocated answers alike.
    missing = auditor.goto(live_server.url("/records/1999-合同-999"))
    assert missing is not None
    assert missing.status == 404

    director = page_as("director")
    _search(director, live_server, CONTRACT_WORDS)
    hits = director.locator(".hit")
    expect(hits).to_have_count(1)
    assert _code_of(hits.locator("a.hit-link").get_attribute("href")) == contract.archive_code
    expect(director.locator("#facets")).to_contain_text(contract.business_type)
    hits.locator("a.hit-link").click()
    expect(director.locator("#archive-code")).to_have_text(contract.archive_code)
    expect(director.locator(".ocr-text mark").first).to_be_visible()


def test_the_pages_switch_between_chinese_and_english(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    page = page_as("clerk")
    html = page.locator("html")
    nav_search = page.locator("#nav a#nav-search")
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(nav_search).to_have_text("检索")

    with page.expect_navigation():
        page.locator('#lang-form button[name=lang][value="en"]').click()
    expect(html).to_have_attribute("lang", "en")
    expect(nav_search).to_have_text("Search")
    page.goto(live_server.url("/queue"))  # the choice outlives the page it was made on
    expect(html).to_have_attribute("lang", "en")

    with page.expect_navigation():
        page.locator('#lang-form button[name=lang][value="zh-CN"]').click()
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(nav_search).to_have_text("检索")


def test_signing_in_goes_where_you_were_going_and_a_wrong_password_does_not(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url("/queue"))
    expect(page).to_have_url(re.compile(r"/login\?next="))
    form = page.locator("#login-form")
    form.locator("input[name=username]").fill("clerk")
    form.locator("input[name=password]").fill("not-the-password")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#nav")).to_have_count(0)
    assert "not-the-password" not in page.content()

    form.locator("input[name=username]").fill("clerk")
    form.locator("input[name=password]").fill(live_server.passwords["clerk"])
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/queue$"))
    expect(page.locator("#nav")).to_be_visible()


def test_signing_out_ends_the_session(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    page = page_as("supervisor")
    expect(page.locator("#nav")).to_be_visible()
    with page.expect_navigation():
        page.locator("#logout-form [type=submit]").click()
    page.goto(live_server.url("/search"))
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("#login-form")).to_be_visible()
