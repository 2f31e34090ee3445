"""``/docs`` in Chromium: the vendored Swagger UI renders the API's operations under the
strict Content-Security-Policy, with nothing loaded from elsewhere and nothing refused."""

from __future__ import annotations

import urllib.parse

from playwright.sync_api import ConsoleMessage, Page, Request, expect

from tests.browser.live import LiveServer

# Collects the policy's refusals as the page reports them (a refusal is also a console error).
_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_docs_renders_the_operations_with_no_errors(page: Page, live_server: LiveServer) -> None:
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: _note_error(m, errors))
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("request", lambda r: _note_host(r, hosts))
    page.add_init_script(_CSP_WATCH)

    response = page.goto(live_server.url("/docs"))
    assert response is not None
    assert response.status == 200
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("dangan")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 15
    expect(page.locator(".opblock", has_text="/api/v1/health").first).to_be_visible()

    # Opening an operation and running it works too (the API's own origin: connect-src 'self').
    health = page.locator(".opblock", has_text="/api/v1/health").first
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    expect(health.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")

    assert page.evaluate("window.__cspViolations") == []
    assert errors == []
    assert hosts == {urllib.parse.urlsplit(live_server.url("/")).netloc}


def _note_error(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(message.text)


def _note_host(request: Request, hosts: set[str]) -> None:
    if not request.url.startswith(("data:", "blob:")):
        hosts.add(urllib.parse.urlsplit(request.url).netloc)
