"""The intake review in the pages over HTTP (docs/review.md): the review queue at ``/reviews``
with its buttons working through the JSON API with the page's session and CSRF token, a
clerk's own queue, contract records absent for all but directors, the gate on the record
page, the dashboard's tile; and records the system entered passing the clerk's gates."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.services.review import SYSTEM_ENTERED
from catalog import Role
from tests.corpus import CORPUS
from tests.integration.api_world import World, run_queue, sign_in_browser, user_name, world

MISSING = "2023-学籍变更-999"
_META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_TILE = re.compile(
    r'<li class="tile[^"]*" id="tile-review" data-value="(\d+)">\s*(<a href="([^"]*)">)?'
)
_CARD = re.compile(r'<section class="card review" id="review-([^"]+)"')


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("pages-reviews")) as the_world:
        yield the_world


@pytest.fixture(scope="module")
def browser(w: World) -> Callable[..., TestClient]:
    """A signed-in browser per role and language, kept for the module (signing in is slow)."""
    signed_in: dict[tuple[Role, str], TestClient] = {}

    def get(role: Role, lang: str = "en") -> TestClient:
        if (role, lang) not in signed_in:
            signed_in[role, lang] = sign_in_browser(w, role, lang=lang)
        return signed_in[role, lang]

    return get


def _upload(w: World, role: Role) -> str:
    """A record entered by a person, with every required field (it passes the system check)."""
    data = (CORPUS / "bad" / "hostile_name.png").read_bytes()
    resp = w.client.post(
        "/api/v1/records",
        headers=w.headers(role),
        files=[("files", ("scan.png", data, "image/png"))],
        data={
            "business_type": "奖励",
            "year": "2024",
            "force": "true",
            "title": "2024 年度奖励登记表",
            "paper_location": "档案室 A-1-2",
            "student_no": "20240001",
            "student_name": "李四",
        },
    )
    assert resp.status_code == 201, resp.text
    code: str = resp.json()["records"][0]["archive_code"]
    return code


def _listed(browser: TestClient) -> list[str]:
    page = browser.get("/reviews")
    assert page.status_code == 200, page.text
    return _CARD.findall(page.text)


def _card(browser: TestClient, code: str) -> str:
    text = browser.get("/reviews").text
    start = text.index(f'id="review-{code}"')
    return text[start : text.index("</section>", start)]


def _api(browser: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """Call the JSON API as the page's script does: the session cookie and the CSRF token of
    the page's ``<meta name="csrf-token">`` in the X-CSRF-Token header."""
    found = _META_CSRF.search(browser.get("/reviews").text)
    assert found is not None
    return browser.request(method, path, headers={"X-CSRF-Token": found.group(1)}, **kwargs)


def _state(w: World, code: str) -> dict[str, Any]:
    resp = w.client.get(f"/api/v1/records/{code}/review", headers=w.headers(Role.director))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_records_the_system_entered_pass_the_clerk_gates_and_a_persons_do_not(w: World) -> None:
    history = w.client.get(
        f"/api/v1/records/{w.internal}/history", headers=w.headers(Role.director)
    ).json()["events"]
    decided = [
        (e["actor"], e["detail"]["decision"], e["detail"].get("gate"), e["detail"].get("reason"))
        for e in history
        if e["action"] == "record.review" and e["outcome"] == "ok"
    ]
    # Entered by a script as "test": its clerk's gates are passed as "test", with the reason.
    assert decided[:3] == [
        ("test", "open", None, None),
        ("test", "pass", "intake_check", SYSTEM_ENTERED),
        ("test", "pass", "data_entry", SYSTEM_ENTERED),
    ]
    # ... and the system check ran (the world's records lack a title: it sent them back).
    assert decided[3][0].startswith("worker:")
    assert decided[3][1:3] == ("return", "system_check")
    assert _state(w, w.internal)["gate"] == "system_check"
    # A record a person entered waits for that person.
    code = _upload(w, Role.clerk)
    assert (_state(w, code)["state"], _state(w, code)["gate"]) == ("open", "intake_check")


def test_a_record_goes_through_the_queue_page_as_clerk_and_supervisor(
    w: World, browser: Callable[..., TestClient]
) -> None:
    clerk = browser(Role.clerk)
    supervisor = browser(Role.supervisor)
    code = _upload(w, Role.clerk)

    # The clerk sees it at their gate with a pass button; the supervisor sees it wait, and has
    # no button on a gate that is not theirs.
    assert code in _listed(clerk)
    card = _card(clerk, code)
    assert 'data-gate="intake_check"' in card
    assert 'data-op="pass"' in card
    assert code in _listed(supervisor)
    assert "data-op=" not in _card(supervisor, code)

    review = f"/api/v1/records/{code}/review"
    # Without the CSRF header the session is not enough.
    assert clerk.post(review, json={"decision": "pass"}).status_code == 403
    for gate in ("intake_check", "data_entry"):
        done = _api(clerk, "POST", review, json={"decision": "pass", "gate": gate})
        assert done.status_code == 200, done.text
    run_queue(w.rt)
    assert (_state(w, code)["state"], _state(w, code)["gate"]) == ("open", "final_review")
    # Out of the clerk's hands: gone from their queue.
    assert code not in _listed(clerk)

    card = _card(supervisor, code)
    assert 'data-gate="final_review"' in card
    assert 'data-op="pass"' in card
    assert 'data-op="return"' in card
    assert 'data-outcome="attention"' in card  # the system check's findings, shown for 复核
    assert "Digitization quality" in card
    # The clerk may not decide 复核, page session or not.
    assert _api(clerk, "POST", review, json={"decision": "pass"}).status_code == 403
    assert _api(supervisor, "POST", review, json={"decision": "return"}).status_code == 422
    back = _api(
        supervisor,
        "POST",
        review,
        json={"decision": "return", "reason": "缺少班主任签字", "gate": "final_review"},
    )
    assert back.status_code == 200, back.text
    assert back.json()["state"] == "returned"

    # Sent back: the clerk sees it with its reason and a resubmit button.
    card = _card(clerk, code)
    assert 'data-state="returned"' in card
    assert "缺少班主任签字" in card
    assert 'data-op="resubmit"' in card
    assert "data-op=" not in _card(supervisor, code)
    again = _api(clerk, "POST", f"/api/v1/records/{code}/resubmit")
    assert again.status_code == 200, again.text
    assert again.json()["round"] == 2
    run_queue(w.rt)
    passed = _api(supervisor, "POST", review, json={"decision": "pass", "gate": "final_review"})
    assert passed.status_code == 200, passed.text
    assert passed.json()["state"] == "accepted"
    assert code not in _listed(supervisor)

    # The record page shows where it stands and how it got there.
    page = clerk.get(f"/records/{code}")
    assert page.status_code == 200
    assert 'id="review"' in page.text
    assert 'data-state="accepted"' in page.text
    decisions = re.findall(r'<tr class="review-event" data-decision="(\w+)"', page.text)
    assert decisions == ["open", "pass", "pass", "pass", "return", "resubmit", "pass", "pass"]
    assert "缺少班主任签字" in page.text
    assert user_name(Role.supervisor) in page.text


def test_the_record_page_shows_the_gate_in_chinese(
    w: World, browser: Callable[..., TestClient]
) -> None:
    page = browser(Role.supervisor, "zh-CN").get(f"/records/{w.internal}")
    assert page.status_code == 200
    section = page.text[page.text.index('id="review"') :]
    assert "入库审核" in section
    assert "系统校验" in section
    assert "已退回" in section
    assert "I2" in section  # the finding that sent it back


def test_a_clerk_sees_only_their_own_and_contracts_only_directors(
    w: World, browser: Callable[..., TestClient]
) -> None:
    clerk = browser(Role.clerk)
    supervisor = browser(Role.supervisor)
    director = browser(Role.director)
    # The world's records were entered by a script: nobody's own.
    assert w.internal not in _listed(clerk)
    assert w.internal in _listed(supervisor)
    assert w.contract in _listed(director)
    for client in (clerk, supervisor):
        assert w.contract not in client.get("/reviews").text
        hidden = client.get(f"/records/{w.contract}")
        missing = client.get(f"/records/{MISSING}")
        assert hidden.status_code == missing.status_code == 404
    # A record a supervisor entered waits at the supervisor's own gates, not in the clerk's.
    theirs = _upload(w, Role.supervisor)
    assert theirs not in _listed(clerk)
    assert 'data-op="pass"' in _card(supervisor, theirs)


def test_the_nav_link_and_who_may_open_the_queue(
    w: World, browser: Callable[..., TestClient]
) -> None:
    for role in (Role.clerk, Role.supervisor, Role.director):
        assert 'id="nav-reviews"' in browser(role).get("/records").text, role
    for role in (Role.auditor, Role.admin):
        other = browser(role)
        assert 'id="nav-reviews"' not in other.get("/").text, role
        assert other.get("/reviews").status_code == 403, role


def _tile(browser: TestClient) -> tuple[int, str | None]:
    found = _TILE.search(browser.get("/").text)
    assert found is not None
    return int(found.group(1)), found.group(3)


def test_the_dashboard_tile_counts_what_the_queue_lists(
    w: World, browser: Callable[..., TestClient]
) -> None:
    clerk = browser(Role.clerk)
    supervisor = browser(Role.supervisor)
    director = browser(Role.director)
    mine = _upload(w, Role.clerk)  # waits at the clerk's first gate
    for client in (clerk, supervisor, director):
        count, href = _tile(client)
        assert href == "/reviews"
        assert count == len(_listed(client))
    assert mine in _listed(clerk)
    # The contract counts for the director alone.
    assert _tile(director)[0] == _tile(supervisor)[0] + 1
    assert _tile(clerk)[0] < _tile(supervisor)[0]
    # An auditor sees the figure of the records they may see, with nowhere to go.
    assert _tile(browser(Role.auditor)) == (_tile(supervisor)[0], None)
    # Passing a gate changes the figure (the record moves on to the system check).
    before = _tile(clerk)[0]
    for gate in ("intake_check", "data_entry"):
        done = _api(
            clerk, "POST", f"/api/v1/records/{mine}/review", json={"decision": "pass", "gate": gate}
        )
        assert done.status_code == 200, done.text
    assert _tile(clerk)[0] == before - 1
