"""The harness itself: Chromium reaches the live server and its seeded records are archived."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.live import LiveServer


def test_the_browser_reaches_the_live_server(page: Page, live_server: LiveServer) -> None:
    response = page.goto(live_server.url("/api/v1/health"))
    assert response is not None
    assert response.status == 200
    page.goto(live_server.url("/docs"))
    expect(page.locator("#swagger-ui")).to_be_attached()
