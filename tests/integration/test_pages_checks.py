"""The four-property check page over HTTP: the form, a run shown on the page, the report as a
file, the saved reports of scheduled runs, and who may use it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.services.fourprop import Selection, reports_dir, run_check, save_report
from catalog import Role
from tests.integration.api_world import World, sign_in_browser, world

_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("pages-checks")) as the_world:
        yield the_world


def _form(client: TestClient) -> str:
    page = client.get("/checks")
    assert page.status_code == 200, page.text
    found = _CSRF_INPUT.search(page.text)
    assert found is not None
    return found.group(1)


def test_the_auditor_runs_a_check_and_reads_it_on_the_page(w: World) -> None:
    auditor = sign_in_browser(w, Role.auditor)
    token = _form(auditor)
    page = auditor.post(
        "/checks", data={"csrf_token": token, "codes": f"{w.internal}, {w.contract}"}
    )
    assert page.status_code == 200, page.text
    assert f'data-code="{w.internal}"' in page.text
    # The hidden contract is reported as not found, like a code that does not exist.
    assert f'data-code="{w.contract}"' not in page.text
    assert "Not found" in page.text
    # The world's records lack a title and paper location: integrity fails, and says why.
    assert "required metadata complete: empty: title, paper_location" in page.text
    csv = auditor.post(
        "/checks", data={"csrf_token": token, "codes": w.internal, "format": "csv", "quick": "1"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert w.internal in csv.content.decode("utf-8-sig")
    pdf = auditor.post("/checks", data={"csrf_token": token, "codes": w.internal, "format": "pdf"})
    assert pdf.content.startswith(b"%PDF-")


def test_a_run_without_the_csrf_token_is_refused(w: World) -> None:
    director = sign_in_browser(w, Role.director)
    refused = director.post("/checks", data={"codes": w.internal})
    assert refused.status_code == 403


def test_clerks_get_the_403_page_and_no_nav_link(w: World) -> None:
    clerk = sign_in_browser(w, Role.clerk)
    assert clerk.get("/checks").status_code == 403
    assert 'href="/checks"' not in clerk.get("/records").text
    assert 'href="/checks"' in sign_in_browser(w, Role.supervisor).get("/records").text


def test_saved_reports_are_listed_and_served_by_name_only(w: World) -> None:
    report = run_check(w.rt, Selection(), user=None, deep=False, occasion="schedule")
    saved = save_report(w.rt, report)
    director = sign_in_browser(w, Role.director, lang="zh-CN")
    page = director.get("/checks")
    assert "定期检测" in page.text
    stem = saved.name.removesuffix(".json")
    assert f"/checks/reports/{stem}.html" in page.text
    got = director.get(f"/checks/reports/{stem}.csv")
    assert got.status_code == 200
    assert w.contract in got.content.decode("utf-8-sig")
    assert director.get("/checks/reports/..%2Fkeyring").status_code == 404
    assert director.get("/checks/reports/check-1.json").status_code == 404
    assert sign_in_browser(w, Role.clerk).get(f"/checks/reports/{stem}.csv").status_code == 403
    # It covers the contract: an auditor neither sees it listed nor gets it by name.
    auditor = sign_in_browser(w, Role.auditor)
    assert stem not in auditor.get("/checks").text
    assert auditor.get(f"/checks/reports/{stem}.csv").status_code == 404
    assert reports_dir(w.rt).stat().st_mode & 0o077 == 0
