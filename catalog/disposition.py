"""Retention schedules and disposition proposals: which records are due, and what a director
decided about each (``docs/retention.md``).

A business type's retention period (``business_types.retention``: 永久, 30年, 10年) is counted
from its trigger: the record's year (``record_date``) or the student's graduation year
(``graduation``, from ``student_graduations``). A record kept N years from year T is due from
1 January of T + N + 1: the period runs out at the end of year T + N. Permanent (永久) records
are never due; a record counted from graduation whose student has no graduation year on file
is not due either (it waits for one).

:func:`open_proposals` opens at most one *open* proposal per record (a unique column,
``open_record_id``, holds it on both databases), never for a held record, and withdraws open
proposals whose record a hold has covered since. This module decides no permission.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.holds import HoldTarget, ensure_not_held, hold_matcher, lock_holds
from catalog.models import BusinessType, Record, RecordStatus, Retention, SecurityClass, utcnow
from catalog.retention_models import (
    DestructionCertificate,
    DispositionProposal,
    ProposalState,
    RetentionSchedule,
    RetentionTrigger,
    StudentGraduation,
)
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "DEFAULT_TRIGGERS",
    "CertificateInfo",
    "ProposalInfo",
    "ScanReport",
    "ScheduleInfo",
    "add_certificate",
    "approve_proposal",
    "due_year",
    "get_certificate",
    "get_graduation_year",
    "get_proposals",
    "list_certificates",
    "list_proposals",
    "list_schedules",
    "mark_proposal_disposed",
    "open_proposals",
    "proposals_to_finish",
    "reject_proposal",
    "scrub_tombstone",
    "set_graduation_year",
    "set_schedule",
    "withdraw_proposal",
]

#: The office's types whose periods run from the student's graduation (学生个人档案材料);
#: every other type counts from the record's year. ``dangan retention set`` overrides either.
DEFAULT_TRIGGERS: Final[Mapping[str, RetentionTrigger]] = MappingProxyType(
    {
        "休学": RetentionTrigger.graduation,
        "复学": RetentionTrigger.graduation,
        "处分决定": RetentionTrigger.graduation,
        "奖励": RetentionTrigger.graduation,
    }
)
# Records that hold content worth disposing of: intake finished (two copies, or one waiting
# for its twin). Unfinished intakes and disposed records are never proposed.
_DISPOSABLE: Final = (RecordStatus.archived.value, RecordStatus.under_replicated.value)
# A rejected proposal is not raised again for a year: the director has just decided to keep it.
_REJECTION_STANDS: Final = dt.timedelta(days=365)
_MAX_REASON: Final = 500


def due_year(trigger_year: int, retention: Retention) -> int | None:
    """The first year a record may be disposed of; ``None`` for permanent records."""
    years = retention.years
    return None if years is None else trigger_year + years + 1


@dataclass(frozen=True)
class ScheduleInfo:
    business_type: str
    retention: Retention
    trigger: RetentionTrigger
    trigger_is_default: bool  # no override stored: the office's default for this type
    active: bool


def _trigger_of(name: str, stored: str | None) -> RetentionTrigger:
    if stored is not None:
        return RetentionTrigger(stored)
    return DEFAULT_TRIGGERS.get(name, RetentionTrigger.record_date)


def list_schedules(session: Session) -> list[ScheduleInfo]:
    """Every business type's retention period and trigger."""
    rows = session.execute(
        select(BusinessType, RetentionSchedule.trigger)
        .outerjoin(RetentionSchedule, RetentionSchedule.business_type_id == BusinessType.id)
        .order_by(BusinessType.id)
    )
    return [
        ScheduleInfo(
            bt.name, Retention(bt.retention), _trigger_of(bt.name, trig), trig is None, bt.active
        )
        for bt, trig in rows
    ]


def set_schedule(
    session: Session,
    business_type: str,
    *,
    retention: str | None = None,
    trigger: str | None = None,
    actor: str,
) -> ScheduleInfo:
    """Change a type's retention period and/or trigger, audited as ``retention.schedule``.

    :raises NotFoundError: unknown type.
    :raises InvalidInputError: an unknown period or trigger, or neither given.
    """
    bt = session.scalar(select(BusinessType).where(BusinessType.name == business_type))
    if bt is None:
        raise NotFoundError(f"unknown business type {business_type!r}")
    if retention is None and trigger is None:
        raise InvalidInputError("give a retention period, a trigger, or both")
    detail: dict[str, str] = {}
    if retention is not None:
        try:
            bt.retention = Retention(retention).value
        except ValueError:
            raise InvalidInputError("retention is one of 永久, 30年, 10年") from None
        detail["retention"] = bt.retention
    if trigger is not None:
        try:
            trig = RetentionTrigger(trigger)
        except ValueError:
            names = ", ".join(t.value for t in RetentionTrigger)
            raise InvalidInputError(f"a trigger is one of {names}") from None
        row = session.get(RetentionSchedule, bt.id)
        if row is None:
            session.add(RetentionSchedule(business_type_id=bt.id, trigger=trig.value))
        else:
            row.trigger, row.updated_at = trig.value, utcnow()
        detail["trigger"] = trig.value
    session.flush()
    record_event(
        session,
        actor=actor,
        action="retention.schedule",
        target=f"business_type:{bt.name}",
        detail=detail,
    )
    return next(s for s in list_schedules(session) if s.business_type == bt.name)


def set_graduation_year(session: Session, student_no: str, year: int, *, actor: str) -> None:
    """Record the year a student graduated, audited as ``student.graduation``.

    :raises InvalidInputError: an empty or too long number, an implausible year.
    """
    student_no = student_no.strip()
    if not student_no or len(student_no) > 32:
        raise InvalidInputError("a student number has 1 to 32 characters")
    if not 1949 <= year <= 9999:
        raise InvalidInputError("a graduation year lies from 1949 on")
    row = session.get(StudentGraduation, student_no)
    if row is None:
        session.add(StudentGraduation(student_no=student_no, graduation_year=year))
    else:
        row.graduation_year, row.updated_at = year, utcnow()
    session.flush()
    record_event(
        session,
        actor=actor,
        action="student.graduation",
        target=f"student:{student_no}",
        detail={"graduation_year": year},
    )


def get_graduation_year(session: Session, student_no: str) -> int | None:
    return session.scalar(
        select(StudentGraduation.graduation_year).where(StudentGraduation.student_no == student_no)
    )


@dataclass(frozen=True)
class ProposalInfo:
    id: int
    record_id: int
    archive_code: str
    business_type: str
    year: int
    security_class: SecurityClass
    record_status: RecordStatus
    state: ProposalState
    retention: Retention
    trigger: RetentionTrigger
    trigger_year: int
    due_year: int
    proposed_by: str
    proposed_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    disposed_at: dt.datetime | None
    certificate_id: str | None


def _proposals(session: Session, *where: ColumnElement[bool]) -> list[ProposalInfo]:
    stmt = (
        select(DispositionProposal, Record, BusinessType.name)
        .join(Record, Record.id == DispositionProposal.record_id)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(*where)
        .order_by(DispositionProposal.id)
    )
    return [
        ProposalInfo(
            id=p.id,
            record_id=r.id,
            archive_code=r.archive_code,
            business_type=type_name,
            year=r.year,
            security_class=SecurityClass(r.security_class),
            record_status=RecordStatus(r.status),
            state=ProposalState(p.state),
            retention=Retention(p.retention),
            trigger=RetentionTrigger(p.trigger),
            trigger_year=p.trigger_year,
            due_year=p.due_year,
            proposed_by=p.proposed_by,
            proposed_at=p.proposed_at,
            decided_by=p.decided_by,
            decided_at=p.decided_at,
            decision_reason=p.decision_reason,
            disposed_at=p.disposed_at,
            certificate_id=p.certificate_id,
        )
        for p, r, type_name in session.execute(stmt)
    ]


def list_proposals(
    session: Session,
    *,
    states: Iterable[ProposalState] = (ProposalState.open,),
    visible: ColumnElement[bool] | None = None,
) -> list[ProposalInfo]:
    """Proposals in these states, oldest first.

    :param visible: a where-clause on records (``catalog.policy.visible_records_filter``), so
        that a person sees only proposals about records they may see.
    """
    return _proposals(
        session,
        DispositionProposal.state.in_([s.value for s in states]),
        visible if visible is not None else true(),
    )


def get_proposals(session: Session, ids: Sequence[int]) -> list[ProposalInfo]:
    """The proposals with these ids, in the order given.

    :raises NotFoundError: one of them does not exist.
    """
    found = {p.id: p for p in _proposals(session, DispositionProposal.id.in_(list(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"no disposition proposal {missing[0]}")
    return [found[i] for i in ids]


@dataclass
class ScanReport:
    """What one retention scan found, by archive code."""

    opened: list[ProposalInfo] = field(default_factory=list)
    already_open: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    recently_rejected: list[str] = field(default_factory=list)
    awaiting_graduation_year: list[str] = field(default_factory=list)


def open_proposals(session: Session, *, actor: str, now: dt.datetime | None = None) -> ScanReport:
    """Propose every due record for disposition, in the caller's transaction.

    Idempotent: a record with an open proposal gets no second one, a held record none at all
    (an open proposal of a record held since is withdrawn), and a record a director decided to
    keep is not proposed again within a year of that decision.
    """
    now = now or utcnow()
    lock_holds(session)
    report = ScanReport()
    covering = hold_matcher(session)
    graduation: dict[str, int] = {
        no: year
        for no, year in session.execute(
            select(StudentGraduation.student_no, StudentGraduation.graduation_year)
        )
    }
    open_now: dict[int, int] = {
        rec: pid
        for rec, pid in session.execute(
            select(DispositionProposal.record_id, DispositionProposal.id).where(
                DispositionProposal.state == ProposalState.open.value
            )
        )
    }
    rejected_since = set(
        session.scalars(
            select(DispositionProposal.record_id).where(
                DispositionProposal.state == ProposalState.rejected.value,
                DispositionProposal.decided_at >= now - _REJECTION_STANDS,
            )
        )
    )
    schedules = {s.business_type: s for s in list_schedules(session)}
    rows = session.execute(
        select(
            Record.id,
            Record.archive_code,
            Record.year,
            Record.student_no,
            Record.business_type_id,
            BusinessType.name,
        )
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(
            Record.status.in_(_DISPOSABLE),
            BusinessType.retention != Retention.permanent.value,
        )
        .order_by(Record.id)
    )
    for rec_id, code, year, student_no, bt_id, type_name in rows:
        schedule = schedules[type_name]
        if schedule.trigger is RetentionTrigger.graduation:
            trigger_year = graduation.get(student_no) if student_no else None
            if trigger_year is None:
                report.awaiting_graduation_year.append(code)
                continue
        else:
            trigger_year = year
        first_year = due_year(trigger_year, schedule.retention)
        if first_year is None or now.year < first_year:
            continue
        if covering(HoldTarget(rec_id, student_no, bt_id, year)):
            report.held.append(code)
            if rec_id in open_now:
                withdraw_proposal(session, open_now[rec_id], reason="legal hold", actor=actor)
                report.withdrawn.append(code)
            continue
        if rec_id in open_now:
            report.already_open.append(code)
            continue
        if rec_id in rejected_since:
            report.recently_rejected.append(code)
            continue
        proposal = DispositionProposal(
            record_id=rec_id,
            open_record_id=rec_id,
            state=ProposalState.open.value,
            retention=schedule.retention.value,
            trigger=schedule.trigger.value,
            trigger_year=trigger_year,
            due_year=first_year,
            proposed_by=actor,
            proposed_at=now,
        )
        session.add(proposal)
        session.flush()
        record_event(
            session,
            actor=actor,
            action="disposition.propose",
            target=f"record:{code}",
            detail={"proposal_id": proposal.id, "due_year": first_year},
        )
        report.opened.extend(get_proposals(session, [proposal.id]))
    return report


def _open_row(session: Session, proposal_id: int) -> DispositionProposal:
    row = session.get(DispositionProposal, proposal_id)
    if row is None:
        raise NotFoundError(f"no disposition proposal {proposal_id}")
    if row.state != ProposalState.open.value:
        raise ConflictError(f"disposition proposal {proposal_id} is {row.state}, not open")
    return row


def _decision_reason(reason: str | None) -> str | None:
    if reason is not None and len(reason) > _MAX_REASON:
        raise InvalidInputError(f"a reason has at most {_MAX_REASON} characters")
    return reason.strip() or None if reason is not None else None


def _decide(
    session: Session,
    proposal_id: int,
    state: ProposalState,
    action: str,
    *,
    actor: str,
    reason: str | None,
    now: dt.datetime | None,
) -> ProposalInfo:
    row = _open_row(session, proposal_id)
    row.state = state.value
    row.open_record_id = None
    row.decided_by, row.decided_at = actor, now or utcnow()
    row.decision_reason = _decision_reason(reason)
    session.flush()
    info = get_proposals(session, [proposal_id])[0]
    record_event(
        session,
        actor=actor,
        action=action,
        target=f"record:{info.archive_code}",
        detail={"proposal_id": proposal_id},
    )
    return info


def approve_proposal(
    session: Session,
    proposal_id: int,
    *,
    actor: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> ProposalInfo:
    """Approve an open proposal (``disposition.approve``); the disposal is carried out next.

    :raises NotFoundError: no such proposal.
    :raises ConflictError: it is not open, or a legal hold covers its record.
    """
    row = _open_row(session, proposal_id)
    ensure_not_held(session, row.record_id)
    return _decide(
        session,
        proposal_id,
        ProposalState.approved,
        "disposition.approve",
        actor=actor,
        reason=reason,
        now=now,
    )


def reject_proposal(
    session: Session,
    proposal_id: int,
    *,
    actor: str,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> ProposalInfo:
    """Keep the record: reject an open proposal (``disposition.reject``).

    :raises NotFoundError: no such proposal.
    :raises ConflictError: it is not open.
    """
    return _decide(
        session,
        proposal_id,
        ProposalState.rejected,
        "disposition.reject",
        actor=actor,
        reason=reason,
        now=now,
    )


def withdraw_proposal(
    session: Session, proposal_id: int, *, reason: str, actor: str
) -> ProposalInfo:
    """Withdraw an open or approved proposal whose record a hold now covers."""
    row = session.get(DispositionProposal, proposal_id)
    if row is None:
        raise NotFoundError(f"no disposition proposal {proposal_id}")
    if row.state not in (ProposalState.open.value, ProposalState.approved.value):
        raise ConflictError(f"disposition proposal {proposal_id} is {row.state}")
    row.state = ProposalState.withdrawn.value
    row.open_record_id = None
    row.decision_reason = reason
    session.flush()
    info = get_proposals(session, [proposal_id])[0]
    record_event(
        session,
        actor=actor,
        action="disposition.withdraw",
        target=f"record:{info.archive_code}",
        detail={"proposal_id": proposal_id},
    )
    return info


def mark_proposal_disposed(
    session: Session, proposal_id: int, *, now: dt.datetime | None = None
) -> None:
    """Note that an approved proposal's record has been disposed of."""
    row = session.get(DispositionProposal, proposal_id)
    if row is None:
        raise NotFoundError(f"no disposition proposal {proposal_id}")
    if row.state == ProposalState.approved.value:
        row.state = ProposalState.disposed.value
        row.disposed_at = now or utcnow()
        session.flush()


def proposals_to_finish(session: Session) -> list[ProposalInfo]:
    """Approved proposals not yet carried out, and disposed ones without a certificate: what
    an interrupted approval left for the next run to finish."""
    return _proposals(
        session,
        (DispositionProposal.state == ProposalState.approved.value)
        | (
            (DispositionProposal.state == ProposalState.disposed.value)
            & DispositionProposal.certificate_id.is_(None)
        ),
    )


def scrub_tombstone(session: Session, record_id: int) -> None:
    """Clear what a disposed record's row said about the student and the content.

    The row stays as the tombstone: archive code, type, year, class, dates, size, hash, the
    paper original's location (destroyed by hand) and the student number (so the office can
    still answer whether a student's records were destroyed). Name, class, title, tags, notes
    and the upload's file name go with the content.
    """
    row = session.get(Record, record_id)
    if row is None:
        raise NotFoundError("no such record")
    row.title = ""
    row.student_name = None
    row.student_class = None
    row.upload_name = None
    row.tags = None
    row.notes = None
    session.flush()


@dataclass(frozen=True)
class CertificateInfo:
    id: str
    issued_at: dt.datetime
    issued_by: str
    key_id: str
    document: str  # the signed JSON, exactly as issued


def add_certificate(
    session: Session,
    *,
    certificate_id: str,
    issued_at: dt.datetime,
    issued_by: str,
    key_id: str,
    document: str,
    proposal_ids: Sequence[int],
    document_sha256: str,
) -> CertificateInfo:
    """Keep a signed certificate and name it on its proposals, audited as
    ``disposition.certificate`` (the document's SHA-256 goes into the trail)."""
    session.add(
        DestructionCertificate(
            id=certificate_id,
            issued_at=issued_at,
            issued_by=issued_by,
            key_id=key_id,
            document=document,
        )
    )
    session.flush()
    for pid in proposal_ids:
        row = session.get(DispositionProposal, pid)
        if row is None:
            raise NotFoundError(f"no disposition proposal {pid}")
        row.certificate_id = certificate_id
    session.flush()
    record_event(
        session,
        actor=issued_by,
        action="disposition.certificate",
        target=f"certificate:{certificate_id}",
        detail={"records": len(proposal_ids), "sha256": document_sha256, "key_id": key_id},
    )
    return get_certificate(session, certificate_id)


def get_certificate(session: Session, certificate_id: str) -> CertificateInfo:
    """:raises NotFoundError: no such certificate."""
    row = session.get(DestructionCertificate, certificate_id)
    if row is None:
        raise NotFoundError("no such certificate")
    return CertificateInfo(row.id, row.issued_at, row.issued_by, row.key_id, row.document)


def list_certificates(session: Session) -> list[CertificateInfo]:
    rows = session.scalars(
        select(DestructionCertificate).order_by(DestructionCertificate.issued_at)
    )
    return [CertificateInfo(r.id, r.issued_at, r.issued_by, r.key_id, r.document) for r in rows]
