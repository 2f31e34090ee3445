"""The incident log through the API and its page, as the right and the wrong roles: anyone
reports, only directors and auditors record actions and close, a reporter reads their own
reports only, and a contract record named in an incident exists for directors alone
(docs/incidents.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from catalog import Role
from tests.integration.api_world import World, sign_in_browser, world

MISSING = "2023-学籍变更-999"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("incidents")) as the_world:
        yield the_world


def _post(w: World, role: Role, path: str, body: dict[str, Any]) -> Any:
    return w.client.post(path, headers=w.headers(role), json=body)


def _get(w: World, role: Role, path: str, **kw: Any) -> Any:
    return w.client.get(path, headers=w.headers(role), **kw)


def test_an_incident_is_reported_acted_on_and_closed_by_the_right_roles(w: World) -> None:
    body = {
        "kind": "leak",
        "summary": "走廊打印机上发现一份学籍表复印件",
        "occurred_at": "2026-03-02T08:30:00+08:00",
        "records": [w.internal],
    }
    made = _post(w, Role.clerk, "/api/v1/incidents", body)
    assert made.status_code == 201, made.text
    incident = made.json()
    assert (incident["reported_by"], incident["state"]) == ("clerk1", "open")
    assert incident["records"] == [w.internal]
    path = f"/api/v1/incidents/{incident['id']}"

    # Only those who manage incidents record actions and close them.
    for role in (Role.clerk, Role.supervisor, Role.admin):
        assert _post(w, role, f"{path}/actions", {"text": "x"}).status_code == 403
        assert _post(w, role, f"{path}/close", {"text": "x"}).status_code == 403
    acted = _post(w, Role.auditor, f"{path}/actions", {"text": "已收回复印件，通知家长"})
    assert acted.status_code == 200, acted.text
    assert [(a["actor"], a["text"]) for a in acted.json()["actions"]] == [
        ("auditor1", "已收回复印件，通知家长")
    ]
    # The reporter reads their own incident with its actions; another clerk-level role does
    # not, and it answers exactly as a missing one.
    mine = _get(w, Role.clerk, path).json()
    assert len(mine["actions"]) == 1
    other = _get(w, Role.supervisor, path)
    nothing = _get(w, Role.supervisor, "/api/v1/incidents/999999")
    assert other.status_code == 404
    assert other.text == nothing.text.replace("999999", str(incident["id"]))
    assert incident["id"] not in {
        i["id"] for i in _get(w, Role.supervisor, "/api/v1/incidents").json()
    }

    closed = _post(w, Role.director, f"{path}/close", {"text": "已整改：打印机加装取件密码"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["closed_by"]) == ("closed", "director1")
    assert _post(w, Role.auditor, f"{path}/actions", {"text": "late"}).status_code == 409
    assert _post(w, Role.director, f"{path}/close", {"text": "again"}).status_code == 409
    listed = _get(w, Role.auditor, "/api/v1/incidents", params={"state": "closed"}).json()
    assert incident["id"] in {i["id"] for i in listed}
    assert incident["id"] not in {
        i["id"] for i in _get(w, Role.auditor, "/api/v1/incidents", params={"state": "open"}).json()
    }

    # Audited, without the incident's words.
    events = _get(
        w, Role.director, "/api/v1/audit", params={"target": f"incident:{incident['id']}"}
    )
    actions = [e["action"] for e in events.json()["events"] if e["outcome"] == "ok"]
    assert actions == ["incident.report", "incident.act", "incident.close"]
    assert "打印机" not in events.text


def test_a_contract_record_in_an_incident_exists_for_directors_alone(w: World) -> None:
    hidden = _post(
        w,
        Role.clerk,
        "/api/v1/incidents",
        {"kind": "loss", "summary": "s", "records": [w.contract]},
    )
    missing = _post(
        w, Role.clerk, "/api/v1/incidents", {"kind": "loss", "summary": "s", "records": [MISSING]}
    )
    assert hidden.status_code == 404
    assert (hidden.status_code, hidden.content) == (missing.status_code, missing.content)

    made = _post(
        w,
        Role.director,
        "/api/v1/incidents",
        {"kind": "loss", "summary": "合同原件借出未还", "records": [w.contract, w.internal]},
    )
    assert made.status_code == 201, made.text
    path = f"/api/v1/incidents/{made.json()['id']}"
    assert _get(w, Role.director, path).json()["records"] == sorted([w.contract, w.internal])
    assert _get(w, Role.auditor, path).json()["records"] == [w.internal]
    trail = _get(
        w, Role.auditor, "/api/v1/audit", params={"action": "incident.record", "limit": 1000}
    )
    assert w.contract not in trail.text
    assert w.internal in trail.text


def test_bad_reports_are_refused_with_a_message(w: World) -> None:
    bad = [
        {"kind": "theft", "summary": "s"},
        {"kind": "leak", "summary": ""},
        {"kind": "leak", "summary": "s", "occurred_at": "2999-01-01T00:00:00+00:00"},
    ]
    for body in bad:
        resp = _post(w, Role.clerk, "/api/v1/incidents", body)
        assert resp.status_code == 422, body
        assert resp.json()["error"]["message"]


def test_the_pages_show_what_each_role_may_see(w: World) -> None:
    director = sign_in_browser(w, Role.director)
    page = director.get("/breakglass")
    assert page.status_code == 200
    assert 'id="grant-form"' in page.text
    assert 'id="nav-breakglass"' in page.text
    clerk = sign_in_browser(w, Role.clerk)
    own = clerk.get("/breakglass")
    assert own.status_code == 200
    assert 'id="request-form"' in own.text
    assert 'id="grant-form"' not in own.text
    assert 'id="nav-breakglass"' not in own.text
    log = clerk.get("/incidents")
    assert log.status_code == 200
    assert 'id="incident-form"' in log.text
    assert "incident-op" not in log.text
    zh = sign_in_browser(w, Role.auditor, lang="zh-CN").get("/incidents")
    assert "安全事件" in zh.text
