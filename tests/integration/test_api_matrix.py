"""The role × endpoint matrix: every API route, called as every role and anonymously, answers
what the policy table says (``catalog.policy_table`` / ``is_allowed``), and a contract record
is 404 (the very body of a missing record) for everyone but directors on every route that
could reveal it. Hidden records are also absent from listings, totals, search, jobs and the
audit trail that others read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from catalog import (
    Action,
    ActionScope,
    Role,
    SecurityClass,
    breakglass_gives,
    is_allowed,
    policy_table,
    visible_classes,
)
from tests.corpus import CORPUS
from tests.integration.api_world import ROLES, World, user_name, world

MISSING = "2023-学籍变更-999"
NO_CERT = "DC00000000-none"
_counter = itertools.count()


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("api-matrix")) as the_world:
        yield the_world


@dataclass(frozen=True)
class Endpoint:
    """One route as the matrix calls it: which policy action decides it, and how to call it."""

    method: str
    path: str  # "{code}" is filled with an archive code for record routes
    action: Action | None  # None: anyone signed in (or anyone at all when ``public``)
    ok: int = 200
    public: bool = False
    kwargs: Callable[[], dict[str, Any]] = dict
    upload_class: SecurityClass | None = None  # POST /records: the class of the new record
    # POST /breakglass/requests: a role a grant gives nothing is refused the request (422)
    grantable: bool = False
    ok_on: dict[str, int] = field(default_factory=dict)  # kind → the answer where ok differs

    @property
    def is_record_route(self) -> bool:
        return "{code}" in self.path


def _upload(security_class: SecurityClass) -> Callable[[], dict[str, Any]]:
    def kwargs() -> dict[str, Any]:
        data = (CORPUS / "bad" / "hostile_name.png").read_bytes()
        return {
            "files": [("files", ("scan.png", data, "image/png"))],
            "data": {
                "business_type": "合同" if security_class is SecurityClass.contract else "奖励",
                "year": "2024",
                "force": "true",
            },
        }

    return kwargs


def _change_request() -> dict[str, Any]:
    # A name no record has, so that every call asks for a change.
    return {"json": {"student_name": f"学生{next(_counter)}", "reason": "a typo on the form"}}


_DECISION = {
    "application_pages": "1",
    "approver": "教务处 李主任",
    "decision_date": "2023-09-01",
    "decision": "approved",
}


def _new_user() -> dict[str, Any]:
    return {"json": {"name": f"new{next(_counter)}", "role": "clerk", "password": "x" * 12}}


ENDPOINTS = (
    Endpoint("GET", "/api/v1/health", None, public=True),
    Endpoint("GET", "/api/v1/ready", None, public=True),
    Endpoint("GET", "/api/v1/auth/me", None),
    Endpoint(
        "POST",
        "/api/v1/records",
        Action.record_create,
        201,
        kwargs=_upload(SecurityClass.internal),
        upload_class=SecurityClass.internal,
    ),
    Endpoint(
        "POST",
        "/api/v1/records",
        Action.record_create,
        201,
        kwargs=_upload(SecurityClass.contract),
        upload_class=SecurityClass.contract,
    ),
    Endpoint("GET", "/api/v1/records", Action.record_read_metadata),
    Endpoint("GET", "/api/v1/records/{code}", Action.record_read_metadata),
    Endpoint(
        "PATCH",
        "/api/v1/records/{code}",
        Action.record_update_metadata,  # none of these records is anyone's draft
        kwargs=lambda: {"json": {"paper_location": "档案室 A-3-12"}},
    ),
    Endpoint("GET", "/api/v1/records/{code}/original", Action.record_read_content),
    Endpoint("GET", "/api/v1/records/{code}/access-copy", Action.record_read_content),
    Endpoint("GET", "/api/v1/records/{code}/pages/1/text", Action.record_read_content),
    Endpoint("GET", "/api/v1/records/{code}/pages/1/image?width=120", Action.record_read_content),
    Endpoint("GET", "/api/v1/records/{code}/history", Action.record_read_history),
    Endpoint(
        "POST",
        "/api/v1/records/{code}/change-requests",
        Action.record_request_key_change,
        201,
        kwargs=_change_request,
    ),
    Endpoint("GET", "/api/v1/change-requests", Action.record_request_key_change),
    # No change request 999999 exists: a director gets 404 where the others are refused first
    # (test_key_changes decides real ones).
    Endpoint(
        "POST",
        "/api/v1/change-requests/999999/approve",
        Action.record_update_key_fields,
        404,
        kwargs=lambda: {"json": {"reason": "checked"}},
    ),
    Endpoint(
        "POST",
        "/api/v1/change-requests/999999/reject",
        Action.record_update_key_fields,
        404,
        kwargs=lambda: {"json": {"reason": "no"}},
    ),
    # The contract record is no status-change decision (合同): a director may link it to
    # nothing, and is told so.
    Endpoint(
        "PUT",
        "/api/v1/records/{code}/decision",
        Action.record_update_metadata,
        kwargs=lambda: {"json": dict(_DECISION)},
        ok_on={"contract": 422},
    ),
    Endpoint("DELETE", "/api/v1/records/{code}/decision", Action.record_update_metadata, 204),
    Endpoint("GET", "/api/v1/search?q=万沐", Action.search),
    Endpoint("GET", "/api/v1/jobs", Action.job_read),
    Endpoint("GET", "/api/v1/jobs/schedule", Action.job_read),
    Endpoint("GET", "/api/v1/stats", Action.stats_read),
    Endpoint("GET", "/api/v1/stats/indicators", Action.stats_read),
    Endpoint("GET", "/api/v1/users", Action.user_list),
    Endpoint("POST", "/api/v1/users", Action.user_manage, 201, kwargs=_new_user),
    Endpoint("POST", "/api/v1/users/victim/disable", Action.user_manage),
    Endpoint("POST", "/api/v1/users/victim/enable", Action.user_manage),
    Endpoint(
        "POST",
        "/api/v1/users/victim/password",
        Action.user_manage,
        kwargs=lambda: {"json": {"password": "y" * 12}},
    ),
    Endpoint("GET", "/api/v1/audit", Action.audit_read),
    Endpoint("POST", "/api/v1/audit/verify", Action.audit_verify),
    Endpoint("POST", "/api/v1/checks", Action.check_run, kwargs=lambda: {"json": {"deep": False}}),
    # The intake review (docs/review.md): the system passed these records' clerk gates (a
    # script entered them) and its check sent them back, so a 复核 decision is refused to the
    # roles without record.review and 409 for the others.
    Endpoint("GET", "/api/v1/reviews", Action.record_read_metadata),
    Endpoint("GET", "/api/v1/records/{code}/review", Action.record_read_metadata),
    Endpoint(
        "POST",
        "/api/v1/records/{code}/review",
        Action.record_review,
        409,
        kwargs=lambda: {"json": {"decision": "pass", "gate": "final_review"}},
    ),
    # The sampling audit: a preview keeps nothing; a draw is tested in test_sampling.py.
    Endpoint(
        "POST",
        "/api/v1/sampling/draws",
        Action.sampling_run,
        kwargs=lambda: {"json": {"quarter": "2026Q3", "dry_run": True}},
    ),
    Endpoint("GET", "/api/v1/sampling/audits", Action.sampling_run),
    # Disposition: no proposal or certificate exists here, so a director gets 404 where the
    # others are refused first (test_retention_api disposes of records for real).
    Endpoint("GET", "/api/v1/disposition", Action.disposition_approve),
    Endpoint(
        "POST",
        "/api/v1/disposition/approve",
        Action.disposition_approve,
        404,
        kwargs=lambda: {"json": {"ids": [999999]}},
    ),
    Endpoint(
        "POST",
        "/api/v1/disposition/reject",
        Action.disposition_approve,
        404,
        kwargs=lambda: {"json": {"ids": [999999], "reason": "keep"}},
    ),
    Endpoint("GET", f"/api/v1/disposition/certificates/{NO_CERT}", Action.disposition_approve, 404),
    Endpoint(
        "GET", f"/api/v1/disposition/certificates/{NO_CERT}/pdf", Action.disposition_approve, 404
    ),
    # Break-glass and incidents: no grant or incident 999999 exists and no user "nobody-here",
    # so a role allowed the action gets 404 where the others are refused first
    # (test_breakglass and test_incidents walk them for real).
    Endpoint("GET", "/api/v1/breakglass", Action.breakglass_request),
    Endpoint(
        "POST",
        "/api/v1/breakglass",
        Action.breakglass_grant,
        404,
        kwargs=lambda: {"json": {"user": "nobody-here", "reason": "matrix"}},
    ),
    Endpoint("GET", "/api/v1/breakglass/999999", Action.breakglass_request, 404),
    Endpoint(
        "POST",
        "/api/v1/breakglass/requests",
        Action.breakglass_request,
        201,
        kwargs=lambda: {"json": {"reason": "matrix"}},
        grantable=True,
    ),
    Endpoint(
        "POST",
        "/api/v1/breakglass/999999/grant",
        Action.breakglass_grant,
        404,
        kwargs=lambda: {"json": {}},
    ),
    Endpoint(
        "POST",
        "/api/v1/breakglass/999999/revoke",
        Action.breakglass_grant,
        404,
        kwargs=lambda: {"json": {"reason": "matrix"}},
    ),
    Endpoint(
        "POST",
        "/api/v1/breakglass/999999/paperwork",
        Action.breakglass_request,
        404,
        kwargs=lambda: {"content": b"%PDF-1.4 matrix"},
    ),
    Endpoint("GET", "/api/v1/breakglass/999999/paperwork", Action.breakglass_request, 404),
    Endpoint("POST", "/api/v1/breakglass/999999/approve", Action.breakglass_approve, 404),
    Endpoint("GET", "/api/v1/incidents", Action.incident_report),
    Endpoint(
        "POST",
        "/api/v1/incidents",
        Action.incident_report,
        201,
        kwargs=lambda: {"json": {"kind": "loss", "summary": "matrix"}},
    ),
    Endpoint("GET", "/api/v1/incidents/999999", Action.incident_report, 404),
    Endpoint(
        "POST",
        "/api/v1/incidents/999999/actions",
        Action.incident_manage,
        404,
        kwargs=lambda: {"json": {"text": "matrix"}},
    ),
    Endpoint(
        "POST",
        "/api/v1/incidents/999999/close",
        Action.incident_manage,
        404,
        kwargs=lambda: {"json": {"text": "matrix"}},
    ),
)

# Routes the matrix does not call as every role, each tested on its own elsewhere.
ELSEWHERE = {
    ("POST", "/api/v1/auth/token"),  # test_api_auth: every role signs in through it here too
    ("POST", "/api/v1/auth/refresh"),  # test_api_auth
    ("POST", "/api/v1/auth/password"),  # test_api_auth (it revokes the caller's tokens)
    # test_review_api: only a record's own clerk resubmits it (an own-draft permit)
    ("POST", "/api/v1/records/{code}/resubmit"),
    # test_sampling: each called there as the right and the wrong roles, on a drawn audit.
    ("GET", "/api/v1/sampling/audits/{audit_id}"),
    ("GET", "/api/v1/sampling/audits/{audit_id}/report"),
    ("POST", "/api/v1/sampling/items/{item_id}/checklist"),
    ("POST", "/api/v1/sampling/items/{item_id}/findings"),
    ("GET", "/api/v1/sampling/findings"),
    ("POST", "/api/v1/sampling/findings/{finding_id}/answer"),
    ("POST", "/api/v1/sampling/findings/{finding_id}/close"),
}

RECORD_KINDS = ("internal", "contract", "missing")


def _code(w: World, kind: str) -> str:
    return {"internal": w.internal, "contract": w.contract, "missing": MISSING}[kind]


def _expected(ep: Endpoint, role: Role | None, kind: str | None) -> int:
    """What the policy table says this call must answer."""
    if ep.public:
        return 200
    if role is None:
        return 401
    if ep.action is None:
        return ep.ok
    if ep.grantable and is_allowed(role, ep.action) and not breakglass_gives(role):
        return 422
    if ep.upload_class is not None:
        return ep.ok if is_allowed(role, ep.action, ep.upload_class) else 403
    if kind is None:
        return ep.ok if is_allowed(role, ep.action) else 403
    if kind == "missing":
        return 404
    cls = SecurityClass(kind)
    if cls not in visible_classes(role):
        return 404
    return ep.ok_on.get(kind, ep.ok) if is_allowed(role, ep.action, cls) else 403


def _cases() -> Iterator[Any]:
    for ep in ENDPOINTS:
        kinds: tuple[str | None, ...] = RECORD_KINDS if ep.is_record_route else (None,)
        for kind, role in itertools.product(kinds, (*ROLES, None)):
            name = role.value if role else "anonymous"
            suffix = f"-{ep.upload_class}" if ep.upload_class else ""
            yield pytest.param(
                ep, role, kind, id=f"{ep.method} {ep.path}{suffix} [{kind or '-'}] as {name}"
            )


@pytest.fixture(scope="module")
def _victim(w: World) -> None:
    from catalog import create_user

    with w.rt.db.write() as session:
        create_user(session, name="victim", role=Role.clerk, password="z" * 12, actor="test")


@pytest.mark.usefixtures("_victim")
@pytest.mark.parametrize(("ep", "role", "kind"), list(_cases()))
def test_every_endpoint_as_every_role(
    w: World, ep: Endpoint, role: Role | None, kind: str | None
) -> None:
    path = ep.path.replace("{code}", _code(w, kind)) if kind else ep.path
    resp = w.client.request(ep.method, path, headers=w.headers(role), **ep.kwargs())
    expected = _expected(ep, role, kind)
    assert resp.status_code == expected, resp.text
    if expected == 204:
        assert resp.content == b""
    if expected >= 400:
        body = resp.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        assert body["error"]["message"]
    if expected == 404 and kind is not None:
        # A hidden record reads exactly as a missing one: same status, same body.
        missing = ep.path.replace("{code}", MISSING)
        same = w.client.request(ep.method, missing, headers=w.headers(role), **ep.kwargs())
        assert (same.status_code, same.content) == (resp.status_code, resp.content)


def _template(path: str) -> str:
    path = path.split("?")[0]
    path = path.replace(f"/certificates/{NO_CERT}", "/certificates/{certificate_id}")
    path = path.replace("/breakglass/999999", "/breakglass/{grant_id}")
    path = path.replace("/incidents/999999", "/incidents/{incident_id}")
    path = path.replace("/change-requests/999999/", "/change-requests/{request_id}/")
    return path.replace("/pages/1/", "/pages/{n}/").replace("/victim/", "/{name}/")


def test_the_matrix_covers_every_documented_route(w: World) -> None:
    # Every route the matrix calls answered as a route (no "no such route" 404 above); here
    # the OpenAPI document lists exactly those routes, so a new route must join the matrix.
    called = {(ep.method, _template(ep.path)) for ep in ENDPOINTS} | ELSEWHERE
    schema = w.client.get("/api/v1/openapi.json").json()
    documented = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert documented == called
    record_actions = {r.action for r in policy_table() if r.scope is ActionScope.record}
    used = {ep.action for ep in ENDPOINTS if ep.is_record_route}
    assert used <= record_actions
    assert {Action.record_read_metadata, Action.record_read_content} <= used


def test_a_contract_is_absent_from_listings_totals_search_jobs_and_trail(w: World) -> None:
    for role in ROLES:
        sees = SecurityClass.contract in visible_classes(role)
        h = w.headers(role)
        if is_allowed(role, Action.record_read_metadata):
            listing = w.client.get("/api/v1/records", params={"page_size": 200}, headers=h).json()
            codes = {r["archive_code"] for r in listing["records"]}
            assert (w.contract in codes) is sees
            assert w.internal in codes
            by_type = w.client.get("/api/v1/records", params={"type": "合同"}, headers=h).json()
            assert (by_type["total"] > 0) is sees
        if is_allowed(role, Action.search):
            found = w.client.get("/api/v1/search", params={"type": "合同"}, headers=h).json()
            assert (found["total"] > 0) is sees
            assert all(
                hit["record"]["security_class"] == "internal" or sees for hit in found["hits"]
            )
        jobs = w.client.get("/api/v1/jobs", params={"limit": 500}, headers=h).json()["jobs"]
        assert (any(j["archive_code"] == w.contract for j in jobs)) is (
            sees and is_allowed(role, Action.record_read_metadata)
        )
        if is_allowed(role, Action.audit_read):
            trail = w.client.get("/api/v1/audit", params={"limit": 1000}, headers=h).json()
            targets = {e["target"] for e in trail["events"]}
            assert (f"record:{w.contract}" in targets) is sees
            # For those who do not see every class, a probe for a missing code is hidden as
            # one for a hidden record is (the policy's event filter), so the two read alike.
            assert (f"record:{MISSING}" in targets) is sees


def test_search_finds_the_student_with_a_highlighted_snippet(w: World) -> None:
    found = w.client.get(
        "/api/v1/search", params={"q": "万沐"}, headers=w.headers(Role.auditor)
    ).json()
    assert found["total"] >= 1
    hit = next(h for h in found["hits"] if h["record"]["archive_code"] == w.internal)
    assert {"business_type", "year"} <= set(found["facets"])
    for snippet in hit["snippets"]:
        for start, end in snippet["highlights"]:
            assert 0 <= start < end <= len(snippet["text"])


def test_record_detail_names_both_copies_and_the_page_image_is_a_png(w: World) -> None:
    h = w.headers(Role.clerk)
    detail = w.client.get(f"/api/v1/records/{w.internal}", headers=h).json()
    assert detail["record"]["status"] == "archived"
    assert detail["record"]["stage"] == "done"
    assert [p["number"] for p in detail["pages"]] == [1]
    roles = {o["role"] for o in detail["objects"]}
    assert roles == {"original", "ocr_text", "access_copy"}
    for obj in detail["objects"]:
        assert {c["store"] for c in obj["copies"]} == {"primary", "replica"}
        assert all(c["state"] == "ok" for c in obj["copies"])
    image = w.client.get(
        f"/api/v1/records/{w.internal}/pages/1/image", params={"width": 200}, headers=h
    )
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(image.content)).width == 200
    original = w.client.get(f"/api/v1/records/{w.internal}/original", headers=h)
    assert original.content == (CORPUS / "IMG_2199.png").read_bytes()
    text = w.client.get(f"/api/v1/records/{w.internal}/pages/1/text", headers=h).json()
    assert text["text"].strip()
    assert w.client.get(f"/api/v1/records/{w.internal}/pages/2/text", headers=h).status_code == 404
    history = w.client.get(f"/api/v1/records/{w.internal}/history", headers=h).json()["events"]
    actions = [e["action"] for e in history]
    assert "record.create" in actions
    assert actions.count("record.read_content") >= 2  # the download and the page view


def test_page_views_never_leave_plaintext_on_disk(w: World, tmp_path: Path) -> None:
    data_dir = w.rt.settings.data_dir
    before = {p for p in data_dir.rglob("*") if p.is_file()}
    w.client.get(
        f"/api/v1/records/{w.internal}/pages/1/image",
        params={"width": 300},
        headers=w.headers(Role.director),
    )
    after = {p for p in data_dir.rglob("*") if p.is_file()}
    new = {p for p in after - before if "catalog.sqlite" not in p.name}
    assert new == set()


def test_drafts_are_corrected_by_their_clerk_and_records_adjusted_by_supervisors(w: World) -> None:
    clerk, supervisor = w.headers(Role.clerk), w.headers(Role.supervisor)
    upload = w.client.post("/api/v1/records", headers=clerk, **_upload(SecurityClass.internal)())
    assert upload.status_code == 201
    draft = upload.json()["records"][0]["archive_code"]
    fixed = w.client.patch(
        f"/api/v1/records/{draft}", json={"student_name": "王小明"}, headers=clerk
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["student_name"] == "王小明"
    history = w.client.get(f"/api/v1/records/{draft}/history", headers=clerk).json()["events"]
    (change,) = [e for e in history if e["action"] == "record.update"]
    assert change["detail"]["before"] == {"student_name": None}
    assert change["detail"]["after"] == {"student_name": "王小明"}
    # The student is a key field: only its own clerk's draft takes it.
    other = w.client.patch(
        f"/api/v1/records/{draft}", json={"student_name": "x"}, headers=supervisor
    )
    assert other.status_code == 403
    archived = w.client.patch(
        f"/api/v1/records/{w.internal}", json={"student_name": "x"}, headers=supervisor
    )
    assert archived.status_code == 403
    # A supervisor adjusts a non-key field of an archived record; it is indexed again.
    titled = w.client.patch(
        f"/api/v1/records/{w.internal}", json={"title": "学籍变更审批表"}, headers=supervisor
    )
    assert titled.status_code == 200
    assert titled.json()["title"] == "学籍变更审批表"
    events = w.client.get(f"/api/v1/records/{w.internal}/history", headers=supervisor).json()
    actions = [e["action"] for e in events["events"]]
    assert actions.index("record.sidecar", actions.index("record.update")) > 0  # rewritten after
    jobs = w.client.get("/api/v1/jobs", params={"state": "queued"}, headers=supervisor).json()
    assert any(
        j["kind"] == "index.record" and j["archive_code"] == w.internal for j in jobs["jobs"]
    )
    unknown = w.client.patch(
        f"/api/v1/records/{w.internal}", json={"year": 2020}, headers=supervisor
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "invalid_input"


def test_an_upload_carries_the_class_and_a_supervisor_corrects_it(w: World) -> None:
    clerk, supervisor = w.headers(Role.clerk), w.headers(Role.supervisor)
    body = w.client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/records"]["post"]
    form = body["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"type": "string", "maxLength": 64} in form["student_class"]["anyOf"]
    kwargs = _upload(SecurityClass.internal)()
    kwargs["data"]["student_class"] = "高三(2)班"
    upload = w.client.post("/api/v1/records", headers=clerk, **kwargs)
    assert upload.status_code == 201, upload.text
    code = upload.json()["records"][0]["archive_code"]
    assert upload.json()["records"][0]["student_class"] == "高三(2)班"
    got = w.client.get(f"/api/v1/records/{code}", headers=supervisor).json()
    assert got["record"]["student_class"] == "高三(2)班"
    # A non-key field: a supervisor corrects it on a record that is not theirs.
    fixed = w.client.patch(
        f"/api/v1/records/{code}", json={"student_class": "高三(3)班"}, headers=supervisor
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["student_class"] == "高三(3)班"
    history = w.client.get(f"/api/v1/records/{code}/history", headers=supervisor).json()
    (change,) = [e for e in history["events"] if e["action"] == "record.update"]
    assert change["actor"] == user_name(Role.supervisor)
    assert change["detail"]["before"] == {"student_class": "高三(2)班"}
    assert change["detail"]["after"] == {"student_class": "高三(3)班"}
    too_long = w.client.patch(
        f"/api/v1/records/{code}", json={"student_class": "班" * 65}, headers=supervisor
    )
    assert too_long.status_code == 422
    kwargs = _upload(SecurityClass.internal)()
    kwargs["data"]["student_class"] = "班" * 65
    refused = w.client.post("/api/v1/records", headers=clerk, **kwargs)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_input"
