"""``/docs``: the vendored Swagger UI, served from ``/static`` under the strict
Content-Security-Policy (no CDN, no inline script or style).

The browser test (``tests/browser/test_api_docs.py``) checks that it renders in Chromium."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import CONTENT_SECURITY_POLICY
from api.services import Runtime
from dangan.config import Settings

VENDOR = "/static/vendor/swagger-ui"


class _Page(HTMLParser):
    """The assets a page references, its inline scripts, and its inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline_scripts: list[str] = []
        self.styled: list[str] = []  # tags with a style attribute, and <style> elements
        self._script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if "style" in attr or tag == "style":
            self.styled.append(tag)
        if any(name.startswith("on") for name in attr):
            self.inline_scripts.append(f"<{tag} on...>")
        if tag == "script":
            src = attr.get("src")
            self._script_without_src = not src
            if src:
                self.assets.append(src)
        elif tag == "link" and attr.get("href"):
            self.assets.append(str(attr["href"]))
        elif tag == "img" and attr.get("src"):
            self.assets.append(str(attr["src"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._script_without_src:
            self.inline_scripts.append(data)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(Runtime(settings)))


def _docs(client: TestClient) -> _Page:
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(resp.text)
    return page


def test_docs_page_is_the_vendored_swagger_ui_without_inline_code(client: TestClient) -> None:
    page = _docs(client)
    assert f"{VENDOR}/swagger-ui-bundle.js" in page.assets
    assert f"{VENDOR}/swagger-ui.css" in page.assets
    assert "/static/docs.js" in page.assets
    assert all(asset.startswith("/static/") for asset in page.assets), page.assets
    assert page.inline_scripts == []
    assert page.styled == []


def test_docs_page_keeps_the_strict_policy(client: TestClient) -> None:
    resp = client.get("/docs")
    assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY


def test_every_asset_of_the_docs_page_is_served(client: TestClient) -> None:
    types = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for asset in _docs(client).assets:
        resp = client.get(asset)
        assert resp.status_code == 200, asset
        expected = next(t for suffix, t in types.items() if asset.endswith(suffix))
        assert expected in resp.headers["content-type"], asset
        assert resp.content, asset


def test_the_init_script_reads_the_api_schema(client: TestClient) -> None:
    script = client.get("/static/docs.js").text
    assert "SwaggerUIBundle(" in script
    assert '"/api/v1/openapi.json"' in script
    assert '"#swagger-ui"' in script


def test_the_vendored_files_carry_their_license_and_origin(client: TestClient) -> None:
    for name in ("LICENSE", "NOTICE", "README.md"):
        assert client.get(f"{VENDOR}/{name}").status_code == 200, name
    assert "Apache License" in client.get(f"{VENDOR}/LICENSE").text
    assert "swagger-ui-dist" in client.get(f"{VENDOR}/README.md").text


def test_the_schema_is_still_served_and_fastapis_own_pages_are_gone(client: TestClient) -> None:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["info"]["title"] == "dangan"
    assert "/docs" not in schema["paths"]
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
