"""The governance pages' scripts in Chromium under the strict CSP (issue #5): the auditor's
verify button shows the chain's report in the page; the admin adds a user (a refused password
shows the API's message), disables them and sets their password."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.live import LiveServer


def test_the_verify_button_shows_the_report(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    page = page_as("auditor")
    page.goto(live_server.url("/audit"))
    expect(page.locator("#events tr.event").first).to_be_visible()
    page.locator("#verify-button").click()
    result = page.locator("#verify-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result.locator(".verify-events")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    expect(result.locator(".verify-head-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(result.locator(".verify-problem")).to_have_count(0)


def test_the_admin_adds_disables_and_sets_a_password(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    page = page_as("admin")
    page.goto(live_server.url("/users"))
    form = page.locator("#add-user-form")
    form.locator("input[name=name]").fill("browserclerk")
    form.locator("select[name=role]").select_option("clerk")
    form.locator("input[name=password]").fill("123")
    form.locator("button[type=submit]").click()
    expect(page.locator("#add-user-result.error")).not_to_be_empty()
    expect(page.locator('tr[data-name="browserclerk"]')).to_have_count(0)

    form.locator("input[name=password]").fill("a-long-enough-passphrase")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    row = page.locator('tr[data-name="browserclerk"]')
    expect(row).to_have_attribute("data-disabled", "false")
    with page.expect_navigation():
        row.locator('button[data-op="disable"]').click()
    row = page.locator('tr[data-name="browserclerk"]')
    expect(row).to_have_attribute("data-disabled", "true")
    row.locator(".password-form input[name=password]").fill("another-long-passphrase")
    row.locator(".password-form button[type=submit]").click()
    expect(page.locator("#users-result.ok")).to_contain_text("browserclerk")
