"""Findings of the sampling audit: filed against a sampled record with a severity, an owner
and a deadline; answered by the owner; closed with evidence (``docs/sampling.md``).

Every change is audited in the same transaction, about the record (``record:<code>``), so the
trail others read hides a contract record's findings as it hides the record. The caller has
asked the policy; this module checks the finding's own state (an answered finding is not
answered again by someone else, a closed one is not closed twice, closing needs evidence).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import Record, RecordStatus, SecurityClass, User, utcnow
from catalog.policy import record_target, visible_records_filter
from catalog.sampling_models import (
    FindingSeverity,
    FindingState,
    SamplingAudit,
    SamplingEvidence,
    SamplingFinding,
    SamplingItem,
)
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "EvidenceFile",
    "EvidenceInfo",
    "FindingInfo",
    "answer_finding",
    "close_finding",
    "count_overdue_findings",
    "file_finding",
    "findings_to_remind",
    "get_finding",
    "list_findings",
    "mark_reminded",
]

_SUMMARY_MAX = 2000
_NOTE_MAX = 4000


@dataclass(frozen=True)
class EvidenceFile:
    """A file just written to the vault as evidence (the object is the record's)."""

    object_id: str
    file_name: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class EvidenceInfo:
    id: int
    kind: str  # "answer" or "close"
    note: str
    object_id: str | None
    file_name: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    added_by: str
    added_at: dt.datetime


@dataclass(frozen=True)
class FindingInfo:
    id: int
    item_id: int
    audit_id: int
    quarter: str
    record_id: int
    archive_code: str
    security_class: SecurityClass
    record_status: RecordStatus
    created_by: int | None
    severity: FindingSeverity
    summary: str
    owner_id: int
    owner: str
    state: FindingState
    opened_by: str
    opened_at: dt.datetime
    due_at: dt.datetime
    answered_at: dt.datetime | None
    closed_by: str | None
    closed_at: dt.datetime | None
    reminded_at: dt.datetime | None
    evidence: tuple[EvidenceInfo, ...]

    # What catalog.policy.require reads of a record (RecordLike).
    @property
    def status(self) -> str:
        return self.record_status.value

    def is_overdue(self, now: dt.datetime) -> bool:
        """Not closed, and past its deadline."""
        return self.state is not FindingState.closed and now > self.due_at


def _evidence(session: Session, finding_id: int) -> tuple[EvidenceInfo, ...]:
    rows = session.scalars(
        select(SamplingEvidence)
        .where(SamplingEvidence.finding_id == finding_id)
        .order_by(SamplingEvidence.id)
    )
    return tuple(
        EvidenceInfo(
            e.id,
            e.kind,
            e.note,
            e.object_id,
            e.file_name,
            e.content_type,
            e.size,
            e.sha256,
            e.added_by,
            e.added_at,
        )
        for e in rows
    )


def _query(who: UserInfo | None) -> Select[SamplingFinding, SamplingItem, str, Record, str]:
    stmt = (
        select(SamplingFinding, SamplingItem, SamplingAudit.quarter, Record, User.name)
        .join(SamplingItem, SamplingItem.id == SamplingFinding.item_id)
        .join(SamplingAudit, SamplingAudit.id == SamplingItem.audit_id)
        .join(Record, Record.id == SamplingItem.record_id)
        .join(User, User.id == SamplingFinding.owner_id)
    )
    if who is not None:
        stmt = stmt.where(visible_records_filter(who))
    return stmt


def _info(
    session: Session, row: Row[SamplingFinding, SamplingItem, str, Record, str]
) -> FindingInfo:
    finding, item, quarter, record, owner = row
    return FindingInfo(
        id=finding.id,
        item_id=item.id,
        audit_id=item.audit_id,
        quarter=str(quarter),
        record_id=record.id,
        archive_code=record.archive_code,
        security_class=SecurityClass(record.security_class),
        record_status=RecordStatus(record.status),
        created_by=record.created_by,
        severity=FindingSeverity(finding.severity),
        summary=finding.summary,
        owner_id=finding.owner_id,
        owner=str(owner),
        state=FindingState(finding.state),
        opened_by=finding.opened_by,
        opened_at=finding.opened_at,
        due_at=finding.due_at,
        answered_at=finding.answered_at,
        closed_by=finding.closed_by,
        closed_at=finding.closed_at,
        reminded_at=finding.reminded_at,
        evidence=_evidence(session, finding.id),
    )


def get_finding(session: Session, finding_id: int, *, who: UserInfo | None) -> FindingInfo:
    """One finding, if ``who`` may see its record (``None``: the system).

    :raises NotFoundError: no such finding, or its record is hidden (the same answer).
    """
    stmt = _query(who).where(SamplingFinding.id == finding_id)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFoundError("no such finding")
    return _info(session, row)


def list_findings(
    session: Session,
    *,
    who: UserInfo | None,
    audit_id: int | None = None,
    item_id: int | None = None,
    owner_id: int | None = None,
    open_only: bool = False,
) -> list[FindingInfo]:
    """Findings on records ``who`` may see, oldest deadline first."""
    stmt = _query(who)
    if audit_id is not None:
        stmt = stmt.where(SamplingItem.audit_id == audit_id)
    if item_id is not None:
        stmt = stmt.where(SamplingItem.id == item_id)
    if owner_id is not None:
        stmt = stmt.where(SamplingFinding.owner_id == owner_id)
    if open_only:
        stmt = stmt.where(SamplingFinding.state != FindingState.closed.value)
    stmt = stmt.order_by(SamplingFinding.due_at, SamplingFinding.id)
    return [_info(session, row) for row in session.execute(stmt).all()]


def count_overdue_findings(session: Session, *, who: UserInfo | None, now: dt.datetime) -> int:
    """Findings past their deadline and not closed, on records ``who`` may see."""
    stmt = (
        select(func.count())
        .select_from(SamplingFinding)
        .join(SamplingItem, SamplingItem.id == SamplingFinding.item_id)
        .join(Record, Record.id == SamplingItem.record_id)
        .where(SamplingFinding.state != FindingState.closed.value, SamplingFinding.due_at < now)
    )
    if who is not None:
        stmt = stmt.where(visible_records_filter(who))
    return int(session.scalar(stmt) or 0)


def _clean(text: str | None, limit: int, what: str) -> str:
    value = (text or "").strip()
    if len(value) > limit:
        raise InvalidInputError(f"the {what} is longer than {limit} characters")
    return value


def file_finding(
    session: Session,
    item_id: int,
    *,
    severity: FindingSeverity,
    summary: str,
    owner_id: int,
    due_at: dt.datetime,
    actor: str,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """File a finding against a sampled item, audited as ``finding.file``.

    :raises InvalidInputError: an empty or overlong summary.
    :raises NotFoundError: no such item.
    """
    text = _clean(summary, _SUMMARY_MAX, "summary")
    if not text:
        raise InvalidInputError("a finding needs a summary: what is wrong")
    item = session.get(SamplingItem, item_id)
    if item is None:
        raise NotFoundError("no such sampled item")
    record = session.get(Record, item.record_id)
    assert record is not None  # noqa: S101 - a foreign key
    at = now or utcnow()
    finding = SamplingFinding(
        item_id=item.id,
        severity=severity.value,
        summary=text,
        owner_id=owner_id,
        state=FindingState.open.value,
        opened_by=actor,
        opened_at=at,
        due_at=due_at,
    )
    session.add(finding)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="finding.file",
        target=record_target(record.archive_code),
        detail={
            "finding_id": finding.id,
            "item_id": item.id,
            "severity": severity.value,
            "owner_id": owner_id,
            "due_at": due_at.isoformat(),
        },
        now=at,
    )
    return get_finding(session, finding.id, who=None)


def _load(session: Session, finding_id: int) -> tuple[SamplingFinding, Record]:
    finding = session.get(SamplingFinding, finding_id)
    if finding is None:
        raise NotFoundError("no such finding")
    item = session.get(SamplingItem, finding.item_id)
    assert item is not None  # noqa: S101 - a foreign key
    record = session.get(Record, item.record_id)
    assert record is not None  # noqa: S101
    return finding, record


def _add_evidence(
    session: Session,
    finding: SamplingFinding,
    kind: str,
    note: str,
    file: EvidenceFile | None,
    *,
    actor: str,
    at: dt.datetime,
) -> dict[str, object]:
    evidence = SamplingEvidence(
        finding_id=finding.id,
        kind=kind,
        note=note,
        object_id=file.object_id if file else None,
        file_name=file.file_name if file else None,
        content_type=file.content_type if file else None,
        size=file.size if file else None,
        sha256=file.sha256 if file else None,
        added_by=actor,
        added_at=at,
    )
    session.add(evidence)
    session.flush()
    # The audit names the evidence by id and digest; the note and the file name stay out.
    return {
        "evidence_id": evidence.id,
        "note": bool(note),
        "object_id": file.object_id if file else None,
        "sha256": file.sha256 if file else None,
    }


def answer_finding(
    session: Session,
    finding_id: int,
    *,
    note: str,
    file: EvidenceFile | None,
    actor: str,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """The owner's answer: what was fixed, with a note and/or a file; audited as
    ``finding.answer``. An answered finding may be answered again (more evidence) until it
    is closed.

    :raises InvalidInputError: neither a note nor a file.
    :raises ConflictError: the finding is closed.
    """
    text = _clean(note, _NOTE_MAX, "note")
    if not text and file is None:
        raise InvalidInputError("an answer needs a note or a file: what was fixed")
    finding, record = _load(session, finding_id)
    if finding.state == FindingState.closed.value:
        raise ConflictError("the finding is closed")
    at = now or utcnow()
    detail = _add_evidence(session, finding, "answer", text, file, actor=actor, at=at)
    finding.state = FindingState.answered.value
    finding.answered_at = at
    record_event(
        session,
        actor=actor,
        action="finding.answer",
        target=record_target(record.archive_code),
        detail={"finding_id": finding.id, **detail},
        now=at,
    )
    return get_finding(session, finding.id, who=None)


def close_finding(
    session: Session,
    finding_id: int,
    *,
    note: str,
    file: EvidenceFile | None,
    actor: str,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """Close a finding, audited as ``finding.close``. Closing needs evidence: a note or a
    file given here, or one the owner's answer carried.

    :raises ConflictError: the finding is closed already, or there is no evidence.
    """
    text = _clean(note, _NOTE_MAX, "note")
    finding, record = _load(session, finding_id)
    if finding.state == FindingState.closed.value:
        raise ConflictError("the finding is closed already")
    has_evidence = session.scalar(
        select(func.count())
        .select_from(SamplingEvidence)
        .where(
            SamplingEvidence.finding_id == finding.id,
            or_(SamplingEvidence.object_id.is_not(None), SamplingEvidence.note != ""),
        )
    )
    if not text and file is None and not has_evidence:
        raise ConflictError("closing a finding needs evidence: a file or a note of what was fixed")
    at = now or utcnow()
    detail: dict[str, object] = {}
    if text or file is not None:
        detail = _add_evidence(session, finding, "close", text, file, actor=actor, at=at)
    finding.state = FindingState.closed.value
    finding.closed_by = actor
    finding.closed_at = at
    record_event(
        session,
        actor=actor,
        action="finding.close",
        target=record_target(record.archive_code),
        detail={
            "finding_id": finding.id,
            "late": at > finding.due_at,
            **detail,
        },
        now=at,
    )
    return get_finding(session, finding.id, who=None)


def findings_to_remind(
    session: Session, *, now: dt.datetime, within: dt.timedelta, every: dt.timedelta
) -> list[FindingInfo]:
    """Findings not closed whose deadline is within ``within`` (or past), not reminded in
    the last ``every``."""
    stmt = _query(None).where(
        SamplingFinding.state != FindingState.closed.value,
        SamplingFinding.due_at <= now + within,
        or_(SamplingFinding.reminded_at.is_(None), SamplingFinding.reminded_at <= now - every),
    )
    rows = session.execute(stmt.order_by(SamplingFinding.due_at)).all()
    return [_info(session, row) for row in rows]


def mark_reminded(session: Session, finding_id: int, *, actor: str, now: dt.datetime) -> None:
    """Leave the reminder in the trail (``finding.remind``, naming owner and deadline)."""
    finding, record = _load(session, finding_id)
    finding.reminded_at = now
    record_event(
        session,
        actor=actor,
        action="finding.remind",
        target=record_target(record.archive_code),
        outcome="error" if now > finding.due_at else "ok",
        detail={
            "finding_id": finding.id,
            "owner_id": finding.owner_id,
            "due_at": finding.due_at.isoformat(),
            "overdue": now > finding.due_at,
        },
        now=now,
    )
