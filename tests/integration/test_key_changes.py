"""Three levels of rights, walked through the API as the right and the wrong roles (issue #7):
clerks file and correct their drafts, supervisors adjust non-key fields, key fields change
only by a change request a director approves, audited with before and after; a misfiled
record gets a new code and the old one still finds it; a stale request is refused; contract
isolation holds across a key change; a status-change decision carries its approval chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from api.services import ingest
from api.services.fourprop import Outcome, Selection, run_check
from catalog import NewRecord, Role, create_record, get_user, list_events
from tests.corpus import scan
from tests.integration.api_world import (
    World,
    run_queue,
    sign_in_browser,
    user_name,
    world,
)

MISSING = "2023-学籍变更-999"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as the_world:
        yield the_world


def _archived(w: World, btype: str, name: str = "IMG_3214.png", **fields: Any) -> str:
    """Another archived record, through intake and the queue."""
    record = ingest(w.rt, scan(name), NewRecord(btype, 2023, **fields), actor="test", force=True)
    run_queue(w.rt)
    return record.archive_code


def _file(w: World, role: Role, code: str, **changes: Any) -> Any:
    body = {"reason": "the paper original says otherwise", **changes}
    return w.client.post(
        f"/api/v1/records/{code}/change-requests", json=body, headers=w.headers(role)
    )


def _decide(w: World, role: Role, request_id: int, op: str, reason: str = "checked") -> Any:
    return w.client.post(
        f"/api/v1/change-requests/{request_id}/{op}",
        json={"reason": reason},
        headers=w.headers(role),
    )


def _history(w: World, role: Role, code: str) -> list[dict[str, Any]]:
    resp = w.client.get(
        f"/api/v1/records/{code}/history", params={"limit": 1000}, headers=w.headers(role)
    )
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


def _check(w: World, code: str) -> dict[str, Outcome]:
    with w.rt.db.read() as session:
        director = get_user(session, user_name(Role.director))
    report = run_check(w.rt, Selection((code,)), user=director, deep=False)
    (record,) = report.records
    items = {i.rule: i.outcome for i in record.items}
    items.update({f"archive:{i.rule}": i.outcome for i in report.archive})
    return items


def test_non_key_fields_are_the_supervisors_and_key_fields_nobodys_to_edit(w: World) -> None:
    adjust = {"tags": ["补档", "待核"], "notes": "原件在校办", "paper_location": "A-1-01"}
    for role in (Role.clerk, Role.auditor, Role.admin):
        refused = w.client.patch(
            f"/api/v1/records/{w.internal}", json=adjust, headers=w.headers(role)
        )
        assert refused.status_code == 403, (role, refused.text)
    done = w.client.patch(
        f"/api/v1/records/{w.internal}", json=adjust, headers=w.headers(Role.supervisor)
    )
    assert done.status_code == 200, done.text
    assert (done.json()["tags"], done.json()["notes"]) == (["补档", "待核"], "原件在校办")
    (event,) = [e for e in _history(w, Role.clerk, w.internal) if e["action"] == "record.update"]
    assert event["detail"]["before"] == {"tags": [], "notes": None, "paper_location": None}
    assert event["detail"]["after"] == {
        "tags": ["补档", "待核"],
        "notes": "原件在校办",
        "paper_location": "A-1-01",
    }
    # Key fields are never edited in place past intake, whoever asks.
    for role in (Role.supervisor, Role.director):
        for field, value in (("student_name", "王小明"), ("year", 2020), ("business_type", "转学")):
            refused = w.client.patch(
                f"/api/v1/records/{w.internal}", json={field: value}, headers=w.headers(role)
            )
            assert refused.status_code in (403, 422), (role, field, refused.text)
    bad = w.client.patch(
        f"/api/v1/records/{w.internal}",
        json={"tags": ["a,b"]},
        headers=w.headers(Role.supervisor),
    )
    assert bad.status_code == 422
    # The vault's own account follows: the four-property check finds catalog and sidecar alike.
    items = _check(w, w.internal)
    assert items["A3"] is Outcome.passed
    assert items["A4"] is Outcome.passed


def test_a_misfiled_record_is_renamed_by_an_approved_request(w: World) -> None:
    old = w.internal
    # Who may file: clerks, supervisors, directors; never auditors or admins.
    for role in (Role.auditor, Role.admin):
        assert _file(w, role, old, business_type="转学").status_code == 403
    no_reason = w.client.post(
        f"/api/v1/records/{old}/change-requests",
        json={"business_type": "转学"},
        headers=w.headers(Role.clerk),
    )
    assert no_reason.status_code == 422
    assert _file(w, Role.clerk, old, business_type="无此类型").status_code == 422
    assert _file(w, Role.clerk, MISSING, business_type="转学").status_code == 404
    filed = _file(w, Role.clerk, old, business_type="转学")
    assert filed.status_code == 201, filed.text
    request = filed.json()
    assert request["state"] == "open"
    assert request["changes"] == {"business_type": "转学"}
    assert request["before"]["archive_code"] == old
    rid = request["id"]

    # Who sees it: its clerk, any director; another filer only when asking about the record.
    def listed(role: Role, **params: Any) -> list[int]:
        resp = w.client.get("/api/v1/change-requests", params=params, headers=w.headers(role))
        assert resp.status_code == 200, resp.text
        return [r["id"] for r in resp.json()]

    assert listed(Role.clerk) == [rid]
    assert listed(Role.director) == [rid]
    assert listed(Role.supervisor) == []
    assert listed(Role.supervisor, code=old) == [rid]
    for role in (Role.auditor, Role.admin):
        resp = w.client.get("/api/v1/change-requests", headers=w.headers(role))
        assert resp.status_code == 403

    # Who may decide: directors alone, with a reason; every refusal leaves its trace.
    for role in (Role.clerk, Role.supervisor, Role.auditor, Role.admin):
        assert _decide(w, role, rid, "approve").status_code == 403
        assert _decide(w, role, rid, "reject").status_code == 403
    assert _decide(w, Role.director, rid, "approve", reason="").status_code == 422
    with w.rt.db.read() as session:
        denied = [
            e
            for e in list_events(session, action="record.update_key_fields", limit=1000)
            if e.outcome == "denied"
        ]
    assert {e.actor for e in denied} >= {user_name(r) for r in (Role.clerk, Role.supervisor)}
    assert {e.target for e in denied} == {f"change_request:{rid}"}

    approved = _decide(w, Role.director, rid, "approve", reason="checked the paper file")
    assert approved.status_code == 200, approved.text
    change = approved.json()
    new = change["record"]["archive_code"]
    assert new == "2023-转学-001"
    assert change["former_code"] == old
    assert change["before"] == {"business_type": "学籍变更", "archive_code": old}
    assert change["after"] == {"business_type": "转学", "archive_code": new}
    assert change["request"]["state"] == "approved"
    assert _decide(w, Role.director, rid, "approve").status_code == 409  # decided already

    # The old code still finds the record: the API answers with its current code.
    for code in (old, new):
        detail = w.client.get(f"/api/v1/records/{code}", headers=w.headers(Role.auditor))
        assert detail.status_code == 200
        assert detail.json()["record"]["archive_code"] == new
        assert detail.json()["former_codes"] == [old]
    original = w.client.get(f"/api/v1/records/{old}/original", headers=w.headers(Role.clerk))
    assert original.status_code == 200
    # One history across the rename: the events under the old code, then the key change.
    events = _history(w, Role.clerk, old)
    assert events == _history(w, Role.clerk, new)
    actions = [e["action"] for e in events]
    assert actions[0] == "record.create"
    assert {e["target"] for e in events} == {f"record:{old}", f"record:{new}"}
    key_change = next(e for e in events if e["action"] == "record.key_change")
    assert key_change["actor"] == user_name(Role.director)
    assert key_change["detail"]["before"] == change["before"]
    assert key_change["detail"]["after"] == change["after"]
    assert key_change["detail"]["filed_by"] == user_name(Role.clerk)
    # ...then indexed again under its new code, and its sidecar rewritten after the change.
    assert actions.index("record.sidecar", actions.index("record.key_change"))
    jobs = w.client.get("/api/v1/jobs", params={"state": "queued"}, headers=w.headers(Role.clerk))
    assert any(j["kind"] == "index.record" for j in jobs.json()["jobs"])
    run_queue(w.rt)
    found = w.client.get(
        "/api/v1/search", params={"q": "type:转学"}, headers=w.headers(Role.clerk)
    ).json()
    assert [h["record"]["archive_code"] for h in found["hits"]] == [new]
    by_old = w.client.get("/api/v1/search", params={"q": old}, headers=w.headers(Role.clerk))
    assert new in [h["record"]["archive_code"] for h in by_old.json()["hits"]]
    # The old code is never handed out again: a legacy upload cannot take it.
    items = _check(w, new)
    assert items["A3"] is Outcome.passed
    assert items["A4"] is Outcome.passed
    assert items["archive:I4"] is Outcome.passed  # the old serial is still held, by the alias
    # A browser asking for the old code is sent to the new one.
    browser = sign_in_browser(w, Role.clerk)
    page = browser.get(f"/records/{old}", follow_redirects=False)
    assert page.status_code == 307
    assert unquote(page.headers["location"]) == f"/records/{new}"
    moved = browser.get(f"/records/{old}")
    assert moved.status_code == 200
    assert new in moved.text
    assert old in moved.text  # among its former codes


def test_a_student_correction_and_a_stale_request(w: World) -> None:
    code = w.internal
    one = _file(w, Role.supervisor, code, student_name="万木", student_no="2023001").json()
    two = _file(w, Role.clerk, code, year=2022).json()
    done = _decide(w, Role.director, one["id"], "approve")
    assert done.status_code == 200, done.text
    record = done.json()["record"]
    assert record["archive_code"] == code  # the student is no part of the code
    assert (record["student_name"], record["student_no"]) == ("万木", "2023001")
    assert done.json()["before"] == {"student_name": "万沐", "student_no": None}
    stale = _decide(w, Role.director, two["id"], "approve")
    assert stale.status_code == 409
    assert "stale" in stale.json()["error"]["message"]
    states = w.client.get(
        "/api/v1/change-requests", params={"all": "true"}, headers=w.headers(Role.director)
    ).json()
    assert {r["id"]: r["state"] for r in states} == {one["id"]: "approved", two["id"]: "stale"}
    detail = w.client.get(f"/api/v1/records/{code}", headers=w.headers(Role.clerk)).json()
    assert detail["record"]["year"] == 2023
    assert detail["former_codes"] == []


def test_a_rejected_request_leaves_the_record_as_it_was(w: World) -> None:
    rid = _file(w, Role.clerk, w.internal, year=2021).json()["id"]
    assert _decide(w, Role.supervisor, rid, "reject").status_code == 403
    rejected = _decide(w, Role.director, rid, "reject", reason="the paper says 2023")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["decision_reason"] == "the paper says 2023"
    assert _decide(w, Role.director, rid, "approve").status_code == 409
    detail = w.client.get(f"/api/v1/records/{w.internal}", headers=w.headers(Role.clerk))
    assert detail.json()["record"]["year"] == 2023
    actions = [e["action"] for e in _history(w, Role.clerk, w.internal)]
    assert actions[-2:] == ["change_request.file", "change_request.reject"]


def test_a_key_change_to_contract_keeps_contract_isolation(w: World) -> None:
    old = w.internal
    assert _file(w, Role.clerk, w.contract, year=2022).status_code == 404  # hidden: missing
    assert _file(w, Role.supervisor, old, business_type="合同").status_code == 422
    rid = _file(w, Role.supervisor, old, business_type="合同", security_class="contract").json()
    done = _decide(w, Role.director, rid["id"], "approve")
    assert done.status_code == 200, done.text
    new = done.json()["record"]["archive_code"]
    assert done.json()["record"]["security_class"] == "contract"
    for role in (Role.clerk, Role.supervisor, Role.auditor):
        h = w.headers(role)
        missing = w.client.get(f"/api/v1/records/{MISSING}", headers=h)
        for code in (old, new):
            for path in ("", "/history"):
                hidden = w.client.get(f"/api/v1/records/{code}{path}", headers=h)
                assert hidden.status_code == 404
                assert hidden.content == missing.content
        if role is not Role.auditor:
            listed = w.client.get("/api/v1/change-requests", params={"all": "true"}, headers=h)
            assert listed.json() == []
            assert _file(w, role, old, year=2020).status_code == 404
    trail = w.client.get(
        "/api/v1/audit", params={"limit": 1000}, headers=w.headers(Role.auditor)
    ).json()
    targets = {e["target"] for e in trail["events"]}
    assert f"record:{old}" not in targets
    assert f"record:{new}" not in targets
    assert (
        w.client.get(f"/api/v1/records/{old}", headers=w.headers(Role.director)).status_code == 200
    )


def test_a_status_change_decision_carries_its_approval_chain(w: World) -> None:
    decision = w.internal  # 学籍变更
    application = _archived(w, "新生入学", student_name="万沐")
    link = {
        "application_code": application,
        "approver": "教务处 李主任",
        "decision_date": "2023-09-01",
        "decision": "approved",
    }
    for role in (Role.clerk, Role.auditor, Role.admin):
        refused = w.client.put(
            f"/api/v1/records/{decision}/decision", json=link, headers=w.headers(role)
        )
        assert refused.status_code == 403
    # An application one may not see is missing, exactly as one that does not exist.
    hidden = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "application_code": w.contract},
        headers=w.headers(Role.supervisor),
    )
    missing = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "application_code": MISSING},
        headers=w.headers(Role.supervisor),
    )
    assert (
        (hidden.status_code, hidden.content)
        == (missing.status_code, missing.content)
        == (
            404,
            missing.content,
        )
    )
    crossing = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "application_code": w.contract},
        headers=w.headers(Role.director),
    )
    assert crossing.status_code == 422  # a contract named from an internal record
    not_a_decision = w.client.put(
        f"/api/v1/records/{application}/decision",
        json={**link, "application_code": None, "application_pages": "1"},
        headers=w.headers(Role.supervisor),
    )
    assert not_a_decision.status_code == 422
    done = w.client.put(
        f"/api/v1/records/{decision}/decision", json=link, headers=w.headers(Role.supervisor)
    )
    assert done.status_code == 200, done.text
    assert done.json()["application_code"] == application
    by_user = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "approver": None, "approver_user": user_name(Role.director)},
        headers=w.headers(Role.director),
    )
    assert by_user.status_code == 200, by_user.text
    assert by_user.json()["approver_user"] == user_name(Role.director)

    # Both records show it, in the API's detail and on their pages, and in their histories.
    mine = w.client.get(f"/api/v1/records/{decision}", headers=w.headers(Role.auditor)).json()
    assert mine["decision"]["application_code"] == application
    assert mine["decision"]["decision_date"] == "2023-09-01"
    assert mine["cited_by"] == []
    theirs = w.client.get(f"/api/v1/records/{application}", headers=w.headers(Role.clerk)).json()
    assert [d["decision_code"] for d in theirs["cited_by"]] == [decision]
    assert theirs["decision"] is None
    decided = _history(w, Role.clerk, decision)
    changes = [e for e in decided if e["action"] == "record.decision"]
    assert changes[0]["detail"]["before"] == {"decision_link": None}
    assert changes[1]["detail"]["before"]["decision_link"]["approver"] == "教务处 李主任"
    assert changes[1]["detail"]["after"]["decision_link"]["approver_user"] == user_name(
        Role.director
    )
    assert [e["action"] for e in _history(w, Role.clerk, application)].count(
        "record.decision_application"
    ) == 2
    browser = sign_in_browser(w, Role.clerk)
    assert application in browser.get(f"/records/{decision}").text
    assert decision in browser.get(f"/records/{application}").text
    assert _check(w, decision)["A3"] is Outcome.passed

    # The application renamed: the decision names it by its new code, and its sidecar follows.
    rid = _file(w, Role.clerk, application, year=2022).json()["id"]
    renamed = _decide(w, Role.director, rid, "approve").json()["record"]["archive_code"]
    mine = w.client.get(f"/api/v1/records/{decision}", headers=w.headers(Role.clerk)).json()
    assert mine["decision"]["application_code"] == renamed
    assert _check(w, decision)["A3"] is Outcome.passed

    # The same record's own pages hold the application; then the link is removed.
    own = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "application_code": None, "application_pages": "1"},
        headers=w.headers(Role.supervisor),
    )
    assert own.status_code == 200, own.text
    assert own.json()["application_code"] is None
    assert own.json()["application_pages"] == "1"
    no_pages = w.client.put(
        f"/api/v1/records/{decision}/decision",
        json={**link, "application_code": None},
        headers=w.headers(Role.supervisor),
    )
    assert no_pages.status_code == 422
    gone = w.client.delete(f"/api/v1/records/{decision}/decision", headers=w.headers(Role.clerk))
    assert gone.status_code == 403
    gone = w.client.delete(
        f"/api/v1/records/{decision}/decision", headers=w.headers(Role.supervisor)
    )
    assert gone.status_code == 204
    mine = w.client.get(f"/api/v1/records/{decision}", headers=w.headers(Role.clerk)).json()
    assert mine["decision"] is None
    assert _check(w, decision)["A3"] is Outcome.passed


def test_the_pages_file_and_decide_requests(w: World) -> None:
    clerk, director = sign_in_browser(w, Role.clerk), sign_in_browser(w, Role.director)
    page = clerk.get(f"/records/{w.internal}").text
    assert 'id="change-form"' in page
    assert 'id="decision-form"' not in page  # linking a decision is a supervisor's
    assert (
        'id="decision-form"'
        in sign_in_browser(w, Role.supervisor).get(f"/records/{w.internal}").text
    )
    assert (
        'id="change-form"'
        not in sign_in_browser(w, Role.auditor).get(f"/records/{w.internal}").text
    )
    rid = _file(w, Role.clerk, w.internal, year=2022).json()["id"]
    assert f'data-id="{rid}"' in clerk.get(f"/records/{w.internal}").text  # open on the record
    own = clerk.get("/change-requests")
    assert own.status_code == 200
    assert f'data-id="{rid}"' in own.text
    assert 'data-op="approve"' not in own.text
    decide = director.get("/change-requests")
    assert f'data-id="{rid}"' in decide.text
    assert 'data-op="approve"' in decide.text
    assert 'id="nav-changes"' in decide.text
    assert sign_in_browser(w, Role.auditor).get("/change-requests").status_code == 403
    # The page's script approves through the API with the session's CSRF token.
    token = re.search(r'name="csrf-token" content="([^"]+)"', decide.text)
    assert token is not None
    done = director.post(
        f"/api/v1/change-requests/{rid}/approve",
        json={"reason": "checked"},
        headers={"X-CSRF-Token": token.group(1)},
    )
    assert done.status_code == 200, done.text
    decided = director.get("/change-requests").text
    assert f'data-id="{rid}" data-state="approved"' in decided


def test_a_decision_never_names_an_application_that_became_hidden(w: World) -> None:
    with w.rt.db.write() as session:
        application = create_record(session, NewRecord("新生入学", 2023), actor="test").archive_code
    link = {
        "application_code": application,
        "application_pages": "1",
        "approver": "李主任",
        "decision_date": "2023-09-01",
        "decision": "rejected",
    }
    done = w.client.put(
        f"/api/v1/records/{w.internal}/decision", json=link, headers=w.headers(Role.supervisor)
    )
    assert done.status_code == 200, done.text
    rid = _file(w, Role.director, application, security_class="contract").json()["id"]
    assert _decide(w, Role.director, rid, "approve").status_code == 200
    seen = w.client.get(f"/api/v1/records/{w.internal}", headers=w.headers(Role.clerk)).json()
    assert seen["decision"]["decision"] == "rejected"
    assert seen["decision"]["application_code"] is None
    assert seen["decision"]["application_pages"] is None
    page = sign_in_browser(w, Role.clerk).get(f"/records/{w.internal}").text
    assert application not in page.split('id="history"')[0]
    director = w.client.get(f"/api/v1/records/{w.internal}", headers=w.headers(Role.director))
    assert director.json()["decision"]["application_code"] == application
