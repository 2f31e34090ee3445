"""Destroying a record's content: keys shredded, copies gone, sidecar too; the code stays, and
a tombstone sidecar (no key, no title, no name) tells the stores that the record was disposed of."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import Runtime, ingest, initialize
from api.services.disposal import destroy_record_content
from api.services.jobs import rewrite_sidecar
from api.services.reading import open_original
from api.services.recovery import SidecarDoc, TombstoneDoc, read_sidecars
from api.services.search import search_records
from api.services.vault import build_vault
from catalog import (
    NewRecord,
    RecordStatus,
    Role,
    create_user,
    get_record,
    get_user,
    list_events,
    objects_of_record,
    run_one,
)
from dangan.config import Settings
from dangan.errors import ConflictError, CorruptDataError, NotFoundError, PermissionDeniedError
from tests.corpus import scan
from vault import WrappedKey, decrypt


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan()
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password="correct-horse-battery")
    with runtime.db.write() as s:
        for name, role in (("zhang", Role.director), ("li", Role.clerk)):
            create_user(s, name=name, role=role, password="correct-horse-battery", actor="root")
    yield runtime
    runtime.close()


def _files(rt: Runtime) -> list[Path]:
    roots = [rt.settings.vault.primary.path, rt.settings.vault.replica.path]
    return sorted(p for root in roots if root for p in root.rglob("*") if p.is_file())


def test_destroyed_content_is_gone_everywhere_and_the_code_stays(rt: Runtime) -> None:
    keep = ingest(rt, scan(), NewRecord(business_type="新生入学", year=2023), actor="root")
    gone = ingest(
        rt, scan(), NewRecord(business_type="新生入学", year=2023), actor="root", force=True
    )
    while run_one(rt.db, "test", rt, lease_seconds=60) is not None:  # sidecars, OCR, index
        pass
    with rt.db.read() as s:
        doomed = objects_of_record(s, gone.id)
        director = get_user(s, "zhang")
        clerk = get_user(s, "li")
        shreds_before = len(list_events(s, action="object.shred", limit=1000))
    live = [o for o in doomed if not o.is_shredded]
    assert {o.role.value for o in live} == {"original", "sidecar", "ocr_text", "access_copy"}
    assert search_records(rt, f"code:{gone.archive_code}", user=director).total == 1
    original = next(o for o in doomed if o.role.value == "original")
    leftover = next(p for p in _files(rt) if p.name == original.id)
    stolen = leftover.read_bytes()  # a copy someone kept before disposal
    before = len(_files(rt))

    with pytest.raises(PermissionDeniedError):
        destroy_record_content(rt, gone.archive_code, actor="li", user=clerk)
    report = destroy_record_content(rt, gone.archive_code, actor="zhang", user=director)

    assert sorted(report.shredded) == sorted(o.id for o in doomed)
    assert report.copies_left == []
    # Two copies each gone; the tombstone's two copies came.
    assert len(_files(rt)) == before - 2 * len(live) + 2
    with rt.db.read() as s:
        record = get_record(s, gone.archive_code)
        objs = objects_of_record(s, gone.id)
        events = [e.action for e in list_events(s, limit=1000)]
        assert get_record(s, keep.archive_code).status is RecordStatus.archived
        shreds = len(list_events(s, action="object.shred", limit=1000)) - shreds_before
    assert record.status is RecordStatus.disposed  # the row and the code stay
    old = [o for o in objs if o.id in {d.id for d in doomed}]
    assert all(o.wrapped_key is None and o.copies == () for o in old)
    # The one live object left is the tombstone sidecar, in both stores.
    (tombstone,) = [o for o in objs if not o.is_shredded]
    assert tombstone.role.value == "sidecar"
    assert tombstone.id not in {d.id for d in doomed}
    assert {c.store for c in tombstone.copies} == {"primary", "replica"}
    assert shreds == len(live)
    # Gone from the search index too: not even a director finds it.
    assert search_records(rt, f"code:{gone.archive_code}", user=director).total == 0
    assert "record.content_destroyed" in events

    # The catalog has no key for the stolen copy, and no sidecar in the stores names it.
    with pytest.raises((NotFoundError, ConflictError, CorruptDataError)):
        b"".join(open_original(rt, gone.archive_code, actor="root").chunks)
    docs = {doc.archive_code: doc for doc in read_sidecars(build_vault(rt.settings))}
    assert set(docs) == {keep.archive_code, gone.archive_code}
    assert isinstance(docs[keep.archive_code], SidecarDoc)
    tomb = docs[gone.archive_code]
    assert isinstance(tomb, TombstoneDoc)
    assert tomb.sidecar_id == tombstone.id
    assert (tomb.status, tomb.serial) == ("disposed", gone.serial)
    assert tomb.disposal.approved_by is None  # ordered directly, without a proposal
    assert tomb.disposal.disposed_at is not None
    # Even given the old wrapped key of *another* object, the stolen bytes do not open.
    with rt.db.read() as s:
        other = next(o for o in objects_of_record(s, keep.id) if o.role.value == "original")
    assert other.wrapped_key is not None
    with pytest.raises(CorruptDataError):
        b"".join(
            decrypt(
                original.id, WrappedKey.from_bytes(other.wrapped_key), [stolen], rt.vault.keyring
            )
        )

    again = destroy_record_content(rt, gone.archive_code, actor="zhang", user=director)
    assert again.copies_left == []
    # Run again, it keeps the tombstone (and writes no second one).
    assert tombstone.id not in again.shredded
    with rt.db.read() as s:
        live_after = [o.id for o in objects_of_record(s, gone.id) if not o.is_shredded]
    assert live_after == [tombstone.id]
    assert tombstone.id in {p.name for p in _files(rt)}

    # A key rotation writes the tombstone again as a tombstone, never as a record's sidecar.
    keyring = rt.vault.keyring
    assert keyring is not None
    assert rewrite_sidecar(rt, gone.id, keyring, actor="root")
    docs = {doc.archive_code: doc for doc in read_sidecars(build_vault(rt.settings))}
    rewritten = docs[gone.archive_code]
    assert isinstance(rewritten, TombstoneDoc)
    assert rewritten.sidecar_id != tombstone.id
    assert tombstone.id not in {p.name for p in _files(rt)}
