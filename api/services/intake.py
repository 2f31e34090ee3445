"""Intake: a scan becomes a record with two encrypted, verified copies.

The vault is written first (under a fresh object id), then one catalog transaction creates the
record, remembers the object and its copies, sets the record's status and queues what is owed
(replication when a store was down, the metadata sidecar). If that transaction fails, the copies
just written are deleted: there is never an orphan object nor a record without its scan.

The file is streamed in ``vault.CHUNK`` pieces and never read whole. Nothing here logs a file
name, a title or a name: they hold students' names.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from api.services.jobs import VAULT_SIDECAR, discard_on_error, queue_replication, written
from api.services.runtime import Runtime
from catalog import (
    Action,
    NewRecord,
    ObjectRole,
    RecordInfo,
    UserInfo,
    add_object,
    audit_denied,
    create_record,
    get_business_type,
    refresh_record_status,
    require,
)
from dangan.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from vault import CHUNK, new_object_id

__all__ = ["MEDIA_TYPES", "ingest", "sniff_media_type"]

log = logging.getLogger(__name__)

# The scans an office makes, told apart by their first bytes (never by the file name).
MEDIA_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff_media_type(head: bytes) -> str:
    """The media type of a scan from its first bytes.

    :raises InvalidInputError: not a PDF, PNG, JPEG or TIFF (an empty file included).
    """
    for magic, media_type in MEDIA_TYPES:
        if head.startswith(magic):
            return media_type
    raise InvalidInputError("not a scan dangan takes: PDF, PNG, JPEG or TIFF")


def _chunks(stream: BinaryIO, first: bytes) -> Iterator[bytes]:
    yield first
    while piece := stream.read(CHUNK):
        yield piece


def ingest(
    rt: Runtime,
    source: Path | BinaryIO,
    new: NewRecord,
    *,
    actor: str,
    user: UserInfo | None = None,
) -> RecordInfo:
    """Store a scan in both stores and create its record; return the record.

    :param source: a path, or a binary stream the caller opened (and closes).
    :param actor: the name the audit trail records.
    :param user: the person intake is done for, checked by the policy
        (:attr:`Action.record_create` on the record's security class); ``None`` for the
        operator's own scripts, audited as ``actor``.
    :raises InvalidInputError: not a scan, unknown business type, a bad year or legacy code.
    :raises PermissionDeniedError: ``user`` may not create such a record.
    :raises ConflictError: the legacy archive code is taken.
    :raises StoreUnavailableError: neither store took the copy; nothing is left behind.
    """
    with rt.db.read() as session:
        try:
            btype = get_business_type(session, new.business_type)
        except NotFoundError:
            raise InvalidInputError(f"unknown business type {new.business_type!r}") from None
    if user is not None:
        try:
            require(
                user,
                Action.record_create,
                security_class=new.security_class or btype.default_security_class,
            )
        except PermissionDeniedError as exc:
            with rt.db.write() as session:
                audit_denied(session, user, Action.record_create, None, error=exc)
            raise
    if isinstance(source, Path):
        try:
            with source.open("rb") as stream:
                return _ingest_stream(rt, stream, new, actor=actor, user=user)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {source}: {exc.strerror}") from None
    return _ingest_stream(rt, source, new, actor=actor, user=user)


def _ingest_stream(
    rt: Runtime, stream: BinaryIO, new: NewRecord, *, actor: str, user: UserInfo | None
) -> RecordInfo:
    first = stream.read(CHUNK)
    sniff_media_type(first)
    vault = rt.vault
    object_id = new_object_id()
    result = vault.write(object_id, _chunks(stream, first))
    with discard_on_error(vault, object_id), rt.db.write() as session:
        record = create_record(session, new, actor=actor, actor_id=user.id if user else None)
        add_object(
            session,
            object_id=object_id,
            record_id=record.id,
            role=ObjectRole.original,
            **written(result),
        )
        status = refresh_record_status(session, record.id)
        queue_replication(rt, session, object_id, result, actor=actor)
        rt.enqueue(
            session,
            VAULT_SIDECAR,
            {"archive_code": record.archive_code},
            key=f"sidecar:{record.archive_code}",
            actor=actor,
        )
    log.info(
        "record ingested",
        extra={
            "event": "record_ingest",
            "record_id": record.id,
            "archive_code": record.archive_code,
            "object_id": object_id,
            "status": status.value,
        },
    )
    return dataclasses.replace(record, status=status)
