"""Break-glass through the API, as the right and the wrong roles: a grant opens contract-class
reading to its holder for its window only, everything done under it is marked in the audit
trail, an expired or revoked grant gives nothing, and overdue paperwork is flagged until a
director approves it (docs/breakglass.md).

The clock is passed in where a test needs a grant made in the past (a window already over,
paperwork already late): the catalog takes ``now``, the API always means now.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from catalog import GrantInfo, Role, grant_access, overdue_grants
from tests.integration.api_world import World, sign_in_browser, world

MISSING = "2023-学籍变更-999"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("breakglass")) as the_world:
        yield the_world


def _get(w: World, role: Role, path: str, **kw: Any) -> Any:
    return w.client.get(path, headers=w.headers(role), **kw)


def _post(
    w: World, role: Role, path: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> Any:
    return w.client.post(path, headers={**w.headers(role), **(headers or {})}, **kw)


def _events(w: World, **filters: str) -> list[dict[str, Any]]:
    resp = _get(w, Role.director, "/api/v1/audit", params={"limit": 1000, **filters})
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


def _grant_in_the_past(w: World, user: str, *, ago: dt.timedelta, hours: int) -> GrantInfo:
    with w.rt.db.write() as session:
        return grant_access(
            session,
            actor="director1",
            grantee=user,
            reason="紧急调阅",
            hours=hours,
            now=dt.datetime.now(dt.UTC) - ago,
        )


def _missing_body(w: World, role: Role, suffix: str = "") -> tuple[int, bytes]:
    resp = _get(w, role, f"/api/v1/records/{MISSING}{suffix}")
    return resp.status_code, resp.content


def test_a_grant_opens_contract_reading_for_its_window_marked_in_the_trail(w: World) -> None:
    contract = f"/api/v1/records/{w.contract}"
    assert (
        _get(w, Role.supervisor, contract).status_code,
        _get(w, Role.supervisor, contract).content,
    ) == _missing_body(w, Role.supervisor)

    # The wrong roles may not grant; each refusal leaves a trace.
    for role in (Role.clerk, Role.supervisor, Role.auditor):
        body = {"user": "supervisor1", "reason": "校长出差，需调阅合同", "hours": 2}
        refused = _post(w, role, "/api/v1/breakglass", json=body)
        assert refused.status_code == 403, refused.text
    denied = [e for e in _events(w, action="breakglass.grant") if e["outcome"] == "denied"]
    assert {e["actor"] for e in denied} >= {"clerk1", "supervisor1", "auditor1"}

    granted = _post(
        w,
        Role.director,
        "/api/v1/breakglass",
        json={"user": "supervisor1", "reason": "校长出差，需调阅合同", "hours": 2},
    )
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert (grant["status"], grant["grantee"], grant["overdue"]) == ("active", "supervisor1", False)
    due = dt.datetime.fromisoformat(grant["paperwork_due"]) - dt.datetime.fromisoformat(
        grant["granted_at"]
    )
    assert due == dt.timedelta(days=5)

    # Under the grant: the contract record exists, reads, and is searchable, for reading only.
    assert _get(w, Role.supervisor, contract).status_code == 200
    original = _get(w, Role.supervisor, f"{contract}/original")
    assert original.status_code == 200
    assert len(original.content) > 1000
    found = _get(w, Role.supervisor, "/api/v1/search", params={"type": "合同"}).json()
    assert w.contract in {h["record"]["archive_code"] for h in found["hits"]}
    edit = w.client.patch(
        contract, headers=w.headers(Role.supervisor), json={"paper_location": "A-1"}
    )
    assert edit.status_code == 403, edit.text
    # Nobody else gained anything.
    assert _get(w, Role.clerk, contract).status_code == 404

    # Everything the holder did meanwhile is marked with the grant; nothing before it.
    mine = _events(w, actor="supervisor1")
    grant_event = next(e for e in _events(w, action="breakglass.grant") if e["outcome"] == "ok")
    before = [e for e in mine if e["id"] < grant_event["id"]]
    during = [e for e in mine if e["id"] > grant_event["id"]]
    assert before
    assert all("breakglass" not in e["detail"] for e in before)
    assert during
    assert all(e["detail"].get("breakglass") == grant["id"] for e in during)
    reads = [e for e in during if e["action"] == "record.read_content"]
    assert reads
    assert reads[0]["target"] == f"record:{w.contract}"
    edits = [e for e in during if e["outcome"] == "denied"]
    assert edits
    assert all(e["detail"]["breakglass"] == grant["id"] for e in edits)

    # Revoked early: the contract is a missing record again, and the trail still verifies.
    assert (
        _post(
            w, Role.supervisor, f"/api/v1/breakglass/{grant['id']}/revoke", json={"reason": "x"}
        ).status_code
        == 403
    )
    revoked = _post(
        w, Role.admin, f"/api/v1/breakglass/{grant['id']}/revoke", json={"reason": "事毕"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    hidden = _get(w, Role.supervisor, contract)
    assert (hidden.status_code, hidden.content) == _missing_body(w, Role.supervisor)
    after = [e for e in _events(w, actor="supervisor1") if e["id"] > revoked_id(w, grant["id"])]
    assert after
    assert all("breakglass" not in e["detail"] for e in after)
    assert _post(w, Role.director, "/api/v1/audit/verify").json()["ok"] is True
    # Revoking it again is a conflict, not a second revocation.
    again = _post(w, Role.admin, f"/api/v1/breakglass/{grant['id']}/revoke", json={"reason": "y"})
    assert again.status_code == 409


def revoked_id(w: World, grant_id: int) -> int:
    found = _events(w, action="breakglass.revoke", target=f"breakglass:{grant_id}")
    return int(found[-1]["id"])


def test_an_expired_grant_gives_nothing(w: World) -> None:
    g = _grant_in_the_past(w, "auditor1", ago=dt.timedelta(hours=3), hours=2)
    hidden = _get(w, Role.auditor, f"/api/v1/records/{w.contract}")
    assert (hidden.status_code, hidden.content) == _missing_body(w, Role.auditor)
    found = _get(w, Role.auditor, "/api/v1/search", params={"type": "合同"}).json()
    assert found["total"] == 0
    mine = _get(w, Role.auditor, f"/api/v1/breakglass/{g.id}").json()
    assert mine["status"] == "expired"
    # Its window is over, so nothing is marked; and an expired grant cannot be revoked.
    assert all("breakglass" not in e["detail"] for e in _events(w, actor="auditor1")[-3:])
    late = _post(w, Role.director, f"/api/v1/breakglass/{g.id}/revoke", json={"reason": "x"})
    assert late.status_code == 409


def _png() -> bytes:
    # A scan's signature and enough bytes that a slice of them could only be this document.
    return b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(200_000)  # noqa: S311 - test data


def test_overdue_paperwork_is_flagged_until_a_director_approves_it(w: World) -> None:
    g = _grant_in_the_past(w, "clerk1", ago=dt.timedelta(days=6), hours=4)
    now = dt.datetime.now(dt.UTC)
    with w.rt.db.read() as session:
        assert g.id in {o.id for o in overdue_grants(session, now)}
        assert g.id not in {o.id for o in overdue_grants(session, now - dt.timedelta(days=2))}

    listed = _get(w, Role.director, "/api/v1/breakglass", params={"overdue": "true"}).json()
    assert g.id in {x["id"] for x in listed}
    browser = sign_in_browser(w, Role.director)
    page = browser.get("/")
    assert 'id="tile-breakglass-overdue" data-value="1"' in page.text
    # The grantee sees their own late paperwork flagged; another clerk-level role does not.
    clerk = sign_in_browser(w, Role.clerk).get("/").text
    assert 'id="tile-breakglass-overdue" data-value="1"' in clerk
    supervisor = sign_in_browser(w, Role.supervisor).get("/").text
    assert 'id="tile-breakglass-overdue" data-value="0"' in supervisor

    # Approval needs paperwork first, and only a director approves.
    path = f"/api/v1/breakglass/{g.id}"
    assert _post(w, Role.director, f"{path}/approve").status_code == 409
    headers = {"Content-Type": "image/png"}
    # The paperwork is a document: text is refused, and a role that neither holds nor grants
    # it may not file it.
    text = _post(w, Role.clerk, f"{path}/paperwork", content=b"just words", headers=headers)
    assert text.status_code == 422, text.text
    assert _post(w, Role.auditor, f"{path}/paperwork", content=_png()).status_code == 403
    assert _post(w, Role.supervisor, f"{path}/paperwork", content=_png()).status_code == 404
    filed = _post(w, Role.clerk, f"{path}/paperwork", content=_png())
    assert filed.status_code == 200, filed.text
    assert filed.json()["paperwork_type"] == "image/png"
    assert filed.json()["overdue"] is True  # filed, not yet approved

    # Encrypted in both stores: the document's bytes are nowhere on disk in the clear.
    data = Path(w.rt.settings.data_dir)
    head = _png()[100_000:100_064]
    for f in data.rglob("*"):
        if f.is_file() and f.stat().st_size < 50_000_000:
            assert head not in f.read_bytes(), f
    download = _get(w, Role.director, f"{path}/paperwork")
    assert (download.status_code, download.content) == (200, _png())

    for role in (Role.clerk, Role.supervisor, Role.auditor, Role.admin):
        assert _post(w, role, f"{path}/approve").status_code == 403
    closed = _post(w, Role.director, f"{path}/approve")
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["overdue"]) == ("closed", False)
    with w.rt.db.read() as session:
        assert g.id not in {o.id for o in overdue_grants(session, now)}
    again = browser.get("/")
    assert 'id="tile-breakglass-overdue" data-value="0"' in again.text


def test_requests_are_granted_or_refused_and_bad_grants_refused(w: World) -> None:
    asked = _post(
        w, Role.clerk, "/api/v1/breakglass/requests", json={"reason": "家长投诉，需核对合同"}
    )
    assert asked.status_code == 201, asked.text
    req = asked.json()
    assert req["status"] == "requested"
    twice = _post(w, Role.clerk, "/api/v1/breakglass/requests", json={"reason": "again"})
    assert twice.status_code == 409
    # A request gives nothing yet.
    assert _get(w, Role.clerk, f"/api/v1/records/{w.contract}").status_code == 404
    # Others see their own grants only; someone else's answers as a missing one.
    other = _get(w, Role.supervisor, f"/api/v1/breakglass/{req['id']}")
    nothing = _get(w, Role.supervisor, "/api/v1/breakglass/999999")
    same = nothing.text.replace("999999", str(req["id"]))
    assert (other.status_code, other.text) == (nothing.status_code, same)
    assert req["id"] not in {g["id"] for g in _get(w, Role.supervisor, "/api/v1/breakglass").json()}
    assert req["id"] in {g["id"] for g in _get(w, Role.clerk, "/api/v1/breakglass").json()}

    assert (
        _post(w, Role.supervisor, f"/api/v1/breakglass/{req['id']}/grant", json={}).status_code
        == 403
    )
    given = _post(w, Role.admin, f"/api/v1/breakglass/{req['id']}/grant", json={"hours": 1})
    assert given.status_code == 200, given.text
    assert (given.json()["status"], given.json()["granted_by"]) == ("active", "admin1")
    assert _get(w, Role.clerk, f"/api/v1/records/{w.contract}").status_code == 200
    # One grant in force at a time.
    dup = _post(w, Role.director, "/api/v1/breakglass", json={"user": "clerk1", "reason": "r"})
    assert dup.status_code == 409
    assert (
        _post(
            w, Role.director, f"/api/v1/breakglass/{req['id']}/revoke", json={"reason": "ok"}
        ).status_code
        == 200
    )
    assert _get(w, Role.clerk, f"/api/v1/records/{w.contract}").status_code == 404

    bad = {
        "director1": 422,  # sees everything already: a grant gives nothing
        "admin1": 422,  # reads nothing: a grant gives nothing
        "nobody-here": 404,
    }
    for name, code in bad.items():
        resp = _post(w, Role.director, "/api/v1/breakglass", json={"user": name, "reason": "r"})
        assert resp.status_code == code, (name, resp.text)
        assert resp.json()["error"]["message"]
    for hours in (0, 73):
        resp = _post(
            w,
            Role.director,
            "/api/v1/breakglass",
            json={"user": "auditor1", "reason": "r", "hours": hours},
        )
        assert resp.status_code == 422


def _cli(w: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(w.rt.settings.data_dir), *args])
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


@pytest.mark.usefixtures("clean_env")
def test_the_cli_grants_lists_and_refuses_as_a_named_user(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    grant = ("breakglass", "grant", "auditor1")
    code, _, err = _cli(w, capsys, *grant, "--reason", "r", "--as", "clerk1")
    assert code == 5, err
    code, _, err = _cli(w, capsys, *grant, "--as", "director1")
    assert code == 2, err
    assert "reason" in err
    code, out, err = _cli(
        w,
        capsys,
        "breakglass",
        "grant",
        "auditor1",
        "--reason",
        "急需",
        "--hours",
        "1",
        "--as",
        "director1",
    )
    assert code == 0, err
    assert "paperwork due" in out
    code, out, _ = _cli(w, capsys, "breakglass", "list", "--json", "--as", "auditor1")
    assert code == 0
    assert next(g["status"] for g in json.loads(out) if g["grantee"] == "auditor1") == "active"
    grant_id = json.loads(out)[0]["id"]
    code, out, _ = _cli(
        w, capsys, "breakglass", "revoke", str(grant_id), "--reason", "done", "--as", "admin1"
    )
    assert (code, out.strip()) == (0, f"{grant_id} revoked")
    # `list --overdue` exits 1 when a grant's paperwork is late (for scripts and cron).
    _grant_in_the_past(w, "supervisor1", ago=dt.timedelta(days=6), hours=1)
    code, out, _ = _cli(w, capsys, "breakglass", "list", "--overdue", "--as", "director1")
    assert code == 1
    assert "supervisor1" in out
