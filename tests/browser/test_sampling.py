"""One quarterly sampling audit end to end in Chromium (issue #7, part 5): the director draws
the current quarter, fills in the checklist of two items, files a finding, closes it with an
evidence file, and downloads the report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.live import UPLOAD_SCANS, LiveServer
from tests.corpus import scan


def test_one_sampling_audit_end_to_end(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    page = page_as("director")
    page.goto(live_server.url("/sampling"))
    quarter = page.locator("#draw-quarter").input_value()
    with page.expect_navigation():
        page.locator("#draw-submit").click()
    expect(page.locator("#audit-quarter")).to_have_text(quarter)
    items = page.locator(".sample-item")
    expect(items.nth(1)).to_be_visible()  # at least two items drawn

    for k in range(2):
        form = items.nth(k).locator(".checklist-form")
        form.locator("select[name=legible]").select_option("yes")
        form.locator("select[name=matches_paper]").select_option("yes")
        form.locator("select[name=location_right]").select_option("no" if k == 0 else "yes")
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        expect(page.locator(".sample-item").nth(k)).to_have_attribute("data-checked", "true")
    first = page.locator(".sample-item").first
    code = first.get_attribute("data-code")
    assert code
    expect(first).to_have_class(re.compile(r"\bdefective\b"))

    filing = first.locator(".finding-form")
    filing.locator("select[name=severity]").select_option("major")
    filing.locator("input[name=summary]").fill("纸质原件不在登记位置")
    filing.locator("select[name=owner]").select_option("director")
    with page.expect_navigation():
        filing.locator("button[type=submit]").click()
    finding = page.locator(".sample-item").first.locator(".finding")
    expect(finding).to_have_attribute("data-state", "open")

    closing = page.locator(".sample-item").first.locator('.evidence-form[data-op="close"]')
    closing.locator("input[name=note]").fill("已归位，现场复核无误")
    closing.locator("input[type=file]").set_input_files(scan(UPLOAD_SCANS[1]))
    with page.expect_navigation():
        closing.locator("button[type=submit]").click()
    finding = page.locator(".sample-item").first.locator(".finding")
    expect(finding).to_have_attribute("data-state", "closed")
    expect(finding.locator(".evidence")).to_contain_text("sha256")

    with page.expect_download() as download:
        page.locator("#report-csv").click()
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "error rate" in report
    assert code in report
    with page.expect_download() as download:
        page.locator("#report-html").click()
    html = Path(download.value.path()).read_text(encoding="utf-8")
    assert 'id="error-rate"' in html
