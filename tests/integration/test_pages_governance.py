"""The governance pages as a browser drives them: signing in through the form, the audit
trail (who may open it, its filters, paging, records hidden by class, the verification behind
its button) and the users page (who may open it, and changes through the JSON API that need
the session's CSRF token)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.pages.governance import PAGE_SIZE
from catalog import Role, record_event
from tests.integration.api_world import PASSWORD, World, sign_in_browser, user_name, world

_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_EVENT_ROW = re.compile(r'<tr class="event" data-id="(\d+)" data-action="([^"]*)"')
_OLDER = re.compile(r'id="audit-older" href="([^"]+)"')
_NEWER = re.compile(r'id="audit-newer" href="([^"]+)"')


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("pages-governance")) as the_world:
        yield the_world


@pytest.fixture(scope="module")
def browsers(w: World) -> dict[Role, TestClient]:
    return {role: sign_in_browser(w, role) for role in Role}


def _events(html: str) -> list[tuple[int, str]]:
    return [(int(i), action) for i, action in _EVENT_ROW.findall(html)]


def _link(pattern: re.Pattern[str], html: str) -> str | None:
    found = pattern.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


def _csrf(client: TestClient, page: str = "/records") -> str:
    found = _CSRF_META.search(client.get(page).text)
    assert found is not None
    return found.group(1)


def _whole_trail(client: TestClient, start: str = "/audit") -> list[int]:
    """Every event id the reader sees, following the "older" links from ``start``."""
    ids: list[int] = []
    path: str | None = start
    while path is not None:
        resp = client.get(path)
        assert resp.status_code == 200
        ids += [i for i, _ in _events(resp.text)]
        path = _link(_OLDER, resp.text)
    return ids


# --- the audit trail --------------------------------------------------------------------


def test_the_auditor_sees_the_trail_newest_first_with_the_verify_button(
    browsers: dict[Role, TestClient],
) -> None:
    resp = browsers[Role.auditor].get("/audit")
    assert resp.status_code == 200
    assert 'id="nav-audit"' in resp.text
    events = _events(resp.text)
    assert events
    ids = [i for i, _ in events]
    assert ids == sorted(ids, reverse=True)
    assert 'id="verify-button"' in resp.text
    assert 'id="verify-result"' in resp.text
    assert 'src="/static/audit.js"' in resp.text


@pytest.mark.parametrize("role", [Role.clerk, Role.supervisor, Role.admin])
def test_roles_without_audit_read_get_the_403_page(
    w: World, browsers: dict[Role, TestClient], role: Role
) -> None:
    resp = browsers[role].get("/audit")
    assert resp.status_code == 403
    assert 'id="error"' in resp.text
    assert 'id="events"' not in resp.text
    assert 'id="nav-audit"' not in resp.text
    # The refusal is itself in the trail the auditor reads.
    seen = browsers[Role.auditor].get(
        "/audit", params={"actor": user_name(role), "action": "audit.read", "outcome": "denied"}
    )
    assert _events(seen.text)


def test_filters_narrow_the_trail(w: World, browsers: dict[Role, TestClient]) -> None:
    auditor = browsers[Role.auditor]
    created = _events(auditor.get("/audit", params={"action": "record.create"}).text)
    assert created
    assert {a for _, a in created} == {"record.create"}
    internal = auditor.get("/audit", params={"target": f"record:{w.internal}"}).text
    assert _events(internal)
    assert f'href="/records/{w.internal}"' in internal
    assert auditor.get("/audit", params={"actor": "nobody-at-all"}).text.count('class="event"') == 0
    ok = _events(auditor.get("/audit", params={"outcome": "ok", "action": "record.create"}).text)
    assert ok == created


def test_the_date_range_is_whole_utc_days(browsers: dict[Role, TestClient]) -> None:
    auditor = browsers[Role.auditor]
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert _events(auditor.get("/audit", params={"since": today.isoformat()}).text)
    assert _events(auditor.get("/audit", params={"until": today.isoformat()}).text)
    assert not _events(auditor.get("/audit", params={"since": tomorrow}).text)
    assert not _events(auditor.get("/audit", params={"until": yesterday}).text)
    assert auditor.get("/audit", params={"since": "last week"}).status_code == 422
    assert auditor.get("/audit", params={"outcome": "maybe"}).status_code == 422


def test_paging_walks_every_event_once_both_ways(
    w: World, browsers: dict[Role, TestClient]
) -> None:
    total = PAGE_SIZE * 2 + 7
    with w.rt.db.write() as session:
        first = record_event(session, actor="pager", action="test.page", detail={"n": 0}).id
        for n in range(1, total):
            record_event(session, actor="pager", action="test.page", detail={"n": n})
    auditor = browsers[Role.auditor]
    start = "/audit?actor=pager"
    ids = _whole_trail(auditor, start)
    assert ids == list(range(first + total - 1, first - 1, -1))

    # Back from the oldest page towards the head, page by page.
    oldest = auditor.get(f"/audit?actor=pager&before={first + 7}").text
    assert [i for i, _ in _events(oldest)] == list(range(first + 6, first - 1, -1))
    assert _link(_OLDER, oldest) is None
    newer = _link(_NEWER, oldest)
    assert newer is not None
    page = auditor.get(newer).text
    assert [i for i, _ in _events(page)] == list(range(first + 6 + PAGE_SIZE, first + 6, -1))
    head = auditor.get("/audit?actor=pager").text
    assert _link(_NEWER, head) is None
    assert f'data-id="{first + total - 1}"' in head


def test_contract_events_are_hidden_from_the_auditor_and_shown_to_the_director(
    w: World, browsers: dict[Role, TestClient]
) -> None:
    target = {"target": f"record:{w.contract}"}
    assert not _events(browsers[Role.auditor].get("/audit", params=target).text)
    director = browsers[Role.director].get("/audit", params=target)
    assert director.status_code == 200
    assert _events(director.text)
    assert f'href="/records/{w.contract}"' in director.text
    # Nowhere in the auditor's whole trail, and somewhere in the director's.
    auditor_ids = set(_whole_trail(browsers[Role.auditor]))
    director_ids = set(_whole_trail(browsers[Role.director]))
    contract_ids = {i for i, _ in _events(director.text)}
    assert contract_ids <= director_ids
    assert not contract_ids & auditor_ids
    for path in ("/audit", "/audit?action=record.create"):
        assert w.contract not in browsers[Role.auditor].get(path).text


def test_verify_behind_the_button_needs_the_csrf_token(browsers: dict[Role, TestClient]) -> None:
    auditor = browsers[Role.auditor]
    refused = auditor.post("/api/v1/audit/verify")
    assert refused.status_code == 403
    answer = auditor.post("/api/v1/audit/verify", headers={"X-CSRF-Token": _csrf(auditor)})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["events"] == report["head_id"]
    verified = _events(auditor.get("/audit", params={"action": "audit.verify"}).text)
    assert verified


def test_the_page_speaks_chinese_by_default(w: World) -> None:
    auditor = sign_in_browser(w, Role.auditor, lang="zh-CN")
    page = auditor.get("/audit").text
    assert "审计日志" in page
    assert "校验" in page


# --- users ------------------------------------------------------------------------------


def test_the_admin_gets_the_users_page_with_its_forms(browsers: dict[Role, TestClient]) -> None:
    resp = browsers[Role.admin].get("/users")
    assert resp.status_code == 200
    assert 'id="nav-users"' in resp.text
    assert 'id="add-user-form"' in resp.text
    assert 'src="/static/users.js"' in resp.text
    for role in Role:
        assert f'data-name="{user_name(role)}" data-role="{role.value}"' in resp.text


@pytest.mark.parametrize("role", [Role.director, Role.auditor])
def test_readers_of_the_user_list_get_no_forms(
    browsers: dict[Role, TestClient], role: Role
) -> None:
    resp = browsers[role].get("/users")
    assert resp.status_code == 200
    assert f'data-name="{user_name(Role.admin)}"' in resp.text
    assert 'id="add-user-form"' not in resp.text
    assert "password-form" not in resp.text
    assert "users.js" not in resp.text


@pytest.mark.parametrize("role", [Role.clerk, Role.supervisor])
def test_other_roles_get_the_403_page_for_users(
    browsers: dict[Role, TestClient], role: Role
) -> None:
    resp = browsers[role].get("/users")
    assert resp.status_code == 403
    assert 'id="users"' not in resp.text
    assert 'id="nav-users"' not in resp.text


def test_adding_a_user_through_the_api_needs_the_csrf_token(
    browsers: dict[Role, TestClient],
) -> None:
    admin = browsers[Role.admin]
    body = {"name": "newclerk", "role": "clerk", "password": PASSWORD}
    refused = admin.post("/api/v1/users", json=body)
    assert refused.status_code == 403
    assert 'data-name="newclerk"' not in admin.get("/users").text
    token = _csrf(admin, "/users")
    added = admin.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token})
    assert added.status_code == 201, added.text
    assert (
        'data-name="newclerk" data-role="clerk" data-disabled="false"' in admin.get("/users").text
    )

    weak = admin.post(
        "/api/v1/users",
        json={**body, "name": "weakling", "password": "123"},
        headers={"X-CSRF-Token": token},
    )
    assert weak.status_code == 422
    assert weak.json()["error"]["message"]

    headers = {"X-CSRF-Token": token}
    assert admin.post("/api/v1/users/newclerk/disable", headers=headers).status_code == 200
    assert 'data-name="newclerk" data-role="clerk" data-disabled="true"' in admin.get("/users").text
    assert admin.post("/api/v1/users/newclerk/enable", headers=headers).status_code == 200
    changed = admin.post(
        "/api/v1/users/newclerk/password",
        json={"password": "another-long-passphrase"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text


def test_a_clerk_session_cannot_add_users_even_with_the_token(
    browsers: dict[Role, TestClient],
) -> None:
    clerk = browsers[Role.clerk]
    resp = clerk.post(
        "/api/v1/users",
        json={"name": "sneaky", "role": "admin", "password": PASSWORD},
        headers={"X-CSRF-Token": _csrf(clerk)},
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "permission_denied"
