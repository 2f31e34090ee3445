"""The web pages over a real archive: signing in and out, the session cookie and CSRF, the
security headers, the languages, and what each role sees in search and on a record's page.

The browser tests (``tests/browser``) drive the same pages in Chromium; these check the HTTP
side of them precisely and fast."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import ingest
from catalog import NewRecord, Role
from tests.corpus import scan
from tests.integration.api_world import INTERNAL_SCAN, PASSWORD, World, user_name, world

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("pages")) as the_world:
        yield the_world


@pytest.fixture
def browser(w: World) -> Iterator[TestClient]:
    """A client of its own, like a fresh browser: no cookies."""
    with TestClient(create_app(w.rt)) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    match = _CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: TestClient, role: Role, *, next_path: str = "/") -> httpx.Response:
    token = csrf_of(client)
    return client.post(
        "/login",
        data={
            "username": user_name(role),
            "password": PASSWORD,
            "csrf_token": token,
            "next": next_path,
        },
        follow_redirects=False,
    )


def test_a_page_without_a_session_leads_to_the_sign_in_page(browser: TestClient) -> None:
    resp = browser.get("/search?q=x", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/search%3Fq%3Dx"


def test_signing_in_sets_a_strict_http_only_cookie_and_goes_where_asked(
    browser: TestClient,
) -> None:
    resp = sign_in(browser, Role.auditor, next_path="/search")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/search"
    cookies = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in cookies if c.startswith("dangan_session="))
    assert "HttpOnly" in session
    assert "SameSite=strict" in session
    assert "Secure" not in session  # plain HTTP here; see the HTTPS test
    assert browser.get("/search").status_code == 200


def test_over_https_the_cookies_are_secure(w: World) -> None:
    with TestClient(create_app(w.rt), base_url="https://testserver") as client:
        resp = sign_in(client, Role.auditor)
        cookies = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
        assert cookies
        assert all("Secure" in c for c in cookies)
        assert "max-age=31536000" in resp.headers["strict-transport-security"]


def test_sign_in_never_redirects_to_another_site(browser: TestClient) -> None:
    resp = sign_in(browser, Role.auditor, next_path="//evil.example/x")
    assert resp.headers["location"] == "/"


def test_a_wrong_password_shows_an_error_and_sets_no_session(browser: TestClient) -> None:
    token = csrf_of(browser)
    resp = browser.post(
        "/login",
        data={"username": user_name(Role.auditor), "password": "wrong", "csrf_token": token},
        follow_redirects=False,
    )
    assert resp.status_code == 401
    assert 'id="login-error"' in resp.text
    assert "dangan_session" not in resp.headers.get("set-cookie", "")


def test_sign_in_without_the_forms_csrf_token_is_refused(browser: TestClient) -> None:
    browser.get("/login")
    resp = browser.post(
        "/login",
        data={"username": user_name(Role.auditor), "password": PASSWORD},
        follow_redirects=False,
    )
    assert resp.status_code == 403
    assert "dangan_session" not in resp.headers.get("set-cookie", "")


def test_the_api_takes_the_session_cookie_and_wants_the_csrf_token_for_changes(
    w: World, browser: TestClient
) -> None:
    sign_in(browser, Role.supervisor)
    assert browser.get("/api/v1/auth/me").json()["name"] == user_name(Role.supervisor)
    path = f"/api/v1/records/{w.internal}"
    assert browser.patch(path, json={"paper_location": "A-1"}).status_code == 403
    token = csrf_of(browser, "/records")
    wrong = browser.patch(path, json={"paper_location": "A-1"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    elsewhere = browser.patch(
        path,
        json={"paper_location": "A-1"},
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    ok = browser.patch(path, json={"paper_location": "A-1"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200, ok.text
    assert ok.json()["paper_location"] == "A-1"


def test_signing_out_ends_the_session(browser: TestClient) -> None:
    sign_in(browser, Role.auditor)
    token = csrf_of(browser, "/search")
    resp = browser.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert resp.status_code == 303
    assert browser.get("/search", follow_redirects=False).status_code == 303


def test_a_password_change_ends_the_users_page_sessions(w: World, browser: TestClient) -> None:
    with TestClient(create_app(w.rt)) as other:
        sign_in(other, Role.clerk)
        assert other.get("/records").status_code == 200
        sign_in(browser, Role.clerk)
        token = csrf_of(browser, "/records")
        new = "another-correct-horse-9"
        changed = browser.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": new},
            headers={"X-CSRF-Token": token},
        )
        assert changed.status_code == 204, changed.text
        try:
            assert other.get("/records", follow_redirects=False).status_code == 303
        finally:
            w.client.post(
                f"/api/v1/users/{user_name(Role.clerk)}/password",
                json={"password": PASSWORD},
                headers=w.headers(Role.admin),
            )


@pytest.mark.parametrize("path", ["/login", "/api/v1/health", "/static/app.css"])
def test_every_answer_carries_the_security_headers(browser: TestClient, path: str) -> None:
    headers = browser.get(path).headers
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def test_the_pages_hold_no_inline_script_or_style(w: World, browser: TestClient) -> None:
    sign_in(browser, Role.director)
    for path in ("/login", "/search?q=万沐", f"/records/{w.internal}?q=万沐", "/queue", "/records"):
        html = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers
        assert "http://" not in html, path  # every asset is ours
        assert "https://" not in html, path


def test_chinese_by_default_and_english_on_request(browser: TestClient) -> None:
    sign_in(browser, Role.auditor)
    page = browser.get("/search").text
    assert '<html lang="zh-CN">' in page
    assert ">检索</a>" in page
    token = _CSRF.search(page)
    assert token
    resp = browser.post(
        "/lang",
        data={"lang": "en", "next": "/search", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/search"
    page = browser.get("/search").text
    assert '<html lang="en">' in page
    assert ">Search</a>" in page
    assert "检索" not in page.split("<main", 1)[0]


def test_the_auditor_finds_a_name_and_sees_it_marked_on_the_record(
    w: World, browser: TestClient
) -> None:
    sign_in(browser, Role.auditor)
    results = browser.get("/search", params={"q": "万沐"}).text
    assert f'data-code="{w.internal}"' in results
    assert "<mark>" in results
    record = browser.get(f"/records/{w.internal}", params={"q": "万沐"})
    assert record.status_code == 200
    ocr = re.findall(r'<pre class="ocr-text"[^>]*>(.*?)</pre>', record.text, re.S)
    assert ocr
    assert any("<mark>万沐</mark>" in text for text in ocr)
    assert f'src="/api/v1/records/{w.internal}/pages/1/image?width=' in record.text


def test_a_contract_is_the_directors_alone_in_the_pages(w: World, browser: TestClient) -> None:
    query = {"q": "博源信息系统"}
    for role in (Role.auditor, Role.supervisor, Role.clerk):
        with TestClient(create_app(w.rt)) as client:
            sign_in(client, role)
            results = client.get("/search", params=query)
            assert w.contract not in results.text, role
            if results.status_code == 200:
                assert 'class="no-hits' in results.text, role
            hidden = client.get(f"/records/{w.contract}")
            missing = client.get("/records/2023-合同-999")
            assert hidden.status_code == missing.status_code == 404, role
            assert 'id="error"' in hidden.text
            # The same page as for a code that does not exist, but for the code asked for.
            unknown = "2023-合同-999"
            assert hidden.text.replace(w.contract, unknown) == missing.text, role
            assert w.contract not in client.get("/records").text
            assert w.contract not in client.get("/queue").text
    sign_in(browser, Role.director)
    assert f'data-code="{w.contract}"' in browser.get("/search", params=query).text
    assert browser.get(f"/records/{w.contract}").status_code == 200


def test_the_admin_sees_no_record_content(w: World, browser: TestClient) -> None:
    sign_in(browser, Role.admin)
    page = browser.get(f"/records/{w.internal}")
    assert page.status_code in (403, 404)
    assert "ocr-text" not in page.text


def test_the_upload_page_lists_only_types_the_role_may_file(browser: TestClient) -> None:
    sign_in(browser, Role.clerk)
    page = browser.get("/upload")
    assert page.status_code == 200
    assert 'value="新生入学"' in page.text
    assert 'value="合同"' not in page.text


def test_an_upload_through_the_pages_session(w: World, browser: TestClient) -> None:
    sign_in(browser, Role.clerk)
    token = csrf_of(browser, "/upload")
    resp = browser.post(
        "/api/v1/records",
        data={"business_type": "新生入学", "year": "2024", "student_name": "测试"},
        files=[("files", ("note.txt", b"just words, not a scan", "text/plain"))],
        headers={"X-CSRF-Token": token},
    )
    assert resp.status_code == 422, resp.text  # refused, by the API's own rule and message
    assert "not a scan" in resp.json()["error"]["message"]
    with scan("IMG_3214.png").open("rb") as fh:
        stored = browser.post(
            "/api/v1/records",
            data={"business_type": "新生入学", "year": "2024"},
            files=[("files", ("IMG_3214.png", fh, "image/png"))],
            headers={"X-CSRF-Token": token},
        )
    assert stored.status_code == 201, stored.text
    (record,) = stored.json()["records"]
    queue = browser.get("/queue", params={"mine": "1"}).text
    assert f'data-code="{record["archive_code"]}"' in queue


def test_the_class_is_asked_for_shown_and_corrected_in_the_pages(
    w: World, browser: TestClient
) -> None:
    sign_in(browser, Role.supervisor)
    form = browser.get("/upload").text
    assert '<input name="student_class" maxlength="64"' in form
    at = [form.index(f'name="{f}"') for f in ("student_no", "student_class", "paper_location")]
    assert at == sorted(at)
    record = ingest(
        w.rt,
        scan(INTERNAL_SCAN),
        NewRecord(business_type="学籍变更", year=2023, student_class="高三(2)班"),
        actor="test",
        force=True,
    )
    page = browser.get(f"/records/{record.archive_code}").text
    assert '<dt>班级</dt><dd id="field-student_class">高三(2)班</dd>' in page
    fields = page.split('id="fields"', 1)[1]
    assert fields.index('id="field-student_no"') < fields.index('id="field-student_class"')
    # A supervisor may correct it (a non-key field), in the edit form, as long as its column.
    assert '<input name="student_class" value="高三(2)班" maxlength="64">' in page
    edit = page.split('id="edit-form"', 1)[1].split("</form>", 1)[0]
    assert '<input name="student_name"' not in edit  # a key field, not theirs to change
    assert "高三(2)班" in browser.get("/records").text
