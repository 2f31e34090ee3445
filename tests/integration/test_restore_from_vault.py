"""Disaster recovery from the vault alone (issue #6): an archive of real scans, read through the
real queue, is backed up; one more record comes after the backup; the database and the index
are deleted; ``dangan restore --from-vault`` brings back every record (the late one from its
sidecar), every audit event up to the backup, the same search results and an intact trail.
On SQLite and PostgreSQL (``pg_dump`` / ``pg_restore`` of the test cluster).

Also: keeping the last N backups, a backup damaged in one store restored from the other, a
wrong keyring refused clearly, and a catalog that is not empty left alone without ``--force``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.cli import main
from api.services import Runtime, ingest, initialize
from api.services.backups import list_backups, run_backup
from api.services.search import search_records
from backup import read_manifest
from catalog import (
    AuditEventInfo,
    NewRecord,
    RecordStatus,
    Role,
    UserInfo,
    create_user,
    get_record,
    get_user,
    list_events,
    list_users,
)
from dangan.config import load_settings
from tests.corpus import scan
from tests.integration.api_world import run_queue
from tests.services import PostgresServer
from vault import create_keyring_file

SCANS = (
    ("IMG_2199.png", NewRecord(business_type="学籍变更", year=2023, student_name="万沐")),
    ("IMG_3214.png", NewRecord(business_type="新生入学", year=2023, student_name="陈静")),
    ("IMG_3780.png", NewRecord(business_type="成绩单", year=2022)),
)
LATE = ("IMG_4489.png", NewRecord(business_type="毕业审核", year=2024, student_name="林晓"))
QUERIES = ("万沐", "陈静", "type:新生入学", "year:2022..2023", "学生")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


_capsys: list[pytest.CaptureFixture[str]] = []


@pytest.fixture(autouse=True)
def _capture(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    _capsys.append(capsys)
    yield
    _capsys.clear()


def _invoke(rt: Runtime, *args: str) -> Ran:
    """``dangan --data-dir D ARGS`` as a script runs it: exit code, stdout, stderr."""
    capsys = _capsys[-1]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(rt.settings.data_dir), *args])
    captured = capsys.readouterr()
    return Ran(int(exit_info.value.code or 0), captured.out, captured.err)


def _director(rt: Runtime) -> UserInfo:
    with rt.db.write() as s:
        return create_user(s, name="director1", role=Role.director, password="x" * 12, actor="test")


def _searches(rt: Runtime, user: UserInfo) -> dict[str, list[str]]:
    found = {}
    for q in QUERIES:
        page = search_records(rt, q, user=user, page_size=50, snippets=False)
        found[q] = sorted(h.record.archive_code for h in page.hits)
    return found


def _events(rt: Runtime) -> list[AuditEventInfo]:
    events: list[AuditEventInfo] = []
    with rt.db.read() as s:
        while batch := list_events(s, after_id=events[-1].id if events else 0, limit=1000):
            events += batch
    return events


def _delete_catalog_and_index(rt: Runtime, pg: PostgresServer | None) -> None:
    url = rt.settings.database_url
    rt.close()
    if pg is None:
        for path in rt.settings.data_dir.glob("catalog.sqlite*"):
            path.unlink()
    else:
        name = url.rsplit("/", 1)[-1]
        pg.drop_database(url)
        pg.create_database(name)
    shutil.rmtree(rt.settings.index_dir)


def _pg(rt: Runtime, request: pytest.FixtureRequest) -> PostgresServer | None:
    if rt.settings.database.url is None:
        return None
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server


def test_restore_from_vault_brings_back_the_whole_archive(
    runtime_each_backend: Runtime, request: pytest.FixtureRequest
) -> None:
    rt = runtime_each_backend
    pg = _pg(rt, request)
    codes = [ingest(rt, scan(name), new, actor="root").archive_code for name, new in SCANS]
    run_queue(rt)
    director = _director(rt)
    at_backup = _searches(rt, director)
    assert at_backup["万沐"], at_backup
    assert at_backup["type:新生入学"], at_backup

    done = _invoke(rt, "backup", "--json")
    assert done.code == 0, done.out + done.err
    backup = json.loads(done.out)
    events_at_backup = [e for e in _events(rt) if e.id <= backup["audit_head"]["id"]]
    assert events_at_backup[-1].hash == backup["audit_head"]["hash"]
    assert backup["records"] == len(SCANS)

    late = ingest(rt, scan(LATE[0]), LATE[1], actor="root").archive_code
    run_queue(rt)
    with rt.db.read() as s:
        assert get_record(s, late).status is RecordStatus.archived
    before = _searches(rt, director)  # the archive as it was when disaster struck

    _delete_catalog_and_index(rt, pg)
    restored = _invoke(rt, "restore", "--from-vault", "--json")
    assert restored.code == 0, restored.out + restored.err
    report = json.loads(restored.out)
    assert report["snapshot"]["id"] == backup["snapshot_id"]
    assert report["records_created"] == [late]
    assert report["records_missing_from_stores"] == []
    assert report["indexed"] == len(SCANS) + 1

    again = Runtime(load_settings(data_dir=rt.settings.data_dir))
    try:
        with again.db.read() as s:
            for code in [*codes, late]:
                assert get_record(s, code).status is RecordStatus.archived, code
            director = get_user(s, "director1")
        # Every event up to the backup, unchanged; then the late record and the restore.
        events = _events(again)
        assert events[: len(events_at_backup)] == events_at_backup
        after = [e.action for e in events[len(events_at_backup) :]]
        assert "record.recover" in after
        assert "catalog.restore" in after
        assert _searches(again, director) == before
        found = search_records(again, "林晓", user=director, snippets=False)
        assert [h.record.archive_code for h in found.hits] == [late]
        # The late record's original comes back whole through the catalog.
        out = rt.settings.data_dir.parent / "late.png"
        got = _invoke(again, "get", late, "-o", str(out))
        assert got.code == 0, got.err
        assert out.read_bytes() == scan(LATE[0]).read_bytes()
    finally:
        again.close()
    verified = _invoke(rt, "audit", "verify")
    assert verified.code == 0, verified.out + verified.err
    assert "intact" in verified.out + verified.err
    copies = _invoke(rt, "verify", "--deep")
    assert copies.code == 0, copies.out + copies.err


# --- without OCR: the backups themselves --------------------------------------------------------


@pytest.fixture
def small(settings_env: pytest.MonkeyPatch, tmp_path: Path) -> Runtime:
    rt = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(rt, admin="root", password="correct-horse-battery")
    with rt.db.write() as s:
        create_user(s, name="clerk1", role=Role.clerk, password="y" * 12, actor="root")
    return rt


@pytest.fixture
def settings_env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return clean_env


def _users(rt: Runtime) -> list[str]:
    with rt.db.read() as s:
        return sorted(u.name for u in list_users(s))


def test_backup_keeps_the_newest_n(small: Runtime, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DANGAN_BACKUP__KEEP", "2")
    rt = Runtime(load_settings(data_dir=small.settings.data_dir))
    taken = [run_backup(rt, actor="root").manifest.snapshot_id for _ in range(3)]
    assert list_backups(rt) == [taken[2], taken[1]]
    for store in ("primary", "replica"):
        names = set(rt.vault.stores[store].list())
        assert taken[0] not in names
        assert "cb01" + taken[0][4:] not in names
    with rt.db.read() as s:
        backups = list_events(s, action="catalog.backup", limit=10)
    assert [e.target for e in backups] == [f"snapshot:{t}" for t in taken]
    assert backups[2].detail["pruned"] == [taken[0]]
    rt.close()


def _copy_path(rt: Runtime, store: str, object_id: str) -> Path:
    root = getattr(rt.settings.vault, store).path
    assert root is not None
    return Path(root) / object_id[:2] / object_id[2:4] / object_id


def test_a_backup_damaged_in_one_store_restores_from_the_other(small: Runtime) -> None:
    rt = small
    snapshot = run_backup(rt, actor="root").manifest
    users = _users(rt)
    # The data's primary copy gets a flipped byte; the manifest's replica copy is cut short.
    data = _copy_path(rt, "primary", snapshot.data.object_id)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    manifest = _copy_path(rt, "replica", snapshot.snapshot_id)
    manifest.write_bytes(manifest.read_bytes()[:-10])

    _delete_catalog_and_index(rt, None)
    restored = _invoke(rt, "restore", "--from-vault")
    assert restored.code == 0, restored.out + restored.err
    assert f"restored backup {snapshot.snapshot_id}" in restored.out + restored.err
    again = Runtime(load_settings(data_dir=rt.settings.data_dir))
    assert _users(again) == users
    again.close()
    assert _invoke(rt, "audit", "verify").code == 0


def test_a_backup_damaged_in_both_stores_falls_back_to_an_older_one(small: Runtime) -> None:
    rt = small
    older = run_backup(rt, actor="root").manifest
    newer = run_backup(rt, actor="root").manifest
    for store in ("primary", "replica"):
        _copy_path(rt, store, newer.data.object_id).unlink()
    _delete_catalog_and_index(rt, None)
    restored = _invoke(rt, "restore", "--from-vault", "--json")
    assert restored.code == 0, restored.out + restored.err
    report = json.loads(restored.out)
    assert report["snapshot"]["id"] == older.snapshot_id
    assert [s["id"] for s in report["skipped_snapshots"]] == [newer.snapshot_id]


def test_a_wrong_keyring_fails_clearly(small: Runtime, tmp_path: Path) -> None:
    rt = small
    snapshot = run_backup(rt, actor="root").manifest
    assert read_manifest(rt.vault, snapshot.snapshot_id).records == 0
    _delete_catalog_and_index(rt, None)
    keyring = rt.settings.vault.keyring_path
    assert keyring is not None
    keyring.unlink()
    create_keyring_file(keyring)
    restored = _invoke(rt, "restore", "--from-vault")
    assert restored.code == 3, restored.out + restored.err
    assert "does not open with this keyring" in restored.err
    assert not (rt.settings.data_dir / "catalog.sqlite").exists()


def test_restore_refuses_a_catalog_that_is_not_empty(small: Runtime) -> None:
    rt = small
    run_backup(rt, actor="root")
    with rt.db.write() as s:
        create_user(s, name="late1", role=Role.clerk, password="z" * 12, actor="root")
    rt.close()
    refused = _invoke(rt, "restore", "--from-vault")
    assert refused.code == 6, refused.err
    assert "late1" in _users(rt)
    forced = _invoke(rt, "restore", "--from-vault", "--force")
    assert forced.code == 0, forced.err
    again = Runtime(load_settings(data_dir=rt.settings.data_dir))
    assert "late1" not in _users(again)
    again.close()


def test_snapshot_plaintext_never_outlives_the_backup(small: Runtime, tmp_path: Path) -> None:
    os.environ["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    try:
        tempfile.tempdir = None
        run_backup(small, actor="root")
        assert list((tmp_path / "tmp").iterdir()) == []
    finally:
        del os.environ["TMPDIR"]
        tempfile.tempdir = None
