"""Disposal survives a restore from the vault alone (fs stores, SQLite, real scans and OCR).

A record archived before the catalog backup and one archived after it are both disposed of
after it, through the disposition service as a director; the catalog and the index are lost.
``restore_from_vault`` finds their tombstone sidecars: both come back as disposed tombstone
rows (the late one is created as one), their codes stay taken, their content stays
unrecoverable, and the record kept restores as before. A disposal cut short after its
tombstone was written (the old sidecar and the original still in the stores) is finished.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import cli
from api.services import Runtime, ingest, initialize
from api.services import retention as svc
from api.services.backups import run_backup
from api.services.reading import open_original
from api.services.recovery import SidecarDoc, TombstoneDoc, read_sidecars, recover_original
from api.services.restore import restore_from_vault
from api.services.search import search_records
from catalog import (
    NewRecord,
    RecordInfo,
    RecordStatus,
    Role,
    create_user,
    get_record,
    get_user,
    list_events,
    objects_of_record,
    run_one,
)
from dangan.config import Settings, load_settings
from dangan.errors import ConflictError, NotFoundError
from tests.corpus import scan

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PASSWORD = "correct-horse-battery"
SCAN = "doc_6555.pdf"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan(SCAN)
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password=PASSWORD)
    with runtime.db.write() as s:
        create_user(s, name="zhang", role=Role.director, password=PASSWORD, actor="root")
    yield runtime
    runtime.close()


def _archive(rt: Runtime, student_no: str) -> RecordInfo:
    record = ingest(
        rt,
        scan(SCAN),
        NewRecord(
            business_type="会议纪要",
            year=2010,
            student_no=student_no,
            student_name="林晓",
            title="会议纪要",
        ),
        actor="root",
        force=True,
    )
    while run_one(rt.db, "test", rt, lease_seconds=60) is not None:  # sidecar, OCR, index
        pass
    return record


def _files(settings: Settings) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for root in (settings.vault.primary.path, settings.vault.replica.path):
        assert root is not None
        for path in Path(root).rglob("*"):
            if path.is_file():
                found.setdefault(path.name, []).append(path)
    return found


def test_a_disposal_after_the_backup_survives_a_restore_from_the_vault(
    rt: Runtime, tmp_path: Path
) -> None:
    keep = _archive(rt, "S1")
    gone = _archive(rt, "S2")
    kept_content = b"".join(open_original(rt, keep.archive_code, actor="root").chunks)
    sidecars_before = {d.archive_code: d for d in read_sidecars(rt.vault)}
    old_sidecar = sidecars_before[gone.archive_code]
    assert isinstance(old_sidecar, SidecarDoc)
    with rt.db.read() as s:
        doomed = {o.id for o in objects_of_record(s, gone.id) if not o.is_shredded}
    kept_elsewhere = {name: paths for name, paths in _files(rt.settings).items() if name in doomed}
    saved = {p: p.read_bytes() for paths in kept_elsewhere.values() for p in paths}
    assert len(kept_elsewhere) == len(doomed)

    snapshot = run_backup(rt, actor="root").manifest
    late = _archive(rt, "S3")  # known to no backup

    with rt.db.read() as s:
        director = get_user(s, "zhang")
    run = svc.run_retention(rt, actor="system", now=NOW)
    ids = {p.archive_code: p.id for p in run.scan.opened}
    outcome = svc.approve(rt, [ids[gone.archive_code], ids[late.archive_code]], user=director)
    assert sorted(outcome.disposed) == sorted([gone.archive_code, late.archive_code])
    assert outcome.certificate is not None
    certificate_id = outcome.certificate.id

    # A disposal cut short after its tombstone was written: the old sidecar and the record's
    # other objects are back in the stores (as a crash before their deletion leaves them).
    for path, data in saved.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    # Disaster: the catalog and the index are lost.
    settings = rt.settings
    rt.close()
    for path in settings.data_dir.glob("catalog.sqlite*"):
        path.unlink()
    shutil.rmtree(settings.index_dir)
    report = restore_from_vault(settings)

    assert report.snapshot.snapshot_id == snapshot.snapshot_id
    assert sorted(report.disposed) == sorted([gone.archive_code, late.archive_code])
    assert report.created == []  # the late record is back only as its tombstone
    assert report.missing == []
    assert report.sidecar_problems == []
    assert report.ok
    # The leftover copies of the disposed record are deleted: nothing of it but its tombstone.
    names = _files(settings)
    assert not set(names) & doomed

    again = Runtime(load_settings(data_dir=settings.data_dir))
    try:
        with again.db.read() as s:
            assert get_record(s, keep.archive_code).status is RecordStatus.archived
            rows = {r.archive_code: get_record(s, r.archive_code) for r in (gone, late)}
            objects = {code: objects_of_record(s, row.id) for code, row in rows.items()}
            recovered = [
                e
                for e in list_events(s, action="record.recover", limit=100)
                if e.target in {f"record:{gone.archive_code}", f"record:{late.archive_code}"}
            ]
        for code, row in rows.items():
            # A tombstone row: disposed, the code, type and year kept; the name and title gone.
            assert row.status is RecordStatus.disposed, code
            assert (row.business_type, row.year, row.title, row.student_name) == (
                "会议纪要",
                2010,
                "",
                None,
            )
            # Its only live object is its tombstone sidecar, in both stores.
            (live,) = [o for o in objects[code] if not o.is_shredded]
            assert live.role.value == "sidecar"
            assert {c.store for c in live.copies} == {"primary", "replica"}
            assert len(names[live.id]) == 2
        assert rows[gone.archive_code].serial == gone.serial
        assert rows[late.archive_code].serial == late.serial
        # The disposal is remembered: who approved it, and the certificate.
        assert len(recovered) == 2
        for event in recovered:
            assert event.detail["status"] == "disposed"
            assert event.detail["disposal"]["approved_by"] == "zhang"
            assert event.detail["disposal"]["proposed_by"] == "system"
            assert event.detail["disposal"]["certificate_id"] == certificate_id

        # The rest restores as before: the kept record reads whole and is found.
        assert b"".join(open_original(again, keep.archive_code, actor="root").chunks) == (
            kept_content
        )
        with again.db.read() as s:
            director = get_user(s, "zhang")
        hits = search_records(again, "type:会议纪要", user=director, snippets=False).hits
        assert [h.record.archive_code for h in hits] == [keep.archive_code]

        # Unrecoverable: through the catalog, from the tombstone, from the old sidecar.
        for code in (gone.archive_code, late.archive_code):
            with pytest.raises((NotFoundError, ConflictError)):
                b"".join(open_original(again, code, actor="root").chunks)
        docs = {d.archive_code: d for d in read_sidecars(again.vault)}
        for code in (gone.archive_code, late.archive_code):
            assert isinstance(docs[code], TombstoneDoc)
            with pytest.raises(ConflictError, match="disposed of"):
                recover_original(again.vault, docs[code], tmp_path / "out")
        with pytest.raises(NotFoundError):
            recover_original(again.vault, old_sidecar, tmp_path / "out")
        assert not (tmp_path / "out").exists()

        # The codes stay taken: the next record of that type and year gets the next serial.
        nxt = ingest(
            again,
            scan(SCAN),
            NewRecord(business_type="会议纪要", year=2010),
            actor="root",
            force=True,
        )
        assert nxt.serial == late.serial + 1
    finally:
        again.close()

    # Every live object, the tombstones included, checks out; the trail is intact.
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    deep = runner.invoke(cli, [*base, "verify", "--deep"])
    assert deep.exit_code == 0, deep.output
    trail = runner.invoke(cli, [*base, "audit", "verify"])
    assert trail.exit_code == 0, trail.output
