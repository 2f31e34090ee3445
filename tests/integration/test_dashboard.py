"""The dashboard (``/``) and ``GET /api/v1/stats`` over a real archive: the director's figures
count the contract record, an auditor's do not (nor name its business type), the page and the
JSON agree, and the page keeps to the Content-Security-Policy (no inline style or script)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.sampling import overdue_findings
from catalog import (
    CopyState,
    ObjectRole,
    Role,
    get_record,
    get_user,
    objects_of_record,
    refresh_record_status,
    set_copy_state,
)
from tests.integration.api_world import PASSWORD, World, user_name, world

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TILE = re.compile(r'<li class="tile[^"]*" id="(tile-[a-z-]+)" data-value="(\d+)"')
_TYPE_ROW = re.compile(
    r'<tr><th scope="row">(?:<a href="[^"]*">)?([^<]+)(?:</a>)?</th>'
    r'<td class="count" data-value="(\d+)">'
)
CONTRACT_TYPE = "合同"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("dashboard")) as the_world:
        # The contract's replica of its original goes bad: a damaged copy, an under-replicated
        # record, which only the director may learn of.
        with the_world.rt.db.write() as session:
            record = get_record(session, the_world.contract)
            original = next(
                o for o in objects_of_record(session, record.id) if o.role is ObjectRole.original
            )
            set_copy_state(
                session,
                object_id=original.id,
                store="replica",
                state=CopyState.bad,
                actor="test",
            )
            refresh_record_status(session, record.id)
        yield the_world


def _signed_in(w: World, role: Role, *, lang: str = "en") -> TestClient:
    client = TestClient(create_app(w.rt))
    client.cookies.set("dangan_lang", lang)
    page = client.get("/login")
    match = _CSRF.search(page.text)
    assert match, page.text
    resp = client.post(
        "/login",
        data={"username": user_name(role), "password": PASSWORD, "csrf_token": match.group(1)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return client


@pytest.fixture(scope="module")
def pages(w: World) -> dict[Role, str]:
    """The dashboard as each role sees it (English, to read it back)."""
    seen = {}
    for role in Role:
        with _signed_in(w, role) as client:
            resp = client.get("/")
            assert resp.status_code == 200, resp.text
            seen[role] = resp.text
    return seen


def _tiles(html: str) -> dict[str, int]:
    return {name: int(v) for name, v in _TILE.findall(html)}


def _table(html: str, table_id: str) -> dict[str, int]:
    start = html.index(f'id="{table_id}"')
    body = html[start : html.index("</table>", start)]
    return {name.strip(): int(v) for name, v in _TYPE_ROW.findall(body)}


def _stats(w: World, role: Role) -> dict[str, Any]:
    resp = w.client.get("/api/v1/stats", headers=w.headers(role))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _overdue_findings(w: World, role: Role) -> int:
    with w.rt.db.read() as session:
        who = get_user(session, user_name(role))
    return overdue_findings(w.rt, who)


def _awaiting_review(w: World, role: Role) -> int:
    """The records waiting for a person at a review gate, by the review API (an admin, who
    may not list records, sees the classes an auditor sees)."""
    viewer = Role.auditor if role is Role.admin else role
    queries = [{"state": "returned"}] + [
        {"state": "open", "gate": g} for g in ("intake_check", "data_entry", "final_review")
    ]
    total = 0
    for params in queries:
        resp = w.client.get("/api/v1/reviews", params=params, headers=w.headers(viewer))
        assert resp.status_code == 200, resp.text
        total += int(resp.json()["total"])
    return total


def test_the_director_counts_the_contract_and_the_auditor_never_learns_of_it(
    pages: dict[Role, str],
) -> None:
    director, auditor = _tiles(pages[Role.director]), _tiles(pages[Role.auditor])
    assert director["tile-records"] == 2
    assert auditor["tile-records"] == 1
    assert director["tile-under-replicated"] == 1
    assert director["tile-damaged"] == 1
    assert auditor["tile-under-replicated"] == 0
    assert auditor["tile-damaged"] == 0
    assert _table(pages[Role.director], "table-types") == {"学籍变更": 1, CONTRACT_TYPE: 1}
    assert _table(pages[Role.auditor], "table-types") == {"学籍变更": 1}
    assert CONTRACT_TYPE not in pages[Role.auditor]
    assert CONTRACT_TYPE in pages[Role.director]
    for role in (Role.clerk, Role.supervisor, Role.admin):
        tiles = _tiles(pages[role])
        if role is Role.clerk:
            # A clerk's records to review are the ones they entered: none here.
            assert tiles.pop("tile-review") == 0
            tiles["tile-review"] = auditor["tile-review"]
        assert tiles == auditor
        assert CONTRACT_TYPE not in pages[role]
    # The records waiting for a person: the world's two, sent back by the system check.
    assert (director["tile-review"], auditor["tile-review"]) == (2, 1)


@pytest.mark.parametrize("role", [Role.director, Role.auditor, Role.admin])
def test_the_json_says_what_the_page_shows(w: World, pages: dict[Role, str], role: Role) -> None:
    stats = _stats(w, role)
    tiles = _tiles(pages[role])
    assert tiles == {
        "tile-records": sum(c["records"] for c in stats["records_by_type_year"]),
        "tile-in-progress": stats["intake_in_progress"],
        "tile-review": _awaiting_review(w, role),
        "tile-findings-overdue": _overdue_findings(w, role),
        "tile-pages-failed": stats["pages_failed"],
        "tile-low-confidence": stats["pages_low_confidence"],
        "tile-jobs-failed": stats["jobs_failed"],
        "tile-under-replicated": stats["records_under_replicated"],
        "tile-damaged": stats["copies_damaged"],
        "tile-no-good-copy": stats["records_by_status"]["damaged"],
        "tile-breakglass-overdue": len(
            w.client.get(
                "/api/v1/breakglass", params={"overdue": "true"}, headers=w.headers(role)
            ).json()
        ),
    }
    per_type: dict[str, int] = {}
    for c in stats["records_by_type_year"]:
        per_type[c["business_type"]] = per_type.get(c["business_type"], 0) + c["records"]
    assert _table(pages[role], "table-types") == per_type
    assert _table(pages[role], "table-status") == {
        name: stats["records_by_status"][status]
        for status, name in (
            ("pending", "pending"),
            ("under_replicated", "one copy missing"),
            ("processing", "processing"),
            ("archived", "archived"),
            ("damaged", "no good copy"),
            ("disposed", "disposed"),
        )
    }
    days = stats["intake_by_day"]
    assert len(days) == 14
    assert sum(d["records"] for d in days) == tiles["tile-records"]  # all entered today
    assert (CONTRACT_TYPE in {c["business_type"] for c in stats["records_by_type_year"]}) is (
        role is Role.director
    )


def test_the_year_by_type_map_links_to_the_records_it_counts(pages: dict[Role, str]) -> None:
    html = pages[Role.director]
    assert 'data-type="学籍变更" data-value="1"><a href="/records?type=' in html
    # Admins may not list records: the figures stay, the links go.
    admin = pages[Role.admin]
    admin = admin[admin.index('<main id="main">') :]
    assert 'href="/records' not in admin
    assert 'href="/queue"' not in admin
    assert 'id="tile-under-replicated"' in admin


def test_tiles_link_to_the_pages_that_list_them(pages: dict[Role, str]) -> None:
    html = pages[Role.auditor]
    assert '<a href="/records?status=under_replicated">' in html
    assert '<a href="/queue">' in html


def test_the_page_keeps_to_the_content_security_policy(pages: dict[Role, str]) -> None:
    for html in pages.values():
        assert "style=" not in html
        assert "<style" not in html
        assert re.search(r"<script(?![^>]*\ssrc=)", html) is None
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert '<link rel="stylesheet" href="/static/dashboard.css">' in html
        assert html.count('role="img"') == 3


def test_every_chart_reads_as_text(pages: dict[Role, str]) -> None:
    html = pages[Role.director]
    for chart in ("chart-types", "chart-status", "chart-days"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
        assert f'<title id="{chart}-title">' in html
    assert '<desc id="chart-types-desc">合同: 1; 学籍变更: 1</desc>' in html


def test_the_page_is_chinese_by_default(w: World) -> None:
    with _signed_in(w, Role.auditor, lang="zh-CN") as client:
        html = client.get("/").text
    assert "各业务类型档案数" in html
    assert "Records per business type" not in html


def test_without_a_session_the_dashboard_leads_to_sign_in(w: World) -> None:
    with TestClient(create_app(w.rt)) as client:
        resp = client.get("/", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login")


def test_stats_need_a_token(w: World) -> None:
    assert w.client.get("/api/v1/stats").status_code == 401


def test_the_scheduled_jobs_card_shows_each_periodic_job(w: World, pages: dict[Role, str]) -> None:
    html = pages[Role.auditor]
    start = html.index('id="table-schedule"')
    card = html[start : html.index("</table>", start)]
    for name in ("fixity", "replication", "retention", "catalog-backup"):
        assert f'data-schedule="{name}"' in card
    assert "Fixity check of the copies" in card
    resp = w.client.get("/api/v1/jobs/schedule", headers=w.headers(Role.auditor))
    assert resp.status_code == 200, resp.text
    by_name = {s["name"]: s for s in resp.json()}
    assert by_name["fixity"]["kind"] == "fixity.cycle"
    assert by_name["fixity"]["next_run_at"]
    assert by_name["fixity"]["outcome"] in {"never", "queued", "running", "done", "dead"}
