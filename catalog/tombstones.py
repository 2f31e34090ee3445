"""A disposed record's tombstone as the vault keeps it (``docs/retention.md``, "Tombstones").

Disposal shreds every object of a record, its sidecar included; the catalog row stays as the
tombstone (``scrub_tombstone``), and a *tombstone sidecar* written from it goes to the stores,
so that the stores and the keyring alone still tell that the record was disposed of, on whose
approval, and that its archive code is taken. :func:`disposal_facts` gathers what that sidecar
states about the disposal; :func:`recover_disposal` writes what one says back into a catalog
restored from a snapshot older than the disposal.

Decides no permission and touches no store. The facts hold no title, no name and no key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.codes import claim_code, parse_code
from catalog.disposition import scrub_tombstone
from catalog.models import (
    ObjectRole,
    Record,
    RecordStatus,
    SecurityClass,
    Stage,
    VaultObject,
    utcnow,
)
from catalog.objects import add_object, shred_object
from catalog.rebuild import RecoveredObject, recovered_business_type
from catalog.retention_models import DestructionCertificate, DispositionProposal, ProposalState

__all__ = [
    "DisposalFacts",
    "RecoveredTombstone",
    "TombstoneOutcome",
    "disposal_facts",
    "recover_disposal",
]


@dataclass(frozen=True)
class DisposalFacts:
    """What the catalog knows of a record's disposal: when its keys were destroyed, the
    proposal it carried out (if any: a disposal may be ordered without one) and the
    certificate (once issued)."""

    disposed_at: dt.datetime | None = None
    proposal_id: int | None = None
    proposed_by: str | None = None
    proposed_at: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    certificate_id: str | None = None
    certificate_sha256: str | None = None  # of the signed JSON document, as issued


def disposal_facts(session: Session, record_id: int) -> DisposalFacts:
    """The disposal of a record, from its shredded original and its latest approved or
    disposed proposal."""
    disposed_at = session.scalar(
        select(func.max(VaultObject.shredded_at)).where(
            VaultObject.record_id == record_id,
            VaultObject.role == ObjectRole.original.value,
        )
    )
    proposal = session.scalars(
        select(DispositionProposal)
        .where(
            DispositionProposal.record_id == record_id,
            DispositionProposal.state.in_(
                [ProposalState.approved.value, ProposalState.disposed.value]
            ),
        )
        .order_by(DispositionProposal.id.desc())
        .limit(1)
    ).first()
    if proposal is None:
        return DisposalFacts(disposed_at=disposed_at)
    cert = (
        session.get(DestructionCertificate, proposal.certificate_id)
        if proposal.certificate_id
        else None
    )
    return DisposalFacts(
        disposed_at=disposed_at or proposal.disposed_at,
        proposal_id=proposal.id,
        proposed_by=proposal.proposed_by,
        proposed_at=proposal.proposed_at,
        approved_by=proposal.decided_by,
        approved_at=proposal.decided_at,
        certificate_id=cert.id if cert else None,
        # add_certificate's document_sha256: the SHA-256 of the UTF-8 document as issued
        certificate_sha256=hashlib.sha256(cert.document.encode("utf-8")).hexdigest()
        if cert
        else None,
    )


@dataclass(frozen=True)
class RecoveredTombstone:
    """A disposed record as its tombstone sidecar states it: what the catalog row keeps."""

    archive_code: str
    year: int
    business_type: str
    serial: int
    security_class: SecurityClass
    student_no: str | None
    paper_location: str | None
    created_at: dt.datetime
    size: int | None
    plaintext_sha256: str | None
    page_count: int
    facts: DisposalFacts


@dataclass(frozen=True)
class TombstoneOutcome:
    record_id: int
    archive_code: str
    created: bool  # the snapshot did not know the record at all
    newly_disposed: bool  # the snapshot knew it, not yet disposed of
    shredded: tuple[str, ...]  # its objects the snapshot still held live
    changed: bool


def _tombstone_row(session: Session, tomb: RecoveredTombstone, *, actor: str) -> Record:
    code = parse_code(tomb.archive_code)
    bt_id = recovered_business_type(session, tomb.business_type, tomb.security_class, actor=actor)
    claim_code(session, str(code), now=max(utcnow(), tomb.created_at))  # never handed out again
    record = Record(
        archive_code=tomb.archive_code,
        year=tomb.year,
        business_type_id=bt_id,
        serial=tomb.serial,
        title="",
        student_no=tomb.student_no,
        security_class=tomb.security_class.value,
        paper_location=tomb.paper_location,
        status=RecordStatus.disposed.value,
        size=tomb.size,
        plaintext_sha256=tomb.plaintext_sha256,
        page_count=tomb.page_count,
        stage=Stage.done.value,
        created_at=tomb.created_at,
        created_by=None,
    )
    session.add(record)
    session.flush()
    return record


def recover_disposal(
    session: Session,
    tomb: RecoveredTombstone,
    sidecar: RecoveredObject,
    *,
    actor: str,
    snapshot: str,
) -> TombstoneOutcome:
    """Make the catalog say what a tombstone sidecar says (in the caller's transaction).

    A record the catalog lacks is created as a tombstone row, its code claimed (the counter
    moves past it). One it has becomes ``disposed``: every live object but the tombstone is
    shredded (the copies are gone from the stores, or the caller deletes them), the row is
    scrubbed, and an open or approved proposal of it is closed as disposed (it is not carried
    out again; the next retention run certifies it, since the certificate, if any, was issued
    after the snapshot). The tombstone becomes the record's live sidecar. One
    ``record.recover`` event, carrying the disposal's facts, is written when anything changed.

    :param snapshot: the id of the snapshot restored, for the audit event.
    :raises InvalidInputError: the archive code is malformed.
    """
    record = session.scalars(select(Record).where(Record.archive_code == tomb.archive_code)).first()
    created = record is None
    if record is None:
        record = _tombstone_row(session, tomb, actor=actor)
    newly_disposed = not created and record.status != RecordStatus.disposed.value
    live = session.scalars(
        select(VaultObject.id).where(
            VaultObject.record_id == record.id,
            VaultObject.wrapped_key.is_not(None),
            VaultObject.id != sidecar.object_id,
        )
    ).all()
    for object_id in live:
        shred_object(session, object_id=object_id, actor=actor)
    if newly_disposed:
        record.status = RecordStatus.disposed.value
        scrub_tombstone(session, record.id)
    added = session.get(VaultObject, sidecar.object_id) is None and any(
        c.ok for c in sidecar.copies
    )
    if added:
        add_object(
            session,
            object_id=sidecar.object_id,
            record_id=record.id,
            role=ObjectRole.sidecar,
            key_id=sidecar.key_id,
            wrapped_key=sidecar.wrapped_key,
            size=sidecar.size,
            plaintext_sha256=sidecar.plaintext_sha256,
            copies=sidecar.copies,
            digest_algorithm=sidecar.digest_algorithm,
        )
    facts = tomb.facts
    closed: list[int] = []
    for proposal in session.scalars(
        select(DispositionProposal).where(
            DispositionProposal.record_id == record.id,
            DispositionProposal.state.in_([ProposalState.open.value, ProposalState.approved.value]),
        )
    ):
        proposal.state = ProposalState.disposed.value
        proposal.open_record_id = None
        proposal.decided_by = proposal.decided_by or facts.approved_by
        proposal.decided_at = proposal.decided_at or facts.approved_at
        proposal.disposed_at = facts.disposed_at or utcnow()
        closed.append(proposal.id)
    session.flush()
    changed = created or newly_disposed or bool(live) or added or bool(closed)
    if changed:
        record_event(
            session,
            actor=actor,
            action="record.recover",
            target=f"record:{record.archive_code}",
            detail={
                "record_id": record.id,
                "created": created,
                "status": RecordStatus.disposed.value,
                "objects": [sidecar.object_id] if added else [],
                "shredded": list(live),
                "proposals_closed": closed,
                "disposal": {
                    "disposed_at": _stamp(facts.disposed_at),
                    "proposal_id": facts.proposal_id,
                    "proposed_by": facts.proposed_by,
                    "approved_by": facts.approved_by,
                    "approved_at": _stamp(facts.approved_at),
                    "certificate_id": facts.certificate_id,
                    "certificate_sha256": facts.certificate_sha256,
                },
                "snapshot": snapshot,
            },
        )
    return TombstoneOutcome(
        record_id=record.id,
        archive_code=record.archive_code,
        created=created,
        newly_disposed=newly_disposed,
        shredded=tuple(live),
        changed=changed,
    )


def _stamp(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat() if when else None
