"""``dangan change-request`` as an office drives it (issue #7): a clerk files, a director
approves or rejects, with the promised exit codes for the wrong roles, a stale request and a
decided one; the old code keeps finding the renamed record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.corpus import CORPUS, scan
from tests.e2e.cli_archive import Run, fresh_archive

SCAN = CORPUS / "IMG_3214.png"


@pytest.fixture
def run(clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    _run = fresh_archive(tmp_path, capsys)
    pw = tmp_path / "pw"
    for name, role in (("li", "clerk"), ("zhao", "supervisor"), ("wang", "director")):
        assert _run("user", "add", name, "--role", role, "--password-file", str(pw)).code == 0
    return _run


def test_a_clerk_files_and_a_director_decides(run: Run) -> None:
    ingested = run(
        "ingest", str(SCAN), "--type", "学籍变更", "--year", "2023", "--student-name", "万沐"
    )
    assert ingested.code == 0, ingested.err
    code = ingested.out.strip()
    refused = run("change-request", "file", code, "--type", "转学", "--reason", "r", "--as", "root")
    assert refused.code == 5  # an admin files nothing
    nothing = run("change-request", "file", code, "--reason", "r", "--as", "li")
    assert nothing.code == 2
    filed = run(
        "change-request", "file", code, "--type", "转学", "--reason", "misfiled", "--as", "li"
    )
    assert filed.code == 0, filed.err
    first = int(filed.out.split("\t")[0].removeprefix("filed "))
    second = run(
        "change-request", "file", code, "--student-name", "万木", "--reason", "typo",
        "--as", "zhao", "--json",
    )  # fmt: skip
    assert second.code == 0, second.err
    later = json.loads(second.out)
    assert later["changes"] == {"student_name": "万木"}

    listed = run("change-request", "list", "--as", "wang", "--json")
    assert [r["id"] for r in json.loads(listed.out)] == [first, later["id"]]
    mine = run("change-request", "list", "--as", "li")
    assert mine.out.count("\n") == 1
    assert run("change-request", "approve", str(first), "--reason", "ok", "--as", "zhao").code == 5

    approved = run(
        "change-request", "approve", str(first), "--reason", "checked", "--as", "wang", "--json"
    )
    assert approved.code == 0, approved.err
    doc = json.loads(approved.out)
    assert doc["former_code"] == code
    assert doc["archive_code"] == "2023-转学-001"
    assert doc["after"] == {"business_type": "转学", "archive_code": "2023-转学-001"}
    # The old code still finds the record.
    status = run("status", code, "--json")
    assert status.code == 0, status.err
    assert json.loads(status.out)["archive_code"] == "2023-转学-001"
    # Decided once only; the other request asked about the record as it was before: stale.
    again = run("change-request", "approve", str(first), "--reason", "x", "--as", "wang")
    assert again.code == 6
    assert "approved, not open" in again.err
    stale = run("change-request", "approve", str(later["id"]), "--reason", "ok", "--as", "wang")
    assert stale.code == 6
    assert "stale" in stale.err
    year = run("change-request", "file", code, "--year", "2022", "--reason", "r", "--as", "li")
    name = run("change-request", "file", code, "--student-no", "S9", "--reason", "r", "--as", "li")
    no = run("change-request", "file", code, "--year", "2021", "--reason", "r", "--as", "li")
    ids = [int(r.out.split("\t")[0].removeprefix("filed ")) for r in (year, name, no)]
    rejected = run("change-request", "reject", str(ids[2]), "--reason", "no", "--as", "wang")
    assert rejected.code == 0, rejected.err
    assert run("change-request", "approve", str(ids[0]), "--reason", "y", "--as", "wang").code == 0
    # Filed before the year changed: the record it asked about is no more.
    stale = run("change-request", "approve", str(ids[1]), "--reason", "y", "--as", "wang")
    assert stale.code == 6
    assert "stale" in stale.err
    every = json.loads(run("change-request", "list", "--all", "--as", "wang", "--json").out)
    assert [r["state"] for r in every] == ["approved", "stale", "approved", "stale", "rejected"]
    assert every[2]["result_code"] == "2022-转学-001"
    assert json.loads(run("status", "2023-转学-001", "--json").out)["archive_code"] == (
        "2022-转学-001"
    )
