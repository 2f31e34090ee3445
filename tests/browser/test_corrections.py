"""Corrections in Chromium under the strict CSP (issue #7): a supervisor tags a record from its
page; a clerk asks for a key change from the record page; a director approves it on the change
requests page; the old code leads to the renamed record; a supervisor links the status-change
decision to its application, and both records' pages show it."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.live import LiveServer
from tests.corpus import CORPUS


def _upload(page: Page, live_server: LiveServer, business_type: str) -> str:
    """A record of its own (the session's seeds serve other tests), uploaded as the clerk."""
    token = live_server.token("clerk")
    answer = page.request.post(
        live_server.url("/api/v1/records"),
        headers={"Authorization": f"Bearer {token}"},
        multipart={
            "business_type": business_type,
            "year": "2023",
            "force": "true",
            "files": {
                "name": "application.png",
                "mimeType": "image/png",
                "buffer": (CORPUS / "bad" / "hostile_name.png").read_bytes(),
            },
        },
    )
    assert answer.status == 201, answer.text()
    code: str = answer.json()["records"][0]["archive_code"]
    return code


def _record_url(live_server: LiveServer, code: str) -> str:
    return live_server.url("/records/" + urllib.parse.quote(code))


def test_a_key_change_is_asked_for_approved_and_followed(
    page_as: Callable[[str], Page], live_server: LiveServer
) -> None:
    clerk = page_as("clerk")
    old = _upload(clerk, live_server, "学籍变更")

    supervisor = page_as("supervisor")
    supervisor.goto(_record_url(live_server, old))
    supervisor.locator("#edit summary").click()
    edit = supervisor.locator("#edit-form")
    edit.locator("input[name=tags]").fill("补档，待核")
    edit.locator("textarea[name=notes]").fill("原件在校办")
    with supervisor.expect_navigation():
        edit.locator("button[type=submit]").click()
    expect(supervisor.locator("#field-tags .tag")).to_have_text(["补档", "待核"])
    expect(supervisor.locator("#field-notes")).to_have_text("原件在校办")

    clerk.goto(_record_url(live_server, old))
    clerk.locator("#change-request summary").click()
    form = clerk.locator("#change-form")
    form.locator("select[name=business_type]").select_option("转学")
    form.locator("input[name=reason]").fill("归档类别有误")
    with clerk.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(clerk.locator("#open-requests tr.change-request")).to_have_count(1)

    director = page_as("director")
    director.goto(live_server.url("/change-requests"))
    row = director.locator("#waiting tr.change-request", has_text=old)
    expect(row).to_have_count(1)
    request_id = row.get_attribute("data-id")
    row.locator("input.reason").fill("核对纸质档案")
    director.once("dialog", lambda dialog: dialog.accept())
    with director.expect_navigation():
        row.locator('button[data-op="approve"]').click()
    done = director.locator(f'#decided tr[data-id="{request_id}"]')
    expect(done).to_have_attribute("data-state", "approved")

    # The old code leads to the record under its new one.
    clerk.goto(_record_url(live_server, old))
    expect(clerk).to_have_url(re.compile(r"/records/2023-%E8%BD%AC%E5%AD%A6-\d{3}$"))
    expect(clerk.locator("#former-codes")).to_have_text(old)
    new = clerk.locator("#archive-code").inner_text()
    assert new.startswith("2023-转学-")

    # 转学 is a status-change decision: a supervisor links it to its application.
    application = live_server.name_record.archive_code
    supervisor.goto(_record_url(live_server, new))
    supervisor.locator("#decision-edit summary").click()
    link = supervisor.locator("#decision-form")
    link.locator("input[name=application_code]").fill(application)
    link.locator("input[name=approver]").fill("教务处 李主任")
    link.locator("input[name=decision_date]").fill("2023-09-01")
    link.locator("select[name=decision]").select_option("approved")
    with supervisor.expect_navigation():
        link.locator("button[type=submit]").click()
    expect(supervisor.locator("#decision-link")).to_contain_text(application)
    expect(supervisor.locator("#decision-link")).to_contain_text("教务处 李主任")
    supervisor.goto(_record_url(live_server, application))
    expect(supervisor.locator("#cited-by")).to_contain_text(new)
