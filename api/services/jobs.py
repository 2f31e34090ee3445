"""The vault's jobs: replicate or repair a copy, write a record's sidecar, re-wrap data keys.

Importing ``api.services`` registers them, so every process that runs the queue (``dangan
worker``, the workers inside ``dangan serve``) knows them. Each handler is small (one object,
one record or one slice of keys), idempotent (it looks before it writes) and resumable (the
re-wrap walk carries its cursor in the payload). Payloads hold ids, never content; nothing here
logs a key, a title or a name.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.services.runtime import Runtime, job_runtime, worker_actor
from api.services.sidecars import sidecar_body
from api.services.vault import load_configured_keyring
from catalog import (
    CopyState,
    JobContext,
    NewCopy,
    ObjectInfo,
    ObjectRole,
    RecordStatus,
    add_object,
    get_object,
    get_record,
    get_record_by_id,
    objects_of_record,
    objects_to_rewrap,
    record_event,
    refresh_record_status,
    register,
    replace_wrapped_key,
    set_copy_state,
    supersede_object,
)
from dangan.errors import CorruptDataError, KeyringError, NotFoundError, StoreUnavailableError
from vault import Keyring, Vault, WrappedKey, WriteResult, new_object_id, rewrap

__all__ = [
    "KEYS_REWRAP",
    "VAULT_REPAIR",
    "VAULT_REPLICATE",
    "VAULT_SIDECAR",
    "ObjectPayload",
    "RecordPayload",
    "RewrapPayload",
    "discard_on_error",
    "queue_replication",
    "restore_copies",
    "rewrap_slice",
    "rewrite_sidecar",
    "write_sidecar",
    "written",
]

log = logging.getLogger(__name__)

VAULT_REPLICATE = "vault.replicate"
VAULT_REPAIR = "vault.repair"
VAULT_SIDECAR = "vault.sidecar"
KEYS_REWRAP = "keys.rewrap"
REWRAP_SLICE = 500


class ObjectPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_id: str = Field(pattern=r"^[0-9a-f]{32,64}$")


class RecordPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive_code: str = Field(min_length=1, max_length=64)


class RewrapPayload(BaseModel):
    """A slice of the re-wrap walk: objects after ``after``, onto keyring key ``key_id``."""

    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(min_length=1, max_length=64)
    after: str = ""
    limit: int = Field(default=REWRAP_SLICE, ge=1, le=5000)


# --- copies -----------------------------------------------------------------------------------


def restore_copies(rt: Runtime, object_id: str, *, actor: str) -> list[str]:
    """Bring every copy of an object that is not ``ok`` back from an ``ok`` one.

    A copy the catalog calls bad or missing is first checked: one that is in fact intact
    (a repair that ran but was not recorded) is only marked ``ok``. Each restored copy is read
    back by the vault before the catalog calls it ``ok``; the record's status is refreshed.

    :returns: the stores whose copy was restored or found intact.
    :raises CorruptDataError: no copy is ``ok`` to restore from.
    :raises StoreUnavailableError: a store cannot be reached (the job is retried).
    """
    with rt.db.read() as session:
        obj = get_object(session, object_id)
    if obj.is_shredded:
        return []
    good = [c for c in obj.copies if c.state is CopyState.ok]
    todo = [c for c in obj.copies if c.state is not CopyState.ok]
    if not todo:
        return []
    if not good:
        raise CorruptDataError(f"object {object_id}: no good copy to restore from")
    source = good[0]
    vault = rt.vault
    fixed: list[str] = []
    for copy in todo:
        status = vault.verify_copy(
            copy.store,
            object_id,
            size=source.size,
            ciphertext_sha256=source.ciphertext_sha256,
            algorithm=obj.digest_algorithm,
        )
        if not status.ok:
            status = vault.repair_copy(
                object_id,
                source.store,
                copy.store,
                expected_sha256=source.ciphertext_sha256,
                algorithm=obj.digest_algorithm,
            )
        with rt.db.write() as session:
            set_copy_state(
                session,
                object_id=object_id,
                store=copy.store,
                state=CopyState.ok,
                actor=actor,
                reason=f"restored from {source.store}",
            )
            if obj.record_id is not None:
                refresh_record_status(session, obj.record_id)
        fixed.append(copy.store)
    return fixed


def _restore_handler(ctx: JobContext[Any], payload: ObjectPayload) -> None:
    rt = job_runtime(ctx, "vault")
    try:
        restore_copies(rt, payload.object_id, actor=worker_actor(ctx))
    except NotFoundError:
        return  # the object was disposed of meanwhile: nothing is owed


@register(VAULT_REPLICATE, ObjectPayload, permanent=(CorruptDataError,))
def replicate_object(ctx: JobContext[Any], payload: ObjectPayload) -> None:
    """Write the copy a store missed at intake (it was down), from the other store."""
    _restore_handler(ctx, payload)


@register(VAULT_REPAIR, ObjectPayload, permanent=(CorruptDataError,))
def repair_object(ctx: JobContext[Any], payload: ObjectPayload) -> None:
    """Replace a copy found bad or missing with the good one."""
    _restore_handler(ctx, payload)


# --- the metadata sidecar ---------------------------------------------------------------------


def _live_sidecar(objects: Sequence[ObjectInfo]) -> ObjectInfo | None:
    return next((o for o in objects if o.role is ObjectRole.sidecar and not o.is_shredded), None)


def write_sidecar(rt: Runtime, archive_code: str, *, actor: str) -> str | None:
    """Store the record's catalog fields, encrypted, as its sidecar: a sealed object, which
    carries its own wrapped key, so the stores and the keyring alone open it.

    A disposed record's sidecar is its tombstone (``api.services.sidecars``): the disposal
    calls this once the record's own sidecar is shredded.

    :returns: the new sidecar's object id, or ``None`` when the record has one already.
    :raises NotFoundError: no such record.
    :raises StoreUnavailableError: neither store took the copy.
    """
    with rt.db.read() as session:
        record = get_record(session, archive_code)
        objects = objects_of_record(session, record.id)
        body = sidecar_body(session, record, objects)
    if _live_sidecar(objects) is not None:
        return None
    object_id = new_object_id()
    vault = rt.vault
    result = vault.write_sealed(object_id, [body])
    with discard_on_error(vault, object_id), rt.db.write() as session:
        add_object(
            session,
            object_id=object_id,
            record_id=record.id,
            role=ObjectRole.sidecar,
            **written(result),
        )
        queue_replication(rt, session, object_id, result, actor=actor)
        record_event(
            session,
            actor=actor,
            action="record.sidecar",
            target=f"record:{record.archive_code}",
            detail={"object_id": object_id}
            if record.status is not RecordStatus.disposed
            else {"object_id": object_id, "tombstone": True},
        )
    return object_id


def rewrite_sidecar(rt: Runtime, record_id: int, keyring: Keyring, *, actor: str) -> bool:
    """Write the record's sidecar again, from the catalog, under ``keyring``'s current key.

    Called by the re-wrap walk: a sealed sidecar holds its own wrapped key and the originals'
    wrapped keys, so re-wrapping in the catalog alone would leave it unreadable once the old
    key is retired. A disposed record's sidecar is its tombstone, and is written again as
    one (``api.services.sidecars``); the disposal uses this too, to add the certificate.
    The new sidecar gets a new object id, so the bytes the catalog names are never replaced
    under it (a check or a read meanwhile, or a failed commit, sees the old
    sidecar whole); one transaction then puts it in the old one's place
    (:func:`catalog.supersede_object`), and the old one's copies are deleted after the commit.
    If the catalog does not take the new sidecar (or the old one was shredded meanwhile: the
    record was disposed of, or another rewrite got there first), the new copies are deleted.

    :returns: whether there was a live sidecar to write.
    :raises StoreUnavailableError: neither store took the new copy (the job is retried).
    """
    with rt.db.read() as session:
        record = get_record_by_id(session, record_id)
        objects = objects_of_record(session, record_id)
        body = sidecar_body(session, record, objects)
    sidecar = _live_sidecar(objects)
    if sidecar is None:
        return False
    object_id = new_object_id()
    vault = Vault(
        rt.vault.stores["primary"], rt.vault.stores["replica"], keyring, suite=rt.vault.suite
    )
    result = vault.write_sealed(object_id, [body])
    try:
        with discard_on_error(vault, object_id), rt.db.write() as session:
            supersede_object(
                session,
                old_object_id=sidecar.id,
                object_id=object_id,
                **written(result),
                actor=actor,
            )
            queue_replication(rt, session, object_id, result, actor=actor)
            record_event(
                session,
                actor=actor,
                action="record.sidecar",
                target=f"record:{record.archive_code}",
                detail={"object_id": object_id, "replaces": sidecar.id},
            )
    except NotFoundError:
        return False  # shredded meanwhile; the new copies are gone already
    try:
        vault.delete_object(sidecar.id)
    except StoreUnavailableError as exc:
        # The catalog no longer names it, but a sealed copy opens with the keyring alone
        # until its key is retired: say so, for an operator to remove it.
        log.warning(
            "old sidecar copies left in a store",
            extra={
                "event": "sidecar_old_copies_left",
                "object_id": sidecar.id,
                "replaced_by": object_id,
                "reason": exc.message,
            },
        )
    return True


def written(result: WriteResult) -> dict[str, Any]:
    """The vault's report of a write, as the catalog's ``add_object`` / ``supersede_object``
    take it: the wrapped key, the plaintext's fixity and its digest, and each copy."""
    return {
        "key_id": result.wrapped_key.key_id,
        "wrapped_key": result.wrapped_key.to_bytes(),
        "size": result.plaintext_size,
        "plaintext_sha256": result.plaintext_sha256,
        "digest_algorithm": result.algorithm,
        "copies": [NewCopy(n, c.ok, c.size or 0, c.sha256 or "") for n, c in result.copies.items()],
    }


def queue_replication(
    rt: Runtime, session: Any, object_id: str, result: WriteResult, *, actor: str
) -> None:
    """Owe the store that missed a write its copy (in the transaction that records the write)."""
    if result.is_under_replicated:
        rt.enqueue(
            session,
            VAULT_REPLICATE,
            {"object_id": object_id},
            key=f"replicate:{object_id}",
            actor=actor,
        )


@contextlib.contextmanager
def discard_on_error(vault: Vault, object_id: str) -> Iterator[None]:
    """If the catalog does not take an object just written, remove its copies (no orphan)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            vault.delete_object(object_id)
        raise


@register(VAULT_SIDECAR, RecordPayload)
def store_sidecar(ctx: JobContext[Any], payload: RecordPayload) -> None:
    """Write the record's metadata sidecar unless it has one."""
    try:
        write_sidecar(job_runtime(ctx, "vault"), payload.archive_code, actor=worker_actor(ctx))
    except NotFoundError:
        return  # disposed of meanwhile


# --- re-wrapping data keys after a rotation ---------------------------------------------------


def rewrap_slice(
    rt: Runtime,
    keyring: Keyring,
    *,
    after: str = "",
    limit: int = REWRAP_SLICE,
    actor: str = "system",
) -> tuple[int, str | None]:
    """Re-wrap one slice of data keys onto the keyring's current key; content is untouched.

    A sidecar is sealed (its wrapped key is in its bytes, with the originals' wrapped keys),
    so instead it is written again from the catalog (:func:`rewrite_sidecar`); so is the
    sidecar of every record whose original was re-wrapped here, so that no sidecar keeps a
    wrapped key that a retired keyring key made useless.

    :returns: how many were re-wrapped or rewritten, and the cursor for the next slice
        (``None``: done).
    :raises KeyringError: a data key's wrapping key is not in ``keyring``.
    """
    current = keyring.current.id
    records: set[int] = set()
    stale_sidecars: set[str] = set()
    with rt.db.write() as session:
        objs = objects_to_rewrap(session, current_key_id=current, after=after, limit=limit)
        done = 0
        for obj in objs:
            if obj.wrapped_key is None or obj.key_id is None:
                continue
            if obj.role is ObjectRole.sidecar and obj.record_id is not None:
                records.add(obj.record_id)
                stale_sidecars.add(obj.id)
                continue
            fresh = rewrap(WrappedKey.from_bytes(obj.wrapped_key), keyring)
            if replace_wrapped_key(
                session,
                object_id=obj.id,
                old_key_id=obj.key_id,
                key_id=fresh.key_id,
                wrapped_key=fresh.to_bytes(),
            ):
                done += 1
                if obj.record_id is not None:
                    records.add(obj.record_id)
    for record_id in sorted(records):
        with rt.db.read() as session:
            sidecar = _live_sidecar(objects_of_record(session, record_id))
        if sidecar is None:
            continue
        if rewrite_sidecar(rt, record_id, keyring, actor=actor) and sidecar.id in stale_sidecars:
            done += 1
    cursor = objs[-1].id if len(objs) == limit else None
    return done, cursor


@register(KEYS_REWRAP, RewrapPayload)
def rewrap_keys(ctx: JobContext[Any], payload: RewrapPayload) -> None:
    """Re-wrap a slice onto ``key_id`` and queue the next slice.

    The keyring is read afresh (a worker may predate the rotation). Until the rotated keyring
    is visible to this worker the job fails and is retried.
    """
    rt = job_runtime(ctx, "vault")
    keyring = load_configured_keyring(rt.settings)
    if keyring.current.id != payload.key_id:
        raise KeyringError(f"keyring key {payload.key_id} is not this worker's current key")
    actor = worker_actor(ctx)
    done, cursor = rewrap_slice(rt, keyring, after=payload.after, limit=payload.limit, actor=actor)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action=KEYS_REWRAP,
            target=f"key:{payload.key_id}",
            detail={"rewrapped": done, "after": payload.after},
        )
        if cursor is not None:
            rt.enqueue(
                session,
                KEYS_REWRAP,
                {"key_id": payload.key_id, "after": cursor, "limit": payload.limit},
                key=f"rewrap:{payload.key_id}:{cursor}",
                actor=actor,
            )
