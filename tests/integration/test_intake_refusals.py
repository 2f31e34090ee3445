"""Intake on the embedded default (SQLite, two fs stores) with the hostile files of ``bad/``:
every refusal says why and leaves no record, object, copy, job or temporary file; every
acceptance records what intake learned and queues the pipeline; duplicates are refused."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.services import Runtime, ingest, initialize
from api.services.pipeline import OCR_RASTERIZE
from catalog import (
    JobState,
    NewRecord,
    SecurityClass,
    create_user,
    get_record,
    list_jobs,
    mark_content_destroyed,
)
from dangan.config import Settings
from dangan.errors import ConflictError, InvalidInputError, StoreUnavailableError
from tests.corpus import CORPUS, scan

BAD = CORPUS / "bad"
TYPE = "新生入学"
PASSWORD = "correct-horse-battery"
TABLES = ("records", "vault_objects", "stored_copies", "jobs")


def _manifest() -> list[dict[str, str]]:
    path = BAD / "manifest.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


REJECTS = [d for d in _manifest() if d["expect"] == "reject"]
ACCEPTS = [d for d in _manifest() if d["expect"] == "accept"]

# What each refusal must say (a part of the message).
REASONS = {
    "empty.pdf": "empty file",
    "truncated.jpg": "truncated",
    "bomb.png": "too many pixels",
    "elf.pdf": "executable",
    "script.pdf": "a script",
    "page.png": "web page",
    "broken.pdf": "broken PDF",
    "encrypted.pdf": "password-protected PDF cannot be read",
    "many_pages.tif": "over the limit of 200",
    "zipbomb.tif": "ZIP archive",
    "image.gif": "GIF",
}


@pytest.fixture
def temp_area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where intake's private temporary directory goes, to see that it goes away."""
    area = tmp_path / "tmp"
    area.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(area))
    return area


@pytest.fixture
def rt(settings: Settings, temp_area: Path) -> Iterator[Runtime]:
    scan()  # skips locally, fails in CI, when the corpus is missing
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password=PASSWORD)
    yield runtime
    runtime.close()


def _state(rt: Runtime, temp_area: Path) -> dict[str, Any]:
    """Everything an upload could leave behind."""
    con = sqlite3.connect(rt.settings.data_dir / "catalog.sqlite")
    try:
        rows = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}  # noqa: S608 - fixed names
    finally:
        con.close()
    stores = {
        name: sorted(str(p) for p in root.rglob("*") if p.is_file())
        for name, root in (
            ("primary", rt.settings.vault.primary.path),
            ("replica", rt.settings.vault.replica.path),
        )
        if root is not None
    }
    return {"rows": rows, "stores": stores, "temp": sorted(temp_area.iterdir())}


def _new(**fields: Any) -> NewRecord:
    return NewRecord(business_type=TYPE, year=2023, **fields)


@pytest.mark.parametrize("entry", REJECTS, ids=[d["file"] for d in REJECTS])
def test_a_refused_upload_says_why_and_leaves_nothing(
    rt: Runtime, temp_area: Path, entry: dict[str, str]
) -> None:
    ingest(rt, scan(), _new(), actor="system")  # something there already, to stay unchanged
    before = _state(rt, temp_area)
    assert before["temp"] == []
    with pytest.raises(InvalidInputError) as info:
        ingest(rt, BAD / entry["file"], _new(), actor="system", upload_name=entry["upload_name"])
    assert REASONS[entry["file"]] in info.value.message
    assert entry["upload_name"] not in info.value.message
    assert _state(rt, temp_area) == before


def test_a_refused_stream_leaves_nothing_either(rt: Runtime, temp_area: Path) -> None:
    before = _state(rt, temp_area)
    with (BAD / "truncated.jpg").open("rb") as stream, pytest.raises(InvalidInputError):
        ingest(rt, stream, _new(), actor="system", upload_name="scan_0099.jpg")
    assert _state(rt, temp_area) == before


def test_an_upload_over_the_byte_limit_is_refused(
    settings: Settings, temp_area: Path, rt: Runtime
) -> None:
    settings.intake.max_bytes = 1000
    before = _state(rt, temp_area)
    with pytest.raises(InvalidInputError, match="over the limit of 1,000 bytes"):
        ingest(rt, BAD / "polyglot.jpg", _new(), actor="system")
    assert _state(rt, temp_area) == before


@pytest.mark.parametrize("entry", ACCEPTS, ids=[d["file"] for d in ACCEPTS])
def test_an_accepted_upload_records_what_intake_learned(
    rt: Runtime, temp_area: Path, entry: dict[str, str]
) -> None:
    path = BAD / entry["file"]
    record = ingest(rt, path, _new(), actor="system", upload_name=entry["upload_name"])
    with rt.db.read() as s:
        stored = get_record(s, record.archive_code)
        jobs = {j.kind: j for j in list_jobs(s, state=JobState.queued)}
    assert stored.content_type in ("image/png", "image/jpeg")
    assert stored.size == path.stat().st_size
    assert stored.page_count == 1
    assert stored.plaintext_sha256 is not None
    assert stored.upload_name is not None
    assert "/" not in stored.upload_name
    assert "\x00" not in stored.upload_name
    assert "\u202e" not in stored.upload_name
    assert len(stored.upload_name) <= 120
    assert set(jobs) >= {OCR_RASTERIZE, "vault.sidecar"}
    assert jobs[OCR_RASTERIZE].payload == {"archive_code": record.archive_code}
    assert list(temp_area.iterdir()) == []


def test_the_same_scan_twice_is_refused_with_the_first_records_code(
    rt: Runtime, temp_area: Path
) -> None:
    first = ingest(rt, BAD / "hostile_name.png", _new(), actor="system")
    before = _state(rt, temp_area)
    # The same bytes under another name (long_name.png is hostile_name.png's twin).
    with pytest.raises(ConflictError, match=f"already archived as {first.archive_code}"):
        ingest(rt, BAD / "long_name.png", _new(), actor="system", upload_name="other.png")
    assert _state(rt, temp_area) == before
    again = ingest(rt, BAD / "long_name.png", _new(), actor="system", force=True)
    assert again.archive_code != first.archive_code
    assert again.plaintext_sha256 == first.plaintext_sha256


def test_a_duplicate_of_a_hidden_record_does_not_name_it(rt: Runtime, temp_area: Path) -> None:
    with rt.db.write() as s:
        clerk = create_user(s, name="li", role="clerk", password=PASSWORD, actor="root")
        director = create_user(s, name="wang", role="director", password=PASSWORD, actor="root")
    contract = ingest(
        rt,
        BAD / "hostile_name.png",
        _new(security_class=SecurityClass.contract),
        actor="wang",
        user=director,
    )
    before = _state(rt, temp_area)
    with pytest.raises(ConflictError) as info:
        ingest(rt, BAD / "control_name.png", _new(), actor="li", user=clerk)
    assert contract.archive_code not in info.value.message
    assert "a record you may not see; ask a director" in info.value.message
    assert _state(rt, temp_area) == before
    with pytest.raises(ConflictError, match=f"already archived as {contract.archive_code}"):
        ingest(rt, BAD / "control_name.png", _new(), actor="wang", user=director)


def test_a_disposed_records_content_may_be_archived_again(rt: Runtime) -> None:
    first = ingest(rt, BAD / "hostile_name.png", _new(), actor="system")
    with rt.db.write() as s:
        mark_content_destroyed(s, first.archive_code, actor="system")
    again = ingest(rt, BAD / "hostile_name.png", _new(), actor="system")
    assert again.archive_code != first.archive_code


def test_no_temporary_directory_is_an_operational_error(
    rt: Runtime, temp_area: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(rt, temp_area)
    monkeypatch.setattr(tempfile, "tempdir", str(temp_area / "not there"))
    with pytest.raises(StoreUnavailableError, match="no temporary directory for the upload"):
        ingest(rt, BAD / "polyglot.jpg", _new(), actor="system")
    assert _state(rt, temp_area) == before
