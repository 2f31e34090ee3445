"""The intake review gates walked through the API (docs/review.md): 材料初审 and 信息录入 by
the clerk who entered the record, 系统校验 by the system (the four-property rules and the
review's own), 复核 by a supervisor or director; each gate tried by the wrong roles first,
a record sent back corrected by its clerk and resubmitted; contract records hidden as
missing; the CLI over the same service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.cli import main
from catalog import Role
from tests.corpus import CORPUS
from tests.integration.api_world import World, run_queue, user_name, world

MISSING = "2023-学籍变更-999"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("review")) as the_world:
        yield the_world


def _upload(w: World, role: Role, **fields: str) -> str:
    data = (CORPUS / "bad" / "hostile_name.png").read_bytes()
    resp = w.client.post(
        "/api/v1/records",
        headers=w.headers(role),
        files=[("files", ("scan.png", data, "image/png"))],
        data={"business_type": "奖励", "year": "2024", "force": "true", **fields},
    )
    assert resp.status_code == 201, resp.text
    code: str = resp.json()["records"][0]["archive_code"]
    return code


def _review(w: World, code: str, role: Role, decision: str, **body: Any) -> Any:
    return w.client.post(
        f"/api/v1/records/{code}/review",
        headers=w.headers(role),
        json={"decision": decision, **body},
    )


def _state(w: World, code: str) -> dict[str, Any]:
    resp = w.client.get(f"/api/v1/records/{code}/review", headers=w.headers(Role.director))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_a_record_walks_every_gate_as_the_right_roles_and_is_refused_to_the_wrong_ones(
    w: World,
) -> None:
    code = _upload(w, Role.clerk)
    start = _state(w, code)
    assert start["gates"] == ["intake_check", "data_entry", "system_check", "final_review"]
    assert (start["state"], start["gate"]) == ("open", "intake_check")

    # 材料初审 and 信息录入: the clerk who entered it, nobody else.
    for role in (Role.supervisor, Role.director, Role.auditor, Role.admin):
        assert _review(w, code, role, "pass").status_code == 403, role
    assert _review(w, code, Role.clerk, "pass", gate="final_review").status_code == 403
    assert _review(w, code, Role.clerk, "pass", gate="data_entry").status_code == 409
    assert _review(w, code, Role.clerk, "pass").json()["gate"] == "data_entry"
    after = _review(w, code, Role.clerk, "pass", gate="data_entry").json()
    assert (after["state"], after["gate"]) == ("open", "system_check")
    # 系统校验 is the system's: nobody decides it by hand.
    assert _review(w, code, Role.clerk, "pass").status_code == 403
    assert _review(w, code, Role.director, "pass").status_code == 409

    # The pipeline finishes, then the check runs: required fields are empty, back it goes.
    run_queue(w.rt)
    back = _state(w, code)
    assert (back["state"], back["gate"]) == ("returned", "system_check")
    assert "I2" in back["reason"]
    assert "title" in back["reason"]
    assert any(f["rule"] == "I2" and f["outcome"] == "fail" for f in back["findings"])

    # Sent back, it is its clerk's draft again: the clerk corrects it; a supervisor may not
    # touch its student, nor resubmit it.
    fix = {
        "title": "2024 年度奖励登记表",
        "paper_location": "档案室 A-1-2",
        "student_no": "20240001",
        "student_name": "李四",
    }
    fixed = w.client.patch(f"/api/v1/records/{code}", json=fix, headers=w.headers(Role.clerk))
    assert fixed.status_code == 200, fixed.text
    assert (
        w.client.patch(
            f"/api/v1/records/{code}", json={"student_no": "x"}, headers=w.headers(Role.supervisor)
        ).status_code
        == 403
    )
    for role in (Role.supervisor, Role.director, Role.auditor):
        resp = w.client.post(f"/api/v1/records/{code}/resubmit", headers=w.headers(role))
        assert resp.status_code == 403, role
    again = w.client.post(f"/api/v1/records/{code}/resubmit", headers=w.headers(Role.clerk))
    assert again.status_code == 200, again.text
    assert (again.json()["gate"], again.json()["round"]) == ("system_check", 2)
    # Resubmitted (and read), it is out of the clerk's hands until it comes back.
    twice = w.client.post(f"/api/v1/records/{code}/resubmit", headers=w.headers(Role.clerk))
    assert twice.status_code == 403
    assert (
        w.client.patch(
            f"/api/v1/records/{code}", json={"student_no": "S9"}, headers=w.headers(Role.clerk)
        ).status_code
        == 403
    )

    run_queue(w.rt)
    ready = _state(w, code)
    assert (ready["state"], ready["gate"]) == ("open", "final_review"), ready
    assert all(f["outcome"] == "attention" for f in ready["findings"])
    queue = w.client.get(
        "/api/v1/reviews",
        params={"state": "open", "gate": "final_review"},
        headers=w.headers(Role.supervisor),
    ).json()
    assert code in [r["archive_code"] for r in queue["reviews"]]

    # 复核: supervisors and directors; a return needs a reason.
    for role in (Role.clerk, Role.auditor, Role.admin):
        assert _review(w, code, role, "pass").status_code == 403, role
    no_reason = _review(w, code, Role.supervisor, "return")
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["error"]["message"]
    returned = _review(w, code, Role.supervisor, "return", reason="缺少班主任签字")
    assert returned.status_code == 200
    assert (returned.json()["state"], returned.json()["reason"]) == ("returned", "缺少班主任签字")
    mine = w.client.get(
        "/api/v1/reviews",
        params={"state": "returned", "mine": "true"},
        headers=w.headers(Role.clerk),
    ).json()
    assert code in [r["archive_code"] for r in mine["reviews"]]
    assert (
        w.client.post(f"/api/v1/records/{code}/resubmit", headers=w.headers(Role.clerk)).json()[
            "round"
        ]
        == 3
    )
    run_queue(w.rt)
    accepted = _review(w, code, Role.director, "pass")
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["state"], accepted.json()["gate"]) == ("accepted", None)
    # Accepted: no longer anyone's draft; `archived` still means the two verified copies.
    detail = w.client.get(f"/api/v1/records/{code}", headers=w.headers(Role.clerk)).json()
    assert detail["record"]["status"] == "archived"
    assert (
        w.client.patch(
            f"/api/v1/records/{code}", json={"title": "x"}, headers=w.headers(Role.clerk)
        ).status_code
        == 403
    )
    assert _review(w, code, Role.director, "pass").status_code == 409

    history = w.client.get(f"/api/v1/records/{code}/history", headers=w.headers(Role.director))
    events = [e for e in history.json()["events"] if e["action"] == "record.review"]
    ok = [e for e in events if e["outcome"] == "ok"]
    assert [e["detail"]["decision"] for e in ok] == [
        "open",
        "pass",
        "pass",
        "return",
        "resubmit",
        "pass",
        "return",
        "resubmit",
        "pass",
        "pass",
    ]
    assert ok[3]["actor"].startswith("worker:")
    assert ok[6]["detail"]["before"] == {"gate": "final_review", "state": "open", "round": 2}
    assert ok[6]["detail"]["after"] == {"gate": "final_review", "state": "returned", "round": 2}
    assert ok[-1]["actor"] == user_name(Role.director)
    denied = {
        (e["actor"], e["action"]) for e in history.json()["events"] if e["outcome"] == "denied"
    }
    assert (user_name(Role.supervisor), "record.update_draft") in denied  # 材料初审, 重新提交
    assert (user_name(Role.clerk), "record.review") in denied  # 复核
    assert (user_name(Role.auditor), "record.review") in denied


def test_a_contract_record_answers_as_a_missing_one_to_all_but_directors(w: World) -> None:
    for role in (Role.clerk, Role.supervisor, Role.auditor):
        for path, method in (
            (f"/api/v1/records/{w.contract}/review", "GET"),
            (f"/api/v1/records/{w.contract}/review", "POST"),
            (f"/api/v1/records/{w.contract}/resubmit", "POST"),
        ):
            hidden = w.client.request(
                method, path, headers=w.headers(role), json={"decision": "pass"}
            )
            missing = w.client.request(
                method,
                path.replace(w.contract, MISSING),
                headers=w.headers(role),
                json={"decision": "pass"},
            )
            assert hidden.status_code == missing.status_code == 404, (role, path)
            assert hidden.json() == missing.json()
        listed = w.client.get("/api/v1/reviews", headers=w.headers(role)).json()
        assert w.contract not in [r["archive_code"] for r in listed["reviews"]]
    seen = w.client.get("/api/v1/reviews", headers=w.headers(Role.director)).json()
    assert w.contract in [r["archive_code"] for r in seen["reviews"]]
    # Entered by a script, it is no one's draft: the system passed its clerk's gates, and the
    # system check sent it back (no title): a director has no gate to decide.
    assert _state(w, w.contract)["gate"] == "system_check"
    assert _review(w, w.contract, Role.director, "pass").status_code == 409
    bad = w.client.get(
        "/api/v1/reviews", params={"state": "nope"}, headers=w.headers(Role.director)
    )
    assert bad.status_code == 422
    # With no clerk to resubmit it, a director puts it right and resubmits it; the system
    # check then passes it on to 复核.
    fixed = w.client.patch(
        f"/api/v1/records/{w.contract}",
        headers=w.headers(Role.director),
        json={"title": "合同", "paper_location": "B-1-01"},
    )
    assert fixed.status_code == 200, fixed.text
    again = w.client.post(
        f"/api/v1/records/{w.contract}/resubmit", headers=w.headers(Role.director)
    )
    assert again.status_code == 200, again.text
    run_queue(w.rt)
    state = _state(w, w.contract)
    assert (state["state"], state["gate"]) == ("open", "final_review"), state


def test_a_system_entered_record_is_resubmitted_by_a_reviewer_not_a_clerk(w: World) -> None:
    # The internal record was entered by a script and sent back by the system check.
    assert _state(w, w.internal)["state"] == "returned"
    refused = w.client.post(f"/api/v1/records/{w.internal}/resubmit", headers=w.headers(Role.clerk))
    assert refused.status_code == 403
    done = w.client.post(
        f"/api/v1/records/{w.internal}/resubmit", headers=w.headers(Role.supervisor)
    )
    assert done.status_code == 200, done.text
    assert _state(w, w.internal)["round"] == 2


def test_the_gates_follow_the_business_type_and_the_cli_decides_as_a_person(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = w.rt.settings.review
    settings.type_gates = {"奖励": []}
    try:
        at_once = _state(w, _upload(w, Role.clerk))
    finally:
        settings.type_gates = {}
    assert (at_once["gates"], at_once["state"]) == ([], "accepted")

    code = _upload(w, Role.clerk)
    data_dir = str(w.rt.settings.data_dir)

    def dangan(*args: str) -> tuple[int, str]:
        """The CLI as a script runs it (errors mapped to exit codes): stdout, else stderr."""
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["--data-dir", data_dir, "review", *args])
        out, err = capsys.readouterr()
        rc = int(exit_info.value.code or 0)
        return rc, out if rc == 0 else err

    clerk, supervisor = user_name(Role.clerk), user_name(Role.supervisor)
    assert dangan("pass", code, "--as", supervisor)[0] == 5
    assert dangan("pass", code)[0] == 2
    assert dangan("pass", code, "--as", clerk) == (0, f"{code}  open at data_entry  round 1\n")
    rc, out = dangan("return", code, "--reason", "扫描缺页", "--as", clerk)
    assert rc == 0, out
    rc, out = dangan("list", "--state", "returned", "--mine", "--as", clerk)
    assert f"{code}  returned at data_entry  round 1  reason: 扫描缺页" in out
    assert dangan("resubmit", code, "--as", supervisor)[0] == 5
    assert dangan("resubmit", code, "--as", clerk)[0] == 0
    assert dangan("resubmit", code, "--as", clerk)[0] == 6  # not sent back (any more)
    assert dangan("show", MISSING, "--as", clerk) == (4, "error: no such record\n")
    assert _state(w, code)["gate"] == "system_check"
