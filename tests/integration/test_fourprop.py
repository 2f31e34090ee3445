"""The four-property check (四性检测) on a real archive: a clean record passes every rule, and
each rule fails when what it guards is broken behind dangan's back (docs/standards.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.services.fourprop import (
    CHECK_ARCHIVE,
    CheckReport,
    Outcome,
    Property,
    Selection,
    explain_code_gap,
    reports_dir,
    run_check,
)
from api.services.fourprop_report import CSV_COLUMNS, report_csv, report_html, report_pdf
from api.services.jobs import rewrite_sidecar
from api.services.records import update_record
from api.services.schedule import declared_schedules, states
from catalog import (
    NewRecord,
    ObjectRole,
    Role,
    UserInfo,
    create_record,
    get_record,
    get_user,
    list_events,
    objects_of_record,
    tick_schedules,
    update_record_fields,
)
from dangan.errors import ConflictError, InvalidInputError, PermissionDeniedError
from tests.integration.api_world import World, run_queue, user_name, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        _complete(w)
        yield w


def _user(w: World, role: Role) -> UserInfo:
    with w.rt.db.read() as session:
        return get_user(session, user_name(role))


def _complete(w: World) -> None:
    """Fill in what the office requires of every record, the audited way."""
    director = _user(w, Role.director)
    update_record(w.rt, w.internal, director, {"title": "学籍变更申请", "paper_location": "A-1-01"})
    # The student number is a key field: changed as a director's approved change would.
    with w.rt.db.write() as session:
        update_record_fields(session, w.internal, {"student_no": "2023001"}, actor="director1")
        record_id = get_record(session, w.internal).id
    assert w.rt.vault.keyring is not None
    rewrite_sidecar(w.rt, record_id, w.rt.vault.keyring, actor="director1")
    update_record(w.rt, w.contract, director, {"title": "合同", "paper_location": "B-2-02"})
    run_queue(w.rt)


def _check(w: World, *codes: str, role: Role = Role.director, deep: bool = True) -> CheckReport:
    return run_check(w.rt, Selection(tuple(codes)), user=_user(w, role), deep=deep)


def _items(report: CheckReport, code: str) -> dict[str, Outcome]:
    (record,) = [r for r in report.records if r.archive_code == code]
    return {i.rule: i.outcome for i in record.items}


def _detail(report: CheckReport, code: str, rule: str) -> str:
    (record,) = [r for r in report.records if r.archive_code == code]
    return next(i.detail for i in record.items if i.rule == rule)


def _archive(report: CheckReport) -> dict[str, Outcome]:
    return {i.rule: i.outcome for i in report.archive}


def _sql(w: World, statement: str, **params: object) -> None:
    with w.rt.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_a_clean_archive_passes_every_rule(w: World) -> None:
    report = _check(w, w.internal, w.contract)
    assert [r.archive_code for r in report.records] == sorted([w.internal, w.contract])
    for code in (w.internal, w.contract):
        items = _items(report, code)
        # Every rule ran, deep: nothing skipped, nothing failed. U5 may warn (the scan's quality).
        assert set(items) == {
            "A1",
            "A2",
            "A3",
            "A4",
            "I1",
            "I2",
            "I3",
            "U1",
            "U2",
            "U3",
            "U4",
            "U5",
            "S1",
            "S2",
        }
        assert {k: v for k, v in items.items() if k != "U5"} == dict.fromkeys(
            set(items) - {"U5"}, Outcome.passed
        ), items
        assert items["U5"] in (Outcome.passed, Outcome.warn)
    assert set(_archive(report).values()) == {Outcome.passed}
    assert "A0" in _archive(report)
    assert "I4" in _archive(report)
    # Every record's check and the run itself are in the audit trail.
    with w.rt.db.read() as session:
        runs = list_events(session, action="check.run")
        per_record = list_events(session, action="check.record")
    assert runs[-1].detail["records"] == 2
    assert {e.target for e in per_record[-2:]} == {f"record:{w.internal}", f"record:{w.contract}"}


def test_a_field_changed_in_the_database_alone_fails_authenticity(w: World) -> None:
    _sql(w, "UPDATE records SET title = 'forged' WHERE archive_code = :c", c=w.internal)
    report = _check(w, w.internal)
    items = _items(report, w.internal)
    assert items["A3"] is Outcome.fail
    assert "title" in _detail(report, w.internal, "A3")
    assert items["A4"] is Outcome.fail  # the last audited change left another title
    assert report.records[0].by_property()[Property.authenticity] is Outcome.fail
    assert "forged" not in report_csv(report)  # the report never carries record text


def test_a_corrupt_copy_fails_and_is_marked_for_repair(w: World) -> None:
    with w.rt.db.read() as session:
        record = get_record(session, w.internal)
        (original,) = [
            o for o in objects_of_record(session, record.id) if o.role is ObjectRole.original
        ]
    path = w.rt.vault.stores["replica"].path_of(original.id)  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = _check(w, w.internal, deep=False)
    assert _items(report, w.internal)["A1"] is Outcome.fail
    assert "replica" in _detail(report, w.internal, "A1")
    with w.rt.db.read() as session:
        copy = next(
            c
            for o in objects_of_record(session, record.id)
            if o.id == original.id
            for c in o.copies
            if c.store == "replica"
        )
    assert copy.state.value == "bad"
    run_queue(w.rt)  # the repair it queued restores the copy from the primary
    assert _items(_check(w, w.internal), w.internal)["A1"] is Outcome.passed


def test_missing_pages_and_fields_fail_integrity(w: World) -> None:
    _sql(
        w,
        "UPDATE records SET page_count = 3, paper_location = NULL WHERE archive_code = :c",
        c=w.internal,
    )
    report = _check(w, w.internal)
    items = _items(report, w.internal)
    assert items["I1"] is Outcome.fail
    assert "1 of 3" in _detail(report, w.internal, "I1")
    assert items["I2"] is Outcome.fail
    assert "paper_location" in _detail(report, w.internal, "I2")
    assert items["U2"] is Outcome.fail  # the file has 1 page, 3 declared


def test_a_serial_gap_fails_integrity_of_the_archive(w: World) -> None:
    _sql(
        w,
        "UPDATE code_counters SET last_serial = 3 WHERE business_type_id = "
        "(SELECT id FROM business_types WHERE name = '学籍变更')",
    )
    report = _check(w, w.internal)
    assert _archive(report)["I4"] is Outcome.fail
    detail = next(i.detail for i in report.archive if i.rule == "I4")
    assert "2023-学籍变更: 002, 003" in detail
    # A director explains a gap (a lost paper); a clerk may not; a held code is no gap.
    director = _user(w, Role.director)
    with pytest.raises(PermissionDeniedError):
        explain_code_gap(w.rt, "2023-学籍变更-002", "lost", _user(w, Role.clerk))
    with pytest.raises(ConflictError):
        explain_code_gap(w.rt, w.internal, "held", director)
    explain_code_gap(w.rt, "2023-学籍变更-002", "the paper was lost in 2023", director)
    detail = next(i.detail for i in _check(w, w.internal).archive if i.rule == "I4")
    assert detail == "2023-学籍变更: 003"
    explain_code_gap(w.rt, "2023-学籍变更-003", "never used", director)
    assert _archive(_check(w, w.internal))["I4"] is Outcome.passed
    with w.rt.db.read() as session:
        (event, _) = list_events(session, action="code.gap_explained")
    assert (event.actor, event.target) == ("director1", "code:2023-学籍变更-002")


def test_gaps_below_a_legacy_code_are_the_old_registers_and_only_warn(w: World) -> None:
    with w.rt.db.write() as session:
        create_record(
            session,
            NewRecord(business_type="学籍变更", year=2023, archive_code="2023-学籍变更-005"),
            actor="test",
        )
    i4 = next(i for i in _check(w, w.internal, deep=False).archive if i.rule == "I4")
    assert i4.outcome is Outcome.warn
    assert i4.detail == "legacy numbering: 2023-学籍变更: 002, 003, 004"


def test_pages_never_measured_are_not_checked_for_quality(w: World) -> None:
    _sql(w, "DELETE FROM page_checks")
    report = _check(w, w.internal, deep=False)
    assert _items(report, w.internal)["U5"] is Outcome.skipped
    assert _detail(report, w.internal, "U5") == "pages not measured"


def test_a_contract_filed_lower_fails_security(w: World) -> None:
    _sql(w, "UPDATE records SET security_class = 'internal' WHERE archive_code = :c", c=w.contract)
    report = _check(w, w.contract)
    items = _items(report, w.contract)
    assert items["S2"] is Outcome.fail
    assert "合同" in _detail(report, w.contract, "S2")
    assert items["A3"] is Outcome.fail  # the sidecar still says contract


def test_keyring_mode_and_left_over_plaintext_fail_security(w: World) -> None:
    keyring = w.rt.settings.vault.keyring_path
    assert keyring is not None
    keyring.chmod(0o644)
    stale = Path(tempfile.mkdtemp(prefix="dangan-intake-"))
    try:
        old = time.time() - 2 * 3600
        os.utime(stale, (old, old))
        archive = _archive(_check(w, w.internal, deep=False))
        assert archive["S3"] is Outcome.fail
        assert archive["S4"] is Outcome.fail
    finally:
        stale.rmdir()
        keyring.chmod(0o600)
    archive = _archive(_check(w, w.internal, deep=False))
    assert archive["S3"] is Outcome.passed
    assert archive["S4"] is Outcome.passed


def test_the_policy_decides_who_checks_what(w: World) -> None:
    with pytest.raises(PermissionDeniedError):
        _check(w, w.internal, role=Role.clerk)
    auditor = _check(w, w.internal, w.contract, role=Role.auditor, deep=False)
    # A hidden contract is reported as not found, exactly like a code that does not exist.
    assert [r.archive_code for r in auditor.records] == [w.internal]
    assert auditor.not_found == [w.contract]
    # The contract's code series is no part of the auditor's report, not even as a count.
    i4 = next(i for i in auditor.archive if i.rule == "I4")
    assert i4.detail == "1 codes in 1 series"
    director = _check(w, w.internal, deep=False)
    assert next(i for i in director.archive if i.rule == "I4").detail == "2 codes in 2 series"
    missing = _check(w, "2023-合同-999", role=Role.auditor, deep=False)
    assert missing.not_found == ["2023-合同-999"]
    batch = run_check(w.rt, Selection(business_type="合同"), user=_user(w, Role.director))
    assert [r.archive_code for r in batch.records] == [w.contract]
    with pytest.raises(InvalidInputError, match="more than 1 records"):
        run_check(w.rt, Selection(), user=_user(w, Role.director), limit=1)


def test_reports_in_csv_html_and_pdf(w: World) -> None:
    report = _check(w, w.internal, w.contract)
    rows = report_csv(report).splitlines()
    assert rows[0] == ",".join(CSV_COLUMNS)
    assert len(rows) == 1 + len(report.archive) + sum(len(r.items) for r in report.records)
    html = report_html(report)
    assert "四性检测报告" in html
    assert w.internal in html
    assert "<script" not in html
    pdf = report_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 2000


def test_the_api_runs_a_check_and_hands_out_the_report(w: World) -> None:
    h = w.headers(Role.auditor)
    body = w.client.post("/api/v1/checks", json={"codes": [w.internal, w.contract]}, headers=h)
    assert body.status_code == 200, body.text
    data = body.json()
    assert [r["archive_code"] for r in data["records"]] == [w.internal]
    assert data["not_found"] == [w.contract]
    assert data["records"][0]["properties"]["authenticity"] == "pass"
    csv = w.client.post(
        "/api/v1/checks", params={"format": "csv"}, json={"codes": [w.internal]}, headers=h
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert w.internal in csv.content.decode("utf-8-sig")
    refused = w.client.post("/api/v1/checks", json={}, headers=w.headers(Role.clerk))
    assert refused.status_code == 403


def test_intake_checks_each_record_and_the_schedule_checks_the_archive(w: World) -> None:
    with w.rt.db.read() as session:
        at_intake = [
            e
            for e in list_events(session, action="check.record", target=f"record:{w.internal}")
            if e.detail["occasion"] == "intake"
        ]
    # Intake checked the record deep once it was archived (before its fields were completed).
    assert len(at_intake) == 1
    assert at_intake[0].detail["deep"] is True
    assert at_intake[0].actor.startswith("worker")

    (spec,) = [s for s in declared_schedules(w.rt.settings) if s.kind == CHECK_ARCHIVE]
    assert spec.interval.days == w.rt.settings.check.interval_days
    # The scheduler queues it when due (only this schedule is runnable here).
    assert [j.kind for j in tick_schedules(w.rt.db, [spec], runnable={CHECK_ARCHIVE})] == [
        CHECK_ARCHIVE
    ]
    run_queue(w.rt)
    reports = sorted(reports_dir(w.rt).iterdir())
    assert [p.suffix for p in reports] == [".csv", ".html", ".json"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in reports)
    saved = json.loads(reports[-1].read_text(encoding="utf-8"))
    assert saved["occasion"] == "schedule"
    assert saved["deep"] is False
    assert {r["archive_code"] for r in saved["records"]} == {w.internal, w.contract}
    (state,) = [s for s in states(w.rt) if s.kind == CHECK_ARCHIVE]
    assert state.summary is not None
    assert state.summary["pass"] + state.summary["warn"] == 2


def test_the_command_line_prints_the_report_and_exits_by_its_outcome(
    w: World, tmp_path: Path
) -> None:
    dangan = str(Path(sys.executable).with_name("dangan"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    base = [dangan, "--data-dir", str(w.rt.settings.data_dir)]
    ok = subprocess.run(
        [*base, "check", w.internal, "--as", "auditor1", "--format", "csv"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr  # completed by the fixture: nothing fails
    assert ok.stdout.lstrip("\ufeff").startswith(",".join(CSV_COLUMNS))
    _sql(w, "UPDATE records SET paper_location = NULL WHERE archive_code = :c", c=w.internal)
    pdf = tmp_path / "report.pdf"
    failed = subprocess.run(
        [*base, "check", "--batch", "--years", "2023", "--format", "pdf", "--out", str(pdf)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert failed.returncode == 1, failed.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")
    usage = subprocess.run([*base, "check"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2
    assert "archive codes, or --batch" in usage.stderr
