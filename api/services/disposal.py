"""Destroying a record's content for good (crypto-shredding); the record's row and code stay.

This is the mechanism disposition uses once a director has approved it (the approval flow
and certificates are ``api.services.retention``'s). Every object of the record goes, the
sidecar included, because a sealed sidecar carries the original's wrapped data key:

1. the wrapped data keys are destroyed in the catalog, in one transaction with the record's
   ``disposed`` status, its tombstone (``catalog.scrub_tombstone``) and the audit event: from
   that commit on, nothing dangan holds can open any copy, wherever one may linger. A legal
   hold refuses it for everyone: checked in that same transaction, under the lock a hold's
   placement takes, whoever approved what before;
2. then every copy is deleted from both stores. A store that cannot be reached keeps its
   (now unreadable) copies; they are reported so an operator can run this again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from api.services.runtime import Runtime
from catalog import (
    Action,
    RecordStatus,
    UserInfo,
    audit_denied,
    ensure_not_held,
    get_record,
    mark_content_destroyed,
    objects_of_record,
    require,
    scrub_tombstone,
    shred_object,
)
from dangan.errors import PermissionDeniedError, StoreUnavailableError

__all__ = ["DestroyReport", "destroy_record_content"]

log = logging.getLogger(__name__)


@dataclass
class DestroyReport:
    """What was destroyed, and the objects whose copies a store still holds (unreadable)."""

    archive_code: str
    shredded: list[str] = field(default_factory=list)
    copies_left: list[str] = field(default_factory=list)


def destroy_record_content(
    rt: Runtime, archive_code: str, *, actor: str, user: UserInfo | None = None
) -> DestroyReport:
    """Shred every object of a record and delete their copies; the record becomes ``disposed``.

    Safe to run again: shredded objects are skipped, leftover copies are deleted.

    :param user: the director approving it, checked by the policy; ``None`` for a job that
        carries out an approval already recorded.
    :raises NotFoundError: no such record, or one hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not approve a disposition.
    :raises ConflictError: a legal hold covers the record (nothing is destroyed).
    """
    with rt.db.read() as session:
        record = get_record(session, archive_code)
        objects = objects_of_record(session, record.id)
    if user is not None:
        try:
            require(user, Action.disposition_approve, record)
        except PermissionDeniedError as exc:
            with rt.db.write() as session:
                audit_denied(
                    session, user, Action.disposition_approve, f"record:{archive_code}", error=exc
                )
            raise
    report = DestroyReport(archive_code)
    with rt.db.write() as session:
        if get_record(session, archive_code).status is not RecordStatus.disposed:
            ensure_not_held(session, record.id)
        for obj in objects:
            shred_object(session, object_id=obj.id, actor=actor)
            report.shredded.append(obj.id)
        mark_content_destroyed(session, archive_code, actor=actor)
        scrub_tombstone(session, record.id)
    # The index holds the record's terms: they go with its content.
    rt.index.delete([record.id])
    for obj in objects:
        try:
            rt.vault.delete_object(obj.id)
        except StoreUnavailableError:
            log.warning(
                "copies of a shredded object remain in an unreachable store",
                extra={"event": "disposal.copies_left", "object_id": obj.id},
            )
            report.copies_left.append(obj.id)
    return report
