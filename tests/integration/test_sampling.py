"""The quarterly sampling audit (issue #7 part 5, docs/sampling.md).

On a catalog of records made directly (no OCR; only codes, types and clerks matter), on SQLite
and PostgreSQL: the same quarter and archive draw the same sample, a preview does not move it,
changing any record before drawing does, and the size is the documented rule's for several
archive sizes. On the small OCR'd world through the API as the right and the wrong roles: the
draw, the checklist (a contract item: a director's alone, and hidden from everyone else),
findings filed, answered and closed with evidence, reminders, and the reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import Runtime, initialize
from api.services import sampling as service
from api.services.sampling_plan import quarter_of, sample_size
from catalog import (
    Action,
    NewRecord,
    ObjectRole,
    Role,
    UserInfo,
    create_record,
    create_user,
    get_record,
    get_user,
    grant_access,
    list_events,
    objects_of_record,
    update_record_fields,
)
from catalog.policy import is_allowed
from tests.corpus import CORPUS
from tests.integration.api_world import World, _runtime, user_name, world

QUARTER = str(quarter_of(dt.datetime.now(dt.UTC)))


def _archive(rt: Runtime, records: int) -> tuple[UserInfo, list[str]]:
    """``records`` records of this quarter by two clerks over three types, and a director."""
    codes = []
    with rt.db.write() as session:
        clerks = [
            create_user(session, name=f"c{i}", role=Role.clerk, password="x" * 12, actor="test")
            for i in (1, 2)
        ]
        director = create_user(
            session, name="boss", role=Role.director, password="x" * 12, actor="test"
        )
        types = ("新生入学", "学籍变更", "奖励")
        for i in range(records):
            clerk = clerks[i % 2]
            rec = create_record(
                session,
                NewRecord(business_type=types[i % 3], year=2026),
                actor=clerk.name,
                actor_id=clerk.id,
            )
            codes.append(rec.archive_code)
    return director, codes


def test_the_same_archive_draws_the_same_sample_until_a_record_changes(
    runtime_each_backend: Runtime,
) -> None:
    rt = runtime_each_backend
    director, codes = _archive(rt, 200)
    first = service.preview(rt, director, QUARTER)
    assert len(first) == sample_size(200) == 51
    assert len(set(first)) == 51
    assert set(first) <= set(codes)
    # A preview is audited but does not move the seed: the same archive draws the same.
    assert service.preview(rt, director, QUARTER) == first
    # Another quarter of the same archive draws its own (here: nothing was created then).
    assert service.preview(rt, director, "2001Q1") == []
    # Any change to any record appends an audit event, and so another sample.
    with rt.db.write() as session:
        update_record_fields(session, codes[7], {"paper_location": "档案室 B-2"}, actor="boss")
    changed = service.preview(rt, director, QUARTER)
    assert len(changed) == 51
    assert set(changed) != set(first)
    # The draw takes exactly the sample the preview showed, and keeps it.
    audit = service.draw(rt, director, QUARTER)
    view = service.audit_view(rt, director, audit.id)
    assert [i.archive_code for i in view.items] == changed
    assert (audit.population, audit.sample_size) == (200, 51)
    # Stratified by type × clerk: 3 types × 2 clerks, each share within one of proportional.
    assert {(s.business_type, s.clerk) for s in view.strata} == {
        (t, c) for t in ("新生入学", "学籍变更", "奖励") for c in ("c1", "c2")
    }
    # Records entered with no user in the sample: none here, every item names its clerk.
    assert {i.clerk for i in view.items} == {"c1", "c2"}
    with pytest.raises(Exception, match="drawn already"):
        service.draw(rt, director, QUARTER)


@pytest.mark.parametrize("records", [7, 30])
def test_the_size_follows_the_rule(tmp_path: Path, records: int) -> None:
    rt = _runtime(tmp_path / "data")
    try:
        initialize(rt, admin="root", password="correct-horse-battery")
        director, _ = _archive(rt, records)
        drawn = service.preview(rt, director, QUARTER)
        assert len(drawn) == sample_size(records) == {7: 7, 30: 23}[records]
    finally:
        rt.close()


# --- through the API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("sampling")) as the_world:
        yield the_world


def _items(w: World, role: Role, audit_id: int) -> dict[str, dict[str, object]]:
    resp = w.client.get(f"/api/v1/sampling/audits/{audit_id}", headers=w.headers(role))
    assert resp.status_code == 200, resp.text
    return {i["archive_code"]: i for i in resp.json()["items"]}


def _draw(w: World) -> int:
    h = w.headers(Role.auditor)
    resp = w.client.post("/api/v1/sampling/draws", json={"quarter": QUARTER}, headers=h)
    if resp.status_code == 409:
        return int(w.client.get("/api/v1/sampling/audits", headers=h).json()["audits"][0]["id"])
    assert resp.status_code == 201, resp.text
    return int(resp.json()["audit"]["id"])


def test_only_directors_and_auditors_draw_and_a_preview_hides_contracts(w: World) -> None:
    for role in Role:
        resp = w.client.post(
            "/api/v1/sampling/draws",
            json={"quarter": QUARTER, "dry_run": True},
            headers=w.headers(role),
        )
        if not is_allowed(role, Action.sampling_run):
            assert resp.status_code == 403
            continue
        assert resp.status_code == 200, resp.text
        codes = resp.json()["codes"]
        assert w.internal in codes
        assert (w.contract in codes) is (role is Role.director)
    bad = w.client.post(
        "/api/v1/sampling/draws", json={"quarter": "2026Q9"}, headers=w.headers(Role.auditor)
    )
    assert bad.status_code == 422
    assert "YYYYQn" in bad.json()["error"]["message"]
    with w.rt.db.read() as session:
        denied = list_events(session, action="sampling.run", limit=100)
    assert {e.actor for e in denied if e.outcome == "denied"} >= {"clerk1", "admin1"}


def test_the_draw_as_the_auditor_sees_it_and_as_the_director(w: World) -> None:
    audit_id = _draw(w)
    auditor = w.client.get(f"/api/v1/sampling/audits/{audit_id}", headers=w.headers(Role.auditor))
    body = auditor.json()
    assert [i["archive_code"] for i in body["items"]] == [w.internal]
    assert body["audit"]["population"] is None  # it would count the hidden contract
    assert w.contract not in auditor.text
    director = w.client.get(
        f"/api/v1/sampling/audits/{audit_id}", headers=w.headers(Role.director)
    ).json()
    assert {i["archive_code"] for i in director["items"]} == {w.internal, w.contract}
    assert director["audit"]["population"] == director["audit"]["sample_size"] == 2
    contract = next(i for i in director["items"] if i["archive_code"] == w.contract)
    rules = {c["rule"]: c["outcome"] for c in contract["checks"]}
    # The contract's automatic checks ran like everyone's: copies, naming, OCR, retention...
    assert {"A1", "A4", "I2", "U4", "N1", "O1", "R1"} <= set(rules)
    assert rules["A1"] == rules["N1"] == "pass"
    again = w.client.post(
        "/api/v1/sampling/draws", json={"quarter": QUARTER}, headers=w.headers(Role.director)
    )
    assert again.status_code == 409


def test_the_checklist_is_the_auditors_for_internal_items_and_the_directors_for_contracts(
    w: World,
) -> None:
    audit_id = _draw(w)
    everything = _items(w, Role.director, audit_id)
    internal, contract = everything[w.internal]["id"], everything[w.contract]["id"]
    yes = {"answers": {"legible": True, "matches_paper": True, "location_right": True}}

    def post(role: Role, item: object, body: object = yes) -> int:
        resp = w.client.post(
            f"/api/v1/sampling/items/{item}/checklist", json=body, headers=w.headers(role)
        )
        return resp.status_code

    assert post(Role.clerk, internal) == 403
    assert post(Role.auditor, internal) == 200
    # A contract item is the director's alone: for the auditor it is not there at all.
    hidden = w.client.post(
        f"/api/v1/sampling/items/{contract}/checklist", json=yes, headers=w.headers(Role.auditor)
    )
    missing = w.client.post(
        "/api/v1/sampling/items/999999/checklist", json=yes, headers=w.headers(Role.auditor)
    )
    assert (hidden.status_code, hidden.content) == (missing.status_code, missing.content)
    assert hidden.status_code == 404
    no = {"answers": {"legible": True, "matches_paper": False, "location_right": True}}
    assert post(Role.director, contract, no) == 200
    assert post(Role.director, contract, {"answers": {"legible": True}}) == 422
    after = _items(w, Role.director, audit_id)
    assert after[w.contract]["defective"] is True
    assert after[w.contract]["manual"] == no["answers"]
    assert after[w.internal]["manual_by"] == "auditor1"


def test_a_finding_is_filed_answered_and_closed_with_evidence(w: World) -> None:
    audit_id = _draw(w)
    item = _items(w, Role.auditor, audit_id)[w.internal]["id"]
    url = f"/api/v1/sampling/items/{item}/findings"
    body = {"severity": "major", "summary": "纸质存放位置与记录不符"}
    # The world's records were entered by no user: the owner must be named.
    assert w.client.post(url, json=body, headers=w.headers(Role.auditor)).status_code == 422
    not_an_owner = {**body, "owner": "auditor1"}
    assert w.client.post(url, json=not_an_owner, headers=w.headers(Role.auditor)).status_code == 422
    assert (
        w.client.post(
            url, json={**body, "owner": "clerk1"}, headers=w.headers(Role.clerk)
        ).status_code
        == 403
    )
    filed = w.client.post(url, json={**body, "owner": "clerk1"}, headers=w.headers(Role.auditor))
    assert filed.status_code == 201, filed.text
    finding = filed.json()
    opened = dt.datetime.fromisoformat(finding["opened_at"])
    assert dt.datetime.fromisoformat(finding["due_at"]) - opened == dt.timedelta(days=7)
    fid = finding["id"]

    # Closing needs evidence: nothing given, nothing answered yet.
    empty = w.client.post(
        f"/api/v1/sampling/findings/{fid}/close", data={"note": ""}, headers=w.headers(Role.auditor)
    )
    assert empty.status_code == 409
    # Only the owner answers it.
    other = w.client.post(
        f"/api/v1/sampling/findings/{fid}/answer",
        data={"note": "已归位"},
        headers=w.headers(Role.supervisor),
    )
    assert other.status_code == 403
    mine = w.client.get("/api/v1/sampling/findings", headers=w.headers(Role.clerk)).json()
    assert [f["id"] for f in mine["findings"]] == [fid]
    photo = (CORPUS / "IMG_9754.png").read_bytes()
    answered = w.client.post(
        f"/api/v1/sampling/findings/{fid}/answer",
        data={"note": "已将原件归位至 A-3-12"},
        files={"files": ("归位照片.png", photo, "image/png")},
        headers=w.headers(Role.clerk),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["state"] == "answered"
    (ev,) = answered.json()["evidence"]

    assert ev["sha256"] == hashlib.sha256(photo).hexdigest()
    assert ev["file_name"] == "归位照片.png"
    # The evidence is in the vault, encrypted, as an object of the record.
    with w.rt.db.read() as session:
        record = get_record(session, w.internal)
        kept = [o for o in objects_of_record(session, record.id) if o.role is ObjectRole.evidence]
    assert len(kept) == 1
    assert {c.store for c in kept[0].copies} == {"primary", "replica"}
    assert photo not in b"".join(
        p.read_bytes() for p in (w.rt.settings.data_dir).rglob("*") if p.is_file()
    )

    closed = w.client.post(
        f"/api/v1/sampling/findings/{fid}/close",
        data={"note": "现场复核无误"},
        headers=w.headers(Role.auditor),
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"
    assert closed.json()["closed_by"] == "auditor1"
    twice = w.client.post(
        f"/api/v1/sampling/findings/{fid}/close",
        data={"note": "x"},
        headers=w.headers(Role.auditor),
    )
    assert twice.status_code == 409
    with w.rt.db.read() as session:
        trail = [e.action for e in list_events(session, target=f"record:{w.internal}", limit=500)]
    assert {"sampling.item", "finding.file", "finding.answer", "finding.close"} <= set(trail)


def test_reminders_and_overdue_findings(w: World) -> None:
    audit_id = _draw(w)
    director = w.headers(Role.director)
    item = _items(w, Role.director, audit_id)[w.contract]["id"]
    filed = w.client.post(
        f"/api/v1/sampling/items/{item}/findings",
        json={"severity": "minor", "summary": "扫描件模糊", "owner": "director1"},
        headers=director,
    )
    assert filed.status_code == 201, filed.text
    # The auditor never sees a contract's finding.
    listed = w.client.get("/api/v1/sampling/findings", headers=w.headers(Role.auditor)).json()
    assert filed.json()["id"] not in [f["id"] for f in listed["findings"]]
    now = dt.datetime.now(dt.UTC)
    assert service.remind(w.rt, actor="test", now=now) == (0, 0)  # due in 7 days: not yet
    reminded, late = service.remind(w.rt, actor="test", now=now + dt.timedelta(days=6))
    assert reminded >= 1
    assert late == 0
    assert service.remind(w.rt, actor="test", now=now + dt.timedelta(days=6, hours=1)) == (0, 0)
    reminded, late = service.remind(w.rt, actor="test", now=now + dt.timedelta(days=8))
    assert late >= 1
    with w.rt.db.read() as session:
        boss = get_user(session, "director1")
        auditor = get_user(session, "auditor1")
    later = now + dt.timedelta(days=8)
    assert service.overdue_findings(w.rt, boss, now=later) >= 1
    assert service.overdue_findings(w.rt, auditor, now=later) == service.overdue_findings(
        w.rt, auditor, now=now
    )


@pytest.mark.parametrize("role", [Role.auditor, Role.director])
def test_the_report_in_every_format(w: World, role: Role) -> None:
    audit_id = _draw(w)
    h = w.headers(role)
    base = f"/api/v1/sampling/audits/{audit_id}/report"
    csv = w.client.get(base, params={"format": "csv"}, headers=h)
    assert csv.status_code == 200
    text = csv.content.decode("utf-8-sig")
    assert w.internal in text
    assert (w.contract in text) is (role is Role.director)
    assert "error rate" in text
    html = w.client.get(base, params={"format": "html"}, headers=h)
    assert 'id="error-rate"' in html.text
    assert (w.contract in html.text) is (role is Role.director)
    # No break-glass grant is overdue in this archive: the report says so.
    assert 'id="grants-none"' in html.text
    pdf = w.client.get(base, params={"format": "pdf"}, headers=h)
    assert pdf.content.startswith(b"%PDF")
    assert w.client.get(base, headers=w.headers(Role.clerk)).status_code == 403


def test_overdue_break_glass_paperwork_is_in_every_report(w: World) -> None:
    audit_id = _draw(w)
    granted = dt.datetime.now(dt.UTC) - dt.timedelta(days=6)
    with w.rt.db.write() as session:
        grant_access(
            session,
            actor=user_name(Role.director),
            grantee=user_name(Role.clerk),
            reason="a parent's urgent request",
            hours=1,
            now=granted,
        )
    due = (granted + dt.timedelta(days=5)).strftime("%Y-%m-%d")
    base = f"/api/v1/sampling/audits/{audit_id}/report"
    h = w.headers(Role.auditor)
    html = w.client.get(base, params={"format": "html"}, headers=h).text
    assert f"{user_name(Role.clerk)} · {due}" in html
    csv = w.client.get(base, params={"format": "csv"}, headers=h).content.decode("utf-8-sig")
    assert f"breakglass,,,{user_name(Role.clerk)},overdue,{due},yes," in csv
