"""Destroying a record's content for good (crypto-shredding); the record's row and code stay.

This is the mechanism disposition uses once a director has approved it (the approval flow
and certificates are ``api.services.retention``'s). Every object of the record goes, the
sidecar included, because a sealed sidecar carries the original's wrapped data key; a
*tombstone* sidecar (``api.services.sidecars``: no key, no title, no name) takes its place, so
that the stores and the keyring alone still tell that the record was disposed of. In order:

1. the wrapped data keys are destroyed in the catalog, in one transaction with the record's
   ``disposed`` status, its tombstone row (``catalog.scrub_tombstone``) and the audit event:
   from that commit on, nothing dangan holds can open any copy, wherever one may linger. A
   legal hold refuses it for everyone: checked in that same transaction, under the lock a
   hold's placement takes, whoever approved what before;
2. the tombstone sidecar is written to both stores and recorded as the record's live
   sidecar (``api.services.jobs.write_sidecar``);
3. then every copy of the shredded objects is deleted from both stores. A store that cannot
   be reached keeps its (now unreadable through the catalog) copies; they are reported so an
   operator can run this again.

Why this order: the tombstone is written only after the keys are destroyed, so the vault
never claims a disposal that did not happen (a crash or a hold before step 1 leaves a live
record and no tombstone); and the old sidecar's copies are deleted only after the tombstone
is stored, so at every moment the stores hold the record's old sealed sidecar, its tombstone,
or both (a restore then lets the tombstone win). A crash between 1 and 2 leaves the catalog
saying ``disposed`` and the stores saying live, with every copy still there; the approved
proposal is not yet marked disposed, so the next approval or retention run calls this again,
which writes the tombstone and deletes the copies. If neither store takes the tombstone, this
raises before deleting anything, for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.services.jobs import rewrite_sidecar, write_sidecar
from api.services.runtime import Runtime
from catalog import (
    Action,
    ObjectRole,
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
from dangan.errors import KeyringError, PermissionDeniedError, StoreUnavailableError

__all__ = ["DestroyReport", "certify_tombstones", "destroy_record_content"]

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

    Safe to run again: shredded objects are skipped, a missing tombstone sidecar is written,
    leftover copies are deleted.

    :param user: the director approving it, checked by the policy; ``None`` for a job that
        carries out an approval already recorded.
    :raises NotFoundError: no such record, or one hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not approve a disposition.
    :raises ConflictError: a legal hold covers the record (nothing is destroyed).
    :raises StoreUnavailableError: neither store took the tombstone sidecar (the keys are
        destroyed, no copy is deleted yet: run it again).
    """
    with rt.db.read() as session:
        record = get_record(session, archive_code)
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
        objects = objects_of_record(session, record.id)
        if get_record(session, archive_code).status is RecordStatus.disposed:
            # Run again: the live sidecar of a disposed record is its tombstone; it stays.
            objects = [o for o in objects if o.is_shredded or o.role is not ObjectRole.sidecar]
        else:
            ensure_not_held(session, record.id)
        for obj in objects:
            shred_object(session, object_id=obj.id, actor=actor)
            report.shredded.append(obj.id)
        mark_content_destroyed(session, archive_code, actor=actor)
        scrub_tombstone(session, record.id)
    # The index holds the record's terms: they go with its content.
    rt.index.delete([record.id])
    write_sidecar(rt, archive_code, actor=actor)  # the tombstone, unless there is one already
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


def certify_tombstones(rt: Runtime, record_ids: Sequence[int], *, actor: str) -> list[int]:
    """Write the tombstone sidecars of disposed records again, now naming their certificate
    (its id and the SHA-256 of the signed document), in place of the ones written at disposal.

    The certificate is issued after the disposal it attests, so the first tombstone cannot
    name it. A store out of reach leaves a tombstone without it (the catalog has it); that is
    logged and the rest go on.

    :returns: the records whose tombstone could not be written again.
    :raises KeyringError: the vault has no keyring.
    """
    keyring = rt.vault.keyring
    if keyring is None:
        raise KeyringError("the vault was opened without a keyring")
    failed: list[int] = []
    for record_id in record_ids:
        try:
            rewrite_sidecar(rt, record_id, keyring, actor=actor)
        except StoreUnavailableError as exc:
            log.warning(
                "a tombstone sidecar does not name its certificate",
                extra={
                    "event": "disposal.tombstone_uncertified",
                    "record_id": record_id,
                    "reason": exc.message,
                },
            )
            failed.append(record_id)
    return failed
