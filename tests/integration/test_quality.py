"""The digitization quality gate through the real pipeline (docs/quality.md): corpus scans are
read by the real engine, each page's checks are stored with the figures the scan declares (the
manifest's dpi), and they reach the record detail, ``dangan status --json`` and the queue; a
business type that blocks flags the record for review and audits why."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.schemas import RecordDetailOut
from api.services import Runtime, ingest, initialize
from api.services.records import intake_queue, record_detail
from catalog import (
    NewRecord,
    RecordInfo,
    Role,
    UserInfo,
    Verdict,
    create_user,
    get_user,
    list_events,
    list_pages,
    record_progress,
)
from dangan.config import QualitySettings, Settings
from tests.corpus import CORPUS, scan
from tests.queue import drain

PNG_NAME = "IMG_8032.png"  # 奖励 (a seal type), 200 dpi, scanned in grey
PDF_NAME = "doc_4290.pdf"  # 处分决定, two pages of 300-dpi images
PASSWORD = "correct-horse-battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _manifest(name: str) -> dict[str, object]:
    for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        if doc["file"] == name:
            return dict(doc)
    raise AssertionError(f"{name} is not in the manifest")


def _runtime(settings: Settings) -> Iterator[Runtime]:
    scan(PNG_NAME)
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password=PASSWORD)
    with runtime.db.write() as s:
        create_user(s, name="director1", role=Role.director, password=PASSWORD, actor="test")
    yield runtime
    runtime.close()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    yield from _runtime(settings)


@pytest.fixture
def blocking_rt(settings: Settings) -> Iterator[Runtime]:
    yield from _runtime(
        settings.model_copy(update={"quality": QualitySettings(block_types=["奖励"])})
    )


def _ingest(rt: Runtime, name: str) -> RecordInfo:
    meta = _manifest(name)
    return ingest(
        rt,
        scan(name),
        NewRecord(business_type=str(meta["business_type"]), year=int(str(meta["year"]))),
        actor="system",
    )


def test_the_stored_figures_are_the_scans_own(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    png, pdf = _ingest(rt, PNG_NAME), _ingest(rt, PDF_NAME)
    drain(rt)
    with rt.db.read() as s:
        png_pages, pdf_pages = list_pages(s, png.id), list_pages(s, pdf.id)

    for record_pages, name in ((png_pages, PNG_NAME), (pdf_pages, PDF_NAME)):
        meta = _manifest(name)
        assert len(record_pages) == meta["pages"]
        for page in record_pages:
            checks = {c.name: c for c in page.checks}
            assert list(checks) == ["dpi", "size", "colour", "skew", "blank", "confidence"]
            assert checks["dpi"].value == pytest.approx(float(str(meta["dpi"])), abs=1)
            assert checks["dpi"].verdict is Verdict.passed
            assert (checks["size"].verdict, checks["size"].reading) == (Verdict.passed, "A4")
            assert checks["blank"].verdict is Verdict.passed
            # Both types carry seals, and both scans are grey: flagged, warning only.
            assert (checks["colour"].verdict, checks["colour"].reading) == (Verdict.warn, "grey")
            # The skew is the angle measured before deskewing, as the page keeps it.
            assert checks["skew"].value == pytest.approx(abs(page.skew or 0.0), abs=0.01)
            assert checks["confidence"].value == pytest.approx(page.confidence)

    # Warnings flag nothing and audit nothing.
    with rt.db.read() as s:
        assert list_events(s, action="record.quality_blocked") == []

    # The JSON record detail and the CLI's status carry the checks.
    detail = RecordDetailOut.of(record_detail(rt, png.archive_code, _director(rt)))
    dpi = next(c for c in detail.pages[0].checks if c.name == "dpi")
    assert (dpi.verdict, dpi.threshold) == (Verdict.passed, "≥ 200")
    assert dpi.value == pytest.approx(200, abs=1)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(rt.settings.data_dir), "status", pdf.archive_code, "--json"])
    assert exit_info.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    colour = [next(c for c in p["checks"] if c["name"] == "colour") for p in doc["page_detail"]]
    assert [c["verdict"] for c in colour] == ["warn", "warn"]

    # The intake queue counts the failed checks per record.
    issues = {i.record.archive_code: i.quality_issues for i in intake_queue(rt, _director(rt))}
    assert issues[png.archive_code] >= 1
    assert issues[pdf.archive_code] >= 2

    # The record page shows the table, the queue the badge.
    with TestClient(create_app(rt)) as browser:
        match = _CSRF.search(browser.get("/login").text)
        assert match is not None
        browser.post(
            "/login",
            data={"username": "director1", "password": PASSWORD, "csrf_token": match.group(1)},
        )
        page = browser.get(f"/records/{pdf.archive_code}")
        rows = browser.get("/queue/rows")
    assert page.status_code == 200
    assert page.text.count('class="quality-row"') == 2
    assert 'data-check="colour" data-verdict="warn"' in page.text
    assert 'data-check="dpi" data-verdict="pass"' in page.text
    assert rows.text.count("quality-issues") == 2


def _director(rt: Runtime) -> UserInfo:
    with rt.db.read() as s:
        return get_user(s, "director1")


def test_a_blocking_type_flags_the_record_for_review_and_audits_why(blocking_rt: Runtime) -> None:
    record = _ingest(blocking_rt, PNG_NAME)
    drain(blocking_rt)
    with blocking_rt.db.read() as s:
        progress = record_progress(s, record.id)
        pages = list_pages(s, record.id)
        events = list_events(s, action="record.quality_blocked")
    colour = next(c for c in pages[0].checks if c.name == "colour")
    assert colour.verdict is Verdict.fail
    assert pages[0].needs_review
    assert progress.needs_review
    assert len(events) == 1
    assert events[0].target == f"record:{record.archive_code}"
    assert {"check": "colour", "figure": "grey"} in events[0].detail["checks"]
    # Nothing is deleted: the record still reaches archived.
    assert progress.status.value == "archived"
