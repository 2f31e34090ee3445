"""The catalog's side of the vault: objects, their wrapped data keys, and their copies.

The vault stores ciphertext and knows nothing of records; this module remembers, per object,
the wrapped data key, the plaintext's size and digest, and per store the copy's size,
ciphertext digest and state. The digests are SHA-256, or SM3 for an object written in an SM3
suite: ``digest_algorithm`` says which, and the ``*_sha256`` fields hold that digest's hex.
A record is ``archived`` only while its content has a verified ``ok`` copy in both stores and
its pipeline is done (:func:`refresh_record_status`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import (
    CheckResult,
    CopyState,
    ObjectRole,
    Record,
    RecordStatus,
    Stage,
    StoredCopy,
    VaultObject,
    utcnow,
)
from dangan.errors import ConflictError, NotFoundError

__all__ = [
    "STORES",
    "CopyInfo",
    "NewCopy",
    "ObjectInfo",
    "add_object",
    "copies_due_for_check",
    "count_copies_overdue",
    "count_objects_by_key",
    "get_object",
    "list_copies",
    "objects_of_record",
    "objects_to_rewrap",
    "record_copy_check",
    "refresh_record_status",
    "replace_wrapped_key",
    "set_copy_state",
    "shred_object",
    "supersede_object",
]

STORES = ("primary", "replica")
# The objects that hold a record's content: each needs both copies for the record to be archived.
_CONTENT_ROLES = (ObjectRole.original, ObjectRole.ocr_text, ObjectRole.access_copy)


@dataclass(frozen=True)
class NewCopy:
    """A copy as the vault reports it after writing and verifying (or failing to)."""

    store: str
    ok: bool
    size: int = 0
    ciphertext_sha256: str = ""


@dataclass(frozen=True)
class CopyInfo:
    object_id: str
    store: str
    size: int
    ciphertext_sha256: str
    state: CopyState
    verified_at: dt.datetime | None
    checked_at: dt.datetime | None = None
    check_result: CheckResult | None = None
    deep_checked_at: dt.datetime | None = None


@dataclass(frozen=True)
class ObjectInfo:
    id: str
    record_id: int | None
    role: ObjectRole
    key_id: str | None
    wrapped_key: bytes | None
    size: int
    plaintext_sha256: str
    copies: tuple[CopyInfo, ...]
    damaged_at: dt.datetime | None = None
    digest_algorithm: str = "sha256"
    """What ``plaintext_sha256`` and the copies' ``ciphertext_sha256`` are: sha256 or sm3."""

    @property
    def is_shredded(self) -> bool:
        return self.wrapped_key is None

    @property
    def is_damaged(self) -> bool:
        """No copy is good: never served, restored only from a backup."""
        return self.damaged_at is not None

    def copy_in(self, store: str) -> CopyInfo | None:
        return next((c for c in self.copies if c.store == store), None)


def _copy_info(c: StoredCopy) -> CopyInfo:
    return CopyInfo(
        c.object_id,
        c.store,
        c.size,
        c.ciphertext_sha256,
        CopyState(c.state),
        c.verified_at,
        c.checked_at,
        CheckResult(c.check_result) if c.check_result else None,
        c.deep_checked_at,
    )


def _object_info(session: Session, obj: VaultObject) -> ObjectInfo:
    copies = session.scalars(
        select(StoredCopy).where(StoredCopy.object_id == obj.id).order_by(StoredCopy.store)
    )
    return ObjectInfo(
        id=obj.id,
        record_id=obj.record_id,
        role=ObjectRole(obj.role),
        key_id=obj.key_id,
        wrapped_key=obj.wrapped_key,
        size=obj.size,
        plaintext_sha256=obj.plaintext_sha256,
        copies=tuple(_copy_info(c) for c in copies),
        damaged_at=obj.damaged_at,
        digest_algorithm=obj.digest_algorithm,
    )


def add_object(
    session: Session,
    *,
    object_id: str,
    record_id: int | None,
    role: ObjectRole,
    key_id: str,
    wrapped_key: bytes,
    size: int,
    plaintext_sha256: str,
    copies: Sequence[NewCopy],
    digest_algorithm: str = "sha256",
    now: dt.datetime | None = None,
) -> ObjectInfo:
    """Remember a newly written object and the outcome of each copy.

    :param digest_algorithm: the digest of ``plaintext_sha256`` and of the copies' hashes, as
        the vault reports it (``WriteResult.algorithm``).

    A failed copy is kept as ``missing`` with the expected ciphertext hash of the good one, so
    replication knows what to write and verify.
    """
    if session.get(VaultObject, object_id) is not None:
        raise ConflictError(f"vault object {object_id} is known already")
    good = next((c for c in copies if c.ok), None)
    if good is None:
        raise ConflictError("an object needs at least one verified copy")
    at = now or utcnow()
    session.add(
        VaultObject(
            id=object_id,
            record_id=record_id,
            role=role.value,
            key_id=key_id,
            wrapped_key=wrapped_key,
            size=size,
            plaintext_sha256=plaintext_sha256,
            digest_algorithm=digest_algorithm,
        )
    )
    session.flush()
    for store in STORES:
        c = next((c for c in copies if c.store == store), None)
        ok = c is not None and c.ok
        session.add(
            StoredCopy(
                object_id=object_id,
                store=store,
                size=c.size if ok and c else good.size,
                ciphertext_sha256=c.ciphertext_sha256 if ok and c else good.ciphertext_sha256,
                state=(CopyState.ok if ok else CopyState.missing).value,
                verified_at=at if ok else None,
            )
        )
    session.flush()
    return get_object(session, object_id)


def get_object(session: Session, object_id: str) -> ObjectInfo:
    obj = session.get(VaultObject, object_id)
    if obj is None:
        raise NotFoundError("no such vault object")
    return _object_info(session, obj)


def objects_of_record(session: Session, record_id: int) -> list[ObjectInfo]:
    objs = session.scalars(
        select(VaultObject).where(VaultObject.record_id == record_id).order_by(VaultObject.id)
    )
    return [_object_info(session, o) for o in objs]


def set_copy_state(
    session: Session,
    *,
    object_id: str,
    store: str,
    state: CopyState,
    actor: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> CopyInfo:
    """Record what a check or a repair found of one copy; a change of state is audited."""
    copy = session.scalar(
        select(StoredCopy).where(StoredCopy.object_id == object_id, StoredCopy.store == store)
    )
    if copy is None:
        raise NotFoundError("no such copy")
    at = now or utcnow()
    if state is CopyState.ok:
        copy.verified_at = at
    if copy.state != state.value:
        copy.state = state.value
        record_event(
            session,
            actor=actor,
            action=f"copy.{state.value}",
            target=f"object:{object_id}",
            detail={"store": store, "reason": reason} if reason else {"store": store},
            now=at,
        )
        session.flush()
        _mark_damage(session, object_id, actor=actor, now=at)
    session.flush()
    return _copy_info(copy)


def _mark_damage(session: Session, object_id: str, *, actor: str, now: dt.datetime) -> None:
    """Keep the object's ``damaged`` mark in step with its copies: set while none is ``ok``
    (audited ``object.damaged``), cleared when one is good again (``object.undamaged``)."""
    obj = session.get(VaultObject, object_id)
    if obj is None or obj.wrapped_key is None:
        return
    good = session.scalar(
        select(func.count()).where(
            StoredCopy.object_id == object_id, StoredCopy.state == CopyState.ok.value
        )
    )
    damaged = not good
    if damaged == (obj.damaged_at is not None):
        return
    obj.damaged_at = now if damaged else None
    record_event(
        session,
        actor=actor,
        action="object.damaged" if damaged else "object.undamaged",
        target=f"object:{object_id}",
        outcome="error" if damaged else "ok",
        now=now,
    )


def record_copy_check(
    session: Session,
    *,
    object_id: str,
    store: str,
    result: CheckResult,
    deep: bool,
    actor: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> CopyInfo:
    """Record one fixity check of a copy: its time and result, and the copy's state.

    ``unreachable`` says nothing of the copy: its state and its check time are kept (it stays
    first in line), only the result is noted.

    :raises NotFoundError: no such copy (the object was disposed of meanwhile).
    """
    at = now or utcnow()
    if result is not CheckResult.unreachable:
        state = {
            CheckResult.ok: CopyState.ok,
            CheckResult.repaired: CopyState.ok,
            CheckResult.bad: CopyState.bad,
            CheckResult.missing: CopyState.missing,
        }[result]
        set_copy_state(
            session,
            object_id=object_id,
            store=store,
            state=state,
            actor=actor,
            reason=reason,
            now=at,
        )
    copy = session.scalar(
        select(StoredCopy).where(StoredCopy.object_id == object_id, StoredCopy.store == store)
    )
    if copy is None:
        raise NotFoundError("no such copy")
    copy.check_result = result.value
    if result is not CheckResult.unreachable:
        copy.checked_at = at  # an unreachable copy stays due: it is checked first once back
    if deep and result in (CheckResult.ok, CheckResult.repaired):
        copy.deep_checked_at = at
    session.flush()
    return _copy_info(copy)


def copies_due_for_check(
    session: Session, *, limit: int, skip_stores: Sequence[str] = ()
) -> list[CopyInfo]:
    """Live copies in the order the fixity cycle checks them: never checked first, then the
    ones checked longest ago (ties by object id and store, so the order is stable).

    :param skip_stores: stores found out of reach in this run (their copies wait).
    """
    stmt = (
        select(StoredCopy)
        .join(VaultObject, VaultObject.id == StoredCopy.object_id)
        .where(VaultObject.wrapped_key.is_not(None))
    )
    if skip_stores:
        stmt = stmt.where(StoredCopy.store.not_in(list(skip_stores)))
    stmt = stmt.order_by(
        StoredCopy.checked_at.is_not(None),
        StoredCopy.checked_at,
        StoredCopy.object_id,
        StoredCopy.store,
    ).limit(limit)
    return [_copy_info(c) for c in session.scalars(stmt)]


def refresh_record_status(session: Session, record_id: int) -> RecordStatus:
    """The record's status from its copies and its pipeline stage.

    ``damaged`` while any of its content objects (the original, and once written the OCR text
    and the access copy) has no ``ok`` copy at all; ``under_replicated`` while one lacks an
    ``ok`` copy in a store; else ``processing`` until the pipeline is done, then ``archived``.
    A disposed record stays disposed.
    """
    record = session.get(Record, record_id)
    if record is None:
        raise NotFoundError("no such record")
    if record.status == RecordStatus.disposed:
        return RecordStatus.disposed
    rows = session.execute(
        select(VaultObject.id, StoredCopy.store, StoredCopy.state)
        .join(StoredCopy, StoredCopy.object_id == VaultObject.id)
        .where(
            VaultObject.record_id == record_id,
            VaultObject.role.in_([r.value for r in _CONTENT_ROLES]),
            VaultObject.wrapped_key.is_not(None),
        )
    ).all()
    ok: dict[str, set[str]] = {}
    for object_id, store, state in rows:
        stores = ok.setdefault(object_id, set())
        if state == CopyState.ok.value:
            stores.add(store)
    replicated = bool(ok) and all(stores >= set(STORES) for stores in ok.values())
    if any(not stores for stores in ok.values()):
        status = RecordStatus.damaged
    elif not replicated:
        status = RecordStatus.under_replicated
    elif record.stage == Stage.done.value:
        status = RecordStatus.archived
    else:
        status = RecordStatus.processing
    if record.status != status.value:
        record.status = status.value
    return status


def list_copies(
    session: Session,
    *,
    after: tuple[str, str] | None = None,
    limit: int = 1000,
    states: Sequence[CopyState] | None = None,
) -> list[CopyInfo]:
    """Copies of live (not shredded) objects in (object id, store) order, from a cursor."""
    stmt = (
        select(StoredCopy)
        .join(VaultObject, VaultObject.id == StoredCopy.object_id)
        .where(VaultObject.wrapped_key.is_not(None))
    )
    if after is not None:
        oid, store = after
        stmt = stmt.where(
            (StoredCopy.object_id > oid)
            | ((StoredCopy.object_id == oid) & (StoredCopy.store > store))
        )
    if states:
        stmt = stmt.where(StoredCopy.state.in_([s.value for s in states]))
    stmt = stmt.order_by(StoredCopy.object_id, StoredCopy.store).limit(limit)
    return [_copy_info(c) for c in session.scalars(stmt)]


def count_copies_overdue(
    session: Session, *, period_days: int, now: dt.datetime | None = None
) -> tuple[int, int]:
    """How many live copies there are, and how many were not checked in the last
    ``period_days`` (never checked included)."""
    since = (now or utcnow()) - dt.timedelta(days=period_days)
    live = (
        select(func.count())
        .select_from(StoredCopy)
        .join(VaultObject, VaultObject.id == StoredCopy.object_id)
        .where(VaultObject.wrapped_key.is_not(None))
    )
    total = session.scalar(live) or 0
    overdue = (
        session.scalar(
            live.where((StoredCopy.checked_at.is_(None)) | (StoredCopy.checked_at < since))
        )
        or 0
    )
    return int(total), int(overdue)


def count_objects_by_key(session: Session) -> dict[str, int]:
    """How many live objects each keyring key wraps (a key is retired only at zero)."""
    rows = session.execute(
        select(VaultObject.key_id, func.count())
        .where(VaultObject.wrapped_key.is_not(None))
        .group_by(VaultObject.key_id)
    )
    return {str(k): int(n) for k, n in rows}


def objects_to_rewrap(
    session: Session, *, current_key_id: str, after: str = "", limit: int = 500
) -> list[ObjectInfo]:
    """Live objects whose data key is wrapped by another key than the current one."""
    objs = session.scalars(
        select(VaultObject)
        .where(
            VaultObject.wrapped_key.is_not(None),
            VaultObject.key_id != current_key_id,
            VaultObject.id > after,
        )
        .order_by(VaultObject.id)
        .limit(limit)
    )
    return [_object_info(session, o) for o in objs]


def replace_wrapped_key(
    session: Session, *, object_id: str, old_key_id: str, key_id: str, wrapped_key: bytes
) -> bool:
    """Swap in a re-wrapped data key, only if it is still wrapped by ``old_key_id``.

    :returns: whether it was replaced (``False``: shredded or already re-wrapped meanwhile).
    """
    obj = session.get(VaultObject, object_id)
    if obj is None or obj.wrapped_key is None or obj.key_id != old_key_id:
        return False
    obj.key_id = key_id
    obj.wrapped_key = wrapped_key
    return True


def shred_object(session: Session, *, object_id: str, actor: str) -> None:
    """Destroy the object's data key and forget its copies (crypto-shredding).

    Call after (or while) deleting the copies; even a copy that survives somewhere is
    unreadable once this commits.
    """
    obj = session.get(VaultObject, object_id)
    if obj is None:
        raise NotFoundError("no such vault object")
    if obj.wrapped_key is None:
        return
    obj.wrapped_key = None
    obj.shredded_at = utcnow()
    session.execute(delete(StoredCopy).where(StoredCopy.object_id == object_id))
    record_event(session, actor=actor, action="object.shred", target=f"object:{object_id}")


def supersede_object(
    session: Session,
    *,
    old_object_id: str,
    object_id: str,
    key_id: str,
    wrapped_key: bytes,
    size: int,
    plaintext_sha256: str,
    copies: Sequence[NewCopy],
    actor: str,
    digest_algorithm: str = "sha256",
    now: dt.datetime | None = None,
) -> ObjectInfo:
    """Put a newly written object in the place of a live one (a sealed sidecar written again
    after a key rotation): the new one is added with the old one's record and role, and the
    old one is shredded (:func:`shred_object`), in the caller's transaction.

    The catalog never names bytes that are being replaced, so a check or a read between the
    write and the commit sees the old object whole, and a failed commit leaves it as it was.
    Delete the old object's copies after the commit.

    :raises NotFoundError: no such old object, or it was shredded (or superseded) meanwhile.
    :raises ConflictError: the new id is known already, or no copy was verified.
    """
    old = session.get(VaultObject, old_object_id, with_for_update=True)
    if old is None or old.wrapped_key is None:
        raise NotFoundError("no such vault object")
    new = add_object(
        session,
        object_id=object_id,
        record_id=old.record_id,
        role=ObjectRole(old.role),
        key_id=key_id,
        wrapped_key=wrapped_key,
        size=size,
        plaintext_sha256=plaintext_sha256,
        copies=copies,
        digest_algorithm=digest_algorithm,
        now=now,
    )
    shred_object(session, object_id=old_object_id, actor=actor)
    record_event(
        session,
        actor=actor,
        action="object.supersede",
        target=f"object:{old_object_id}",
        detail={"by": object_id},
        now=now,
    )
    session.flush()
    return new
