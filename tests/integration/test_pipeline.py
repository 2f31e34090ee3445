"""The intake pipeline end to end with the real engines: a scan goes in, its pages are read,
its OCR text and access copy land in both stores, it is indexed, and it is ``archived``.

A page that keeps failing is marked, not lost; a job run twice changes nothing; killing the
worker mid-pipeline and starting it again brings every record to ``archived`` once.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.orm import Session

from api.cli import cli, main
from api.services import Runtime, ingest, initialize, pipeline
from api.services.pipeline import OCR_PAGE, read_ocr_text
from api.services.search import rebuild_index, search_records
from api.services.worker import run_workers
from catalog import (
    JobState,
    NewRecord,
    ObjectRole,
    PageState,
    RecordStatus,
    Role,
    Stage,
    create_user,
    get_record,
    get_user,
    list_events,
    list_jobs,
    list_pages,
    objects_of_record,
    record_progress,
)
from catalog.models import Job, utcnow
from dangan.config import Settings
from tests.corpus import CORPUS, scan
from tests.queue import drain
from tests.services import wait_for
from vault import WrappedKey

PNG = CORPUS / "IMG_3214.png"  # one page
PDF_NAME = "doc_4290.pdf"  # two pages, the second turned 270°
PASSWORD = "correct-horse-battery"
# What a processed record keeps: the per-page results are folded into the OCR text.
LIVE_ROLES = (ObjectRole.original, ObjectRole.ocr_text, ObjectRole.access_copy, ObjectRole.sidecar)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan(PNG.name)
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password=PASSWORD)
    with runtime.db.write() as s:
        create_user(s, name="auditor1", role=Role.auditor, password=PASSWORD, actor="test")
        create_user(s, name="director1", role=Role.director, password=PASSWORD, actor="test")
    yield runtime
    runtime.close()


def _drain(rt: Runtime) -> int:
    return drain(rt)


def _manifest(name: str) -> dict[str, object]:
    for line in (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        if doc["file"] == name:
            return doc
    raise AssertionError(f"{name} is not in the manifest")


def test_a_scan_is_read_stored_indexed_and_archived(rt: Runtime) -> None:
    meta = _manifest(PNG.name)
    record = ingest(
        rt,
        PNG,
        NewRecord(
            business_type=str(meta["business_type"]),
            year=int(str(meta["year"])),
            student_name=str(meta["student_name"]),
        ),
        actor="system",
    )
    assert record.status is RecordStatus.processing
    _drain(rt)
    with rt.db.read() as s:
        progress = record_progress(s, record.id)
        objects = objects_of_record(s, record.id)
        pages = list_pages(s, record.id)
    assert progress.status is RecordStatus.archived
    assert progress.stage is Stage.done
    assert (progress.pages, progress.pages_done, progress.pages_failed) == (1, 1, 0)
    assert pages[0].engine in {"tesseract", "rapidocr"}
    live = {o.role for o in objects if not o.is_shredded}
    assert live == {
        ObjectRole.original,
        ObjectRole.ocr_text,
        ObjectRole.access_copy,
        ObjectRole.sidecar,
    }
    for obj in objects:
        if not obj.is_shredded:
            assert {c.store for c in obj.copies if c.state.value == "ok"} == {"primary", "replica"}

    text = read_ocr_text(rt, record.id, actor="test")
    assert len(text) == 1
    assert text[0] is not None
    truth = str(meta["text"][0]).split("\n")[1]  # type: ignore[index]
    assert truth.replace(" ", "")[:6] in text[0].text.replace(" ", "")

    # OCR text is never on disk in the clear: not in the stores, the catalog or the index.
    needle = truth.replace(" ", "")[:6].encode("utf-8")
    for path in rt.settings.data_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path

    # The access copy is a PDF whose invisible text layer holds the words.
    access = next(o for o in objects if o.role is ObjectRole.access_copy)
    reader = rt.vault.read(
        access.id, _wrapped(access.wrapped_key), plaintext_sha256=access.plaintext_sha256
    )
    with reader:
        pdf = pdfium.PdfDocument(io.BytesIO(b"".join(reader)))
    assert len(pdf) == 1
    layer = pdf[0].get_textpage().get_text_range().replace(" ", "").replace("\r\n", "")
    assert truth.replace(" ", "")[:4] in layer

    with rt.db.read() as s:
        auditor = get_user(s, "auditor1")
    found = search_records(rt, str(meta["student_name"]), user=auditor)
    assert [h.record.archive_code for h in found.hits] == [record.archive_code]


def _wrapped(raw: bytes | None) -> WrappedKey:
    assert raw is not None
    return WrappedKey.from_bytes(raw)


def test_a_multi_page_pdf_with_a_turned_page_is_read_the_right_way_up(rt: Runtime) -> None:
    path = scan(PDF_NAME)
    meta = _manifest(PDF_NAME)
    record = ingest(
        rt,
        path,
        NewRecord(business_type=str(meta["business_type"]), year=int(str(meta["year"]))),
        actor="system",
    )
    _drain(rt)
    with rt.db.read() as s:
        pages = list_pages(s, record.id)
        assert get_record(s, record.archive_code).status is RecordStatus.archived
    assert [p.state for p in pages] == [PageState.done, PageState.done]
    assert pages[1].rotation in {90, 270}
    text = read_ocr_text(rt, record.id, actor="test")
    second = str(meta["text"][1]).replace(" ", "")  # type: ignore[index]
    assert text[1] is not None
    assert second[:8] in text[1].text.replace(" ", "")


def test_running_a_step_twice_changes_nothing(rt: Runtime) -> None:
    record = ingest(rt, PNG, NewRecord(business_type="新生入学", year=2023), actor="system")
    _drain(rt)
    with rt.db.write() as s:
        # The same page job again (as after a lost lease): nothing new is stored.
        rt.enqueue(
            s, OCR_PAGE, {"archive_code": record.archive_code, "page": 1}, key="again", actor="t"
        )
    before = _object_ids(rt, record.id)
    assert _drain(rt) == 1
    assert _object_ids(rt, record.id) == before
    with rt.db.read() as s:
        processed = [e for e in list_events(s, limit=10_000, action="record.processed")]
    assert len(processed) == 1


def _object_ids(rt: Runtime, record_id: int) -> set[str]:
    with rt.db.read() as s:
        return {o.id for o in objects_of_record(s, record_id)}


def test_a_page_that_keeps_failing_is_marked_and_the_record_still_finishes(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(pipeline, "read_page", broken)  # a fault real files cannot produce
    record = ingest(rt, PNG, NewRecord(business_type="新生入学", year=2023), actor="system")
    # Retries wait out a backoff; run the jobs as they come due.
    for _ in range(rt.settings.worker.max_attempts + 3):
        _drain(rt)
        with rt.db.write() as s:
            for job in list_jobs(s, state=JobState.queued):
                _due_now(s, job.id)
    with rt.db.read() as s:
        progress = record_progress(s, record.id)
        pages = list_pages(s, record.id)
    assert pages[0].state is PageState.failed
    assert pages[0].error == "RuntimeError"
    assert progress.needs_review
    assert progress.stage is Stage.done
    assert progress.status is RecordStatus.archived
    result = CliRunner().invoke(
        cli, ["--data-dir", str(rt.settings.data_dir), "status", record.archive_code]
    )
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.output
    assert "needs review" in result.output


def _due_now(session: Session, job_id: int) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(run_after=utcnow()))


def test_the_index_is_rebuilt_from_the_vault(rt: Runtime) -> None:
    meta = _manifest(PNG.name)
    record = ingest(
        rt,
        PNG,
        NewRecord(business_type="新生入学", year=2023, student_name=str(meta["student_name"])),
        actor="system",
    )
    _drain(rt)
    rt.index.delete([record.id])
    with rt.db.read() as s:
        director = get_user(s, "director1")
    assert search_records(rt, str(meta["student_name"]), user=director).total == 0
    assert rebuild_index(rt, actor="test") == 1
    assert search_records(rt, str(meta["student_name"]), user=director).total == 1


DANGAN = Path(sys.executable).parent / "dangan"


def test_killing_the_worker_mid_pipeline_loses_nothing_and_repeats_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    pdf = scan(PDF_NAME)
    codes = [
        ingest(rt, f, NewRecord(business_type="会议纪要", year=2020), actor="system").archive_code
        for f in (PNG, pdf)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    env |= {
        "DANGAN_DATA_DIR": str(rt.settings.data_dir),
        "DANGAN_WORKER__LEASE_SECONDS": "5",
        "DANGAN_WORKER__POLL_SECONDS": "0.2",
    }

    def started_pages() -> None:
        with rt.db.read() as s:
            if not any(
                j.kind == OCR_PAGE and j.state is JobState.running for j in list_jobs(s, limit=1000)
            ):
                raise OSError("no page being read yet")

    first = subprocess.Popen(
        [str(DANGAN), "worker", "--processes", "1"], env=env, start_new_session=True
    )
    try:
        wait_for(started_pages, timeout=120, what="a page job running")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    second = subprocess.Popen(
        [str(DANGAN), "worker", "--processes", "1"], env=env, start_new_session=True
    )

    def all_archived() -> None:
        with rt.db.read() as s:
            if any(get_record(s, c).status is not RecordStatus.archived for c in codes):
                raise OSError("not archived yet")

    try:
        wait_for(all_archived, timeout=240, what="every record archived")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
            raise
    with rt.db.read() as s:
        events = list_events(s, limit=10_000)
        for code in codes:
            record = get_record(s, code)
            live = [o.role for o in objects_of_record(s, record.id) if not o.is_shredded]
            assert sorted(live) == sorted(
                [
                    ObjectRole.original,
                    ObjectRole.ocr_text,
                    ObjectRole.access_copy,
                    ObjectRole.sidecar,
                ]
            )
    processed = [e.target for e in events if e.action == "record.processed"]
    assert sorted(processed) == sorted(f"record:{c}" for c in codes)


def _dangan(capsys: pytest.CaptureFixture[str], rt: Runtime, *args: str) -> tuple[int, str]:
    """Run the CLI as a script does (errors mapped to exit codes): stdout, or stderr on error."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(rt.settings.data_dir), *args])
    out, err = capsys.readouterr()
    code = int(exit_info.value.code or 0)
    return code, out if code == 0 else err


def test_the_cli_finds_reads_and_hides_as_the_policy_says(
    rt: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _manifest(PNG.name)
    name = str(meta["student_name"])
    internal = ingest(
        rt, PNG, NewRecord(business_type="新生入学", year=2023, student_name=name), actor="system"
    )
    contract = ingest(
        rt,
        PNG,
        NewRecord(business_type="合同", year=2023, student_name=name),
        actor="system",
        force=True,
    )
    _drain(rt)

    code, out = _dangan(capsys, rt, "search", name, "--as", "director1", "--json")
    assert code == 0, out
    seen = json.loads(out)
    assert {h["archive_code"] for h in seen["hits"]} == {
        internal.archive_code,
        contract.archive_code,
    }
    assert any(sn["highlights"] for h in seen["hits"] for sn in h["snippets"])

    code, out = _dangan(capsys, rt, "search", name, "--as", "auditor1", "--json")
    assert code == 0, out
    seen = json.loads(out)
    assert [h["archive_code"] for h in seen["hits"]] == [internal.archive_code]
    assert seen["total"] == 1
    assert {f["value"] for f in seen["facets"]["business_type"]} == {"新生入学"}
    assert "合同" not in out

    code, out = _dangan(capsys, rt, "search", name, "--as", "auditor1", "--type", "合同")
    assert code == 0, out
    assert out.startswith("0 records")

    pdf_out = tmp_path / "access.pdf"
    code, out = _dangan(
        capsys, rt, "get", internal.archive_code, "--access-copy", "-o", str(pdf_out)
    )
    assert code == 0, out
    assert pdf_out.read_bytes().startswith(b"%PDF-")
    text_out = tmp_path / "text.json"
    code, out = _dangan(capsys, rt, "get", internal.archive_code, "--ocr-text", "-o", str(text_out))
    assert code == 0, out
    assert json.loads(text_out.read_text(encoding="utf-8"))["pages"][0]["text"]

    # A contract's access copy is no more there for an auditor than a missing record.
    code, hidden = _dangan(
        capsys,
        rt,
        "get",
        contract.archive_code,
        "--access-copy",
        "-o",
        str(pdf_out),
        "--as",
        "auditor1",
    )
    code_missing, missing = _dangan(
        capsys, rt, "get", "2023-合同-999", "--access-copy", "-o", str(pdf_out), "--as", "auditor1"
    )
    assert code == code_missing == 4
    assert hidden == missing

    code, out = _dangan(capsys, rt, "status", internal.archive_code, "--json")
    assert code == 0, out
    status = json.loads(out)
    assert (status["status"], status["stage"], status["pages_done"]) == ("archived", "done", 1)


def test_pages_read_by_two_worker_processes_at_once_finish_their_record(
    runtime_each_backend: Runtime,
) -> None:
    """The last two pages of a record finishing together in two processes must still queue
    its assembly (the record row is locked while a page counts what is left)."""
    rt = runtime_each_backend
    tiff = scan("scan_2387.tif")  # two pages
    codes = [
        ingest(rt, f, NewRecord(business_type="转学", year=2019), actor="system").archive_code
        for f in (tiff, PNG)
    ]
    for _ in range(6):
        run_workers(rt, 2, threading.Event(), once=True)
        with rt.db.read() as s:
            if all(get_record(s, c).status is RecordStatus.archived for c in codes):
                break
    with rt.db.read() as s:
        assert [get_record(s, c).status for c in codes] == [RecordStatus.archived] * 2
        assert not list_jobs(s, state=JobState.dead)
        processed = list_events(s, action="record.processed", limit=100)
    assert sorted(e.target for e in processed) == sorted(f"record:{c}" for c in codes)
