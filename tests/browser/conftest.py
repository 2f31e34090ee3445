"""The web pages in a real browser: Debian's Chromium driven by Playwright (sync API).

- ``browser`` (session): headless Chromium from ``/usr/bin/chromium`` (Playwright's own browser
  download needs the network). A missing one skips the tests, or fails them when
  ``DANGAN_REQUIRE_SERVICES=1`` (CI).
- ``live_server`` (session): ``dangan serve`` with one user per role and the seeded records
  archived (``tests/browser/live.py``). One server for the session keeps the module fast.
- ``page``: a fresh context (its own cookies), signed in as nobody; ``page_as(user)``: one
  signed in through /login as that user (each role's user is named after the role).

Every test here gets the ``browser`` marker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser import live
from tests.corpus import scan
from tests.services import ServiceMissingError

# Read once, before any test's monkeypatch can clear DANGAN_* variables.
REQUIRE_SERVICES = os.environ.get("DANGAN_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}

# Playwright's wait per action and per ``expect`` (two shared cores answer slowly at times);
# the pipeline's waits pass their own.
ACTION_TIMEOUT_MS = 15_000


def _service_missing(exc: ServiceMissingError) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {exc}", pytrace=False)
    pytest.skip(str(exc))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            # The first test also waits for the session's server and its seeds to be archived.
            item.add_marker(pytest.mark.timeout(2 * live.ARCHIVE_TIMEOUT + 120))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A page that failed often says only "Internal Server Error"; the server's log says why.
    report: pytest.TestReport = yield
    server = getattr(item, "funcargs", {}).get("live_server")
    if report.failed and isinstance(server, live.LiveServer):
        report.sections.append(("dangan serve log (tail)", server.log_tail()))
    return report


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    try:
        executable = live.find_chromium()
    except ServiceMissingError as exc:
        _service_missing(exc)
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    # As root Chromium refuses its sandbox; a container's /dev/shm is small.
    chromium = playwright.chromium.launch(
        executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def live_server() -> Iterator[live.LiveServer]:
    scan(live.NAME_SCAN)  # a missing corpus skips, or fails in CI
    with live.live_server(live.read_manifest()) as server:
        yield server


def _new_page(browser: Browser, contexts: list[BrowserContext]) -> Page:
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    contexts.append(context)
    return context.new_page()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    contexts: list[BrowserContext] = []
    yield _new_page(browser, contexts)
    for context in contexts:
        context.close()


@pytest.fixture
def page_as(live_server: live.LiveServer, browser: Browser) -> Iterator[Callable[[str], Page]]:
    contexts: list[BrowserContext] = []

    def sign_in(user: str) -> Page:
        page = _new_page(browser, contexts)
        live_server.login(page, user)
        return page

    yield sign_in
    for context in contexts:
        context.close()
