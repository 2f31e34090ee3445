"""Reading a record's original scan: policy, audit, failover and repair, in one place.

Every read of content is audited (``record.read_content``) before a byte is served. A copy
found bad on the way is marked in the catalog (audited) and a repair is queued while the
reader carries on from the other copy; when no copy holds up the reader gets an error and the
audit trail an event, never bytes. Nothing here logs or keeps plaintext.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from api.services.jobs import VAULT_REPAIR
from api.services.runtime import Runtime
from api.services.vault import load_configured_keyring
from catalog import (
    Action,
    CopyState,
    ObjectInfo,
    ObjectRole,
    RecordInfo,
    UserInfo,
    audit_denied,
    get_record,
    objects_of_record,
    record_event,
    record_not_found,
    record_target,
    refresh_record_status,
    require,
    set_copy_state,
)
from dangan.errors import (
    CorruptDataError,
    DanganError,
    KeyringError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from vault import CopyStatus, ObjectReader, WrappedKey, new_object_id

__all__ = ["Original", "mark_bad_copy", "open_original"]

log = logging.getLogger(__name__)


@dataclass
class Original:
    """An original scan being read: iterate :attr:`chunks` for the plaintext.

    If iterating raises, discard everything received. The plaintext SHA-256 is checked
    before the last piece is handed out.
    """

    record: RecordInfo
    size: int
    plaintext_sha256: str
    chunks: Iterator[bytes]
    digest_algorithm: str = "sha256"  # of plaintext_sha256: sha256 or sm3


def mark_bad_copy(rt: Runtime, obj: ObjectInfo, status: CopyStatus, *, actor: str) -> None:
    """Record a copy that failed a check and queue its repair from the other store.

    A store that could not be reached says nothing about the copy: it is only logged.
    """
    if isinstance(status.error, StoreUnavailableError):
        return
    state = CopyState.missing if isinstance(status.error, NotFoundError) else CopyState.bad
    with rt.db.write() as session:
        set_copy_state(
            session,
            object_id=obj.id,
            store=status.store,
            state=state,
            actor=actor,
            reason=status.reason,
        )
        if obj.record_id is not None:
            refresh_record_status(session, obj.record_id)
        # A fresh key each time: a copy may go bad again after an earlier repair finished.
        rt.enqueue(
            session,
            VAULT_REPAIR,
            {"object_id": obj.id},
            key=f"repair:{obj.id}:{status.store}:{new_object_id()[:16]}",
            actor=actor,
        )


# What a reader may open of a record, by what it is called in messages.
CONTENT_ROLES = {
    ObjectRole.original: "original",
    ObjectRole.access_copy: "access copy",
    ObjectRole.ocr_text: "OCR text",
}


def _audit_read_failed(
    rt: Runtime, *, actor: str, target: str, object_id: str, error: DanganError
) -> None:
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="record.read_failed",
            target=target,
            outcome="error",
            detail={"object_id": object_id, "error": error.code},
        )


def open_original(
    rt: Runtime,
    archive_code: str,
    *,
    actor: str,
    user: UserInfo | None = None,
    role: ObjectRole = ObjectRole.original,
) -> Original:
    """Open the original scan of a record (or, with ``role``, its access copy or its OCR
    text) for reading, from whichever copy holds up.

    :param user: the person reading, checked by the policy; a denied attempt is audited.
        ``None`` for the operator's own scripts, audited as ``actor``.
    :raises NotFoundError: no such record, hidden from ``user``, or it has no original.
    :raises PermissionDeniedError: ``user`` may not read content.
    :raises KeyringError: the data key's wrapping key is not in the keyring.
    :raises CorruptDataError: now, when the object is marked ``damaged`` (no good copy), and
        while iterating, when both copies turn out bad (both audited).
    :raises StoreUnavailableError: while iterating, when no good copy can be reached.
    """
    target = record_target(archive_code)
    try:
        with rt.db.write() as session:
            try:
                record = get_record(session, archive_code)
            except NotFoundError:
                raise record_not_found() from None
            if user is not None:
                require(user, Action.record_read_content, record)
            original = next(
                (
                    o
                    for o in objects_of_record(session, record.id)
                    if o.role is role and not o.is_shredded
                ),
                None,
            )
            if original is None or original.wrapped_key is None:
                what = CONTENT_ROLES.get(role)
                if what is None:
                    raise NotFoundError("only a record's content can be read")
                raise NotFoundError(f"this record has no readable {what} (yet)")
            wrapped: bytes = original.wrapped_key
            if not original.is_damaged:
                record_event(
                    session,
                    actor=actor,
                    action=Action.record_read_content.value,
                    target=target,
                    detail={"object_id": original.id, "role": role.value},
                )
    except (PermissionDeniedError, NotFoundError) as exc:
        if user is not None:
            with rt.db.write() as session:
                audit_denied(session, user, Action.record_read_content, target, error=exc)
        raise
    if original.is_damaged:
        # No copy passed its last check: whatever a store holds now is not served as the
        # record until a check or a restore from backup finds a good copy again.
        error = CorruptDataError(
            f"record {archive_code}: no good copy of its {CONTENT_ROLES[role]} is left "
            "(damaged); it must be restored from a backup"
        )
        _audit_read_failed(rt, actor=actor, target=target, object_id=original.id, error=error)
        raise error

    obj = original
    primary = obj.copy_in("primary")
    vault = rt.vault

    def start() -> ObjectReader:
        return vault.read(
            obj.id,
            WrappedKey.from_bytes(wrapped),
            plaintext_sha256=obj.plaintext_sha256,
            ciphertext_sha256=primary.ciphertext_sha256 if primary else None,
            algorithm=obj.digest_algorithm,
            on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=actor),
        )

    try:
        reader = start()
    except KeyringError:
        # The keyring may have been rotated since this process loaded it (`dangan keys
        # rotate` in another process re-wraps data keys onto a key we do not know yet).
        vault.keyring = load_configured_keyring(rt.settings)
        reader = start()

    def chunks() -> Iterator[bytes]:
        try:
            with reader:
                yield from reader
        except DanganError as exc:
            _audit_read_failed(rt, actor=actor, target=target, object_id=obj.id, error=exc)
            log.error(
                "no good copy to read",
                extra={"event": "read_failed", "object_id": obj.id, "error": exc.code},
            )
            raise

    return Original(record, obj.size, obj.plaintext_sha256, chunks(), obj.digest_algorithm)
