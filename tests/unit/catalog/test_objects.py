"""The catalog's record of vault objects, their copies, and what makes a record archived."""

from __future__ import annotations

import pytest

from catalog import Database, seed_business_types
from catalog.audit import list_events
from catalog.models import CopyState, ObjectRole, RecordStatus, Stage
from catalog.objects import (
    NewCopy,
    add_object,
    count_objects_by_key,
    get_object,
    list_copies,
    objects_to_rewrap,
    refresh_record_status,
    replace_wrapped_key,
    set_copy_state,
    shred_object,
    supersede_object,
)
from catalog.pipeline import set_stage
from catalog.records import NewRecord, create_record, get_record
from dangan.errors import ConflictError, NotFoundError

H1, H2 = "a" * 64, "b" * 64


def _record(db: Database) -> int:
    with db.write() as s:
        seed_business_types(s, actor="system")
        return create_record(s, NewRecord("转学", 2023), actor="system").id


def _add(
    db: Database, record_id: int, oid: str, *, replica_ok: bool = True, key: str = "k1"
) -> None:
    with db.write() as s:
        add_object(
            s,
            object_id=oid,
            record_id=record_id,
            role=ObjectRole.original,
            key_id=key,
            wrapped_key=b"wrapped-" + oid.encode(),
            size=10,
            plaintext_sha256=H1,
            copies=[
                NewCopy("primary", True, 100, H2),
                NewCopy("replica", replica_ok, 100 if replica_ok else 0, H2 if replica_ok else ""),
            ],
        )
        refresh_record_status(s, record_id)


def test_two_verified_copies_and_a_finished_pipeline_make_a_record_archived(
    database: Database,
) -> None:
    rid = _record(database)
    with database.read() as s:
        assert get_record(s, "2023-转学-001").status is RecordStatus.pending
    _add(database, rid, "o1")
    with database.read() as s:
        # Both copies are safe; OCR and indexing have not run yet.
        assert get_record(s, "2023-转学-001").status is RecordStatus.processing
    with database.write() as s:
        set_stage(s, rid, Stage.done)
    with database.read() as s:
        assert get_record(s, "2023-转学-001").status is RecordStatus.archived
        obj = get_object(s, "o1")
    assert [(c.store, c.state) for c in obj.copies] == [
        ("primary", CopyState.ok),
        ("replica", CopyState.ok),
    ]


def test_a_missing_copy_leaves_the_record_under_replicated_until_repaired(
    database: Database,
) -> None:
    rid = _record(database)
    _add(database, rid, "o1", replica_ok=False)
    with database.read() as s:
        assert get_record(s, "2023-转学-001").status is RecordStatus.under_replicated
        replica = get_object(s, "o1").copy_in("replica")
    assert replica is not None
    assert replica.state is CopyState.missing
    assert replica.ciphertext_sha256 == H2  # what the repaired copy must hash to
    with database.write() as s:
        set_copy_state(s, object_id="o1", store="replica", state=CopyState.ok, actor="worker")
        assert refresh_record_status(s, rid) is RecordStatus.processing
        set_stage(s, rid, Stage.done)
        assert refresh_record_status(s, rid) is RecordStatus.archived
        set_copy_state(
            s, object_id="o1", store="primary", state=CopyState.bad, actor="w", reason="hash"
        )
        assert refresh_record_status(s, rid) is RecordStatus.under_replicated


def test_an_object_needs_one_good_copy_and_a_new_id(database: Database) -> None:
    rid = _record(database)
    _add(database, rid, "o1")
    with pytest.raises(ConflictError), database.write() as s:
        add_object(
            s,
            object_id="o2",
            record_id=rid,
            role=ObjectRole.original,
            key_id="k1",
            wrapped_key=b"w",
            size=1,
            plaintext_sha256=H1,
            copies=[NewCopy("primary", False), NewCopy("replica", False)],
        )
    with pytest.raises(ConflictError):
        _add(database, rid, "o1")


def test_copies_are_listed_from_a_cursor(database: Database) -> None:
    rid = _record(database)
    for oid in ("o1", "o2", "o3"):
        _add(database, rid, oid)
    with database.read() as s:
        first = list_copies(s, limit=3)
        rest = list_copies(s, after=(first[-1].object_id, first[-1].store))
    keys = [(c.object_id, c.store) for c in first + rest]
    assert keys == [(o, st) for o in ("o1", "o2", "o3") for st in ("primary", "replica")]


def test_rewrap_and_shred(database: Database) -> None:
    rid = _record(database)
    _add(database, rid, "o1", key="k1")
    _add(database, rid, "o2", key="k2")
    with database.write() as s:
        assert count_objects_by_key(s) == {"k1": 1, "k2": 1}
        todo = objects_to_rewrap(s, current_key_id="k2")
        assert [o.id for o in todo] == ["o1"]
        assert replace_wrapped_key(
            s, object_id="o1", old_key_id="k1", key_id="k2", wrapped_key=b"n"
        )
        assert not replace_wrapped_key(
            s, object_id="o1", old_key_id="k1", key_id="k2", wrapped_key=b"x"
        )
        assert count_objects_by_key(s) == {"k2": 2}
        shred_object(s, object_id="o2", actor="director")
        obj = get_object(s, "o2")
        assert obj.is_shredded
        assert obj.copies == ()
        assert count_objects_by_key(s) == {"k2": 1}
        assert [c.object_id for c in list_copies(s)] == ["o1", "o1"]


def _supersede(db: Database, old: str, new: str, *, replica_ok: bool = True) -> None:
    with db.write() as s:
        supersede_object(
            s,
            old_object_id=old,
            object_id=new,
            key_id="k2",
            wrapped_key=b"wrapped-" + new.encode(),
            size=12,
            plaintext_sha256=H2,
            copies=[
                NewCopy("primary", True, 120, H1),
                NewCopy("replica", replica_ok, 120 if replica_ok else 0, H1 if replica_ok else ""),
            ],
            actor="worker",
        )


def test_a_superseding_object_takes_the_old_ones_place(database: Database) -> None:
    rid = _record(database)
    _add(database, rid, "o1")
    _supersede(database, "o1", "o2", replica_ok=False)
    with database.read() as s:
        old, new = get_object(s, "o1"), get_object(s, "o2")
        assert old.is_shredded
        assert old.copies == ()
        assert (new.record_id, new.role, new.key_id, new.size) == (rid, old.role, "k2", 12)
        replica = new.copy_in("replica")
        assert replica is not None
        assert (replica.state, replica.ciphertext_sha256) == (CopyState.missing, H1)
        assert count_objects_by_key(s) == {"k2": 1}
        assert [c.object_id for c in list_copies(s)] == ["o2", "o2"]
        [event] = list_events(s, action="object.supersede")
        assert (event.target, event.detail) == ("object:o1", {"by": "o2"})


def test_superseding_a_gone_object_changes_nothing(database: Database) -> None:
    rid = _record(database)
    _add(database, rid, "o1")
    _supersede(database, "o1", "o2")
    with pytest.raises(NotFoundError):  # superseded already (a second rewrite lost the race)
        _supersede(database, "o1", "o3")
    with pytest.raises(NotFoundError):
        _supersede(database, "nope", "o4")
    with database.read() as s, pytest.raises(NotFoundError):
        get_object(s, "o3")
    no_copy = [NewCopy("primary", False), NewCopy("replica", False)]
    with pytest.raises(ConflictError), database.write() as s:  # no verified copy: o2 stays
        supersede_object(
            s,
            old_object_id="o2",
            object_id="o5",
            key_id="k3",
            wrapped_key=b"x",
            size=1,
            plaintext_sha256=H1,
            copies=no_copy,
            actor="worker",
        )
    with database.read() as s:
        assert not get_object(s, "o2").is_shredded
