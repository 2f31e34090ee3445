"""The intake review (材料初审 → 信息录入 → 系统校验 → 复核): each record's way to acceptance.

Every change is one transition of a record's :class:`~catalog.review_models.RecordReview`,
audited as ``record.review`` with the gate and state before and after, in the caller's
transaction. Who may make a transition is the policy's business, asked by the caller
(``api/services/review.py``); this module only refuses transitions that do not follow
(a decision for a gate the record is not waiting at, a resubmission of a record not sent back)
with :class:`ConflictError`. Findings hold rules, outcomes, counts and archive codes, never
record text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import BusinessType, Record, RecordStatus, SecurityClass, utcnow
from catalog.policy import record_target, visible_records_filter
from catalog.review_models import CLERK_GATES, RecordReview, ReviewGate, ReviewState
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "PERSON_GATES",
    "ReviewInfo",
    "ReviewRow",
    "count_awaiting_review",
    "decide_gate",
    "duplicate_suspects",
    "get_review",
    "list_reviews",
    "open_review",
    "order_gates",
    "resubmit_review",
]

MAX_REASON = 500
# The gates a person decides: a record open at one of these, or sent back to its clerk, waits
# for a person (the system check waits for the system).
PERSON_GATES = frozenset({*CLERK_GATES, ReviewGate.final_review})


@dataclass(frozen=True)
class ReviewInfo:
    """Where one record stands: ``gate`` is the gate waiting (open) or the one that sent it
    back (returned); ``None`` once accepted."""

    record_id: int
    gates: tuple[ReviewGate, ...]
    gate: ReviewGate | None
    state: ReviewState
    round: int
    reason: str | None
    findings: tuple[dict[str, Any], ...]
    decided_by: str | None
    updated_at: dt.datetime

    @property
    def reopened(self) -> bool:
        """Whether the record is its clerk's again: waiting at a clerk's gate, or sent back."""
        return self.state is ReviewState.returned or (
            self.state is ReviewState.open and self.gate in CLERK_GATES
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "gates": [g.value for g in self.gates],
            "gate": self.gate.value if self.gate else None,
            "state": self.state.value,
            "round": self.round,
            "reason": self.reason,
            "findings": list(self.findings),
            "decided_by": self.decided_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class ReviewRow:
    """A record in a review listing: its code and fields as the listing shows them."""

    archive_code: str
    business_type: str
    year: int
    title: str
    security_class: SecurityClass
    status: RecordStatus
    created_by: int | None
    needs_review: bool
    review: ReviewInfo


def order_gates(names: Iterable[str]) -> tuple[ReviewGate, ...]:
    """Gate names in gate order, each once.

    :raises InvalidInputError: a name that is no gate.
    """
    wanted = set()
    for name in names:
        try:
            wanted.add(ReviewGate(name))
        except ValueError:
            known = ", ".join(g.value for g in ReviewGate)
            raise InvalidInputError(f"unknown review gate {name!r}; gates are {known}") from None
    return tuple(g for g in ReviewGate if g in wanted)


def _info(row: RecordReview) -> ReviewInfo:
    return ReviewInfo(
        record_id=row.record_id,
        gates=order_gates(g for g in row.gates.split(",") if g),
        gate=ReviewGate(row.gate) if row.gate else None,
        state=ReviewState(row.state),
        round=row.round,
        reason=row.reason,
        findings=tuple(row.findings or ()),
        decided_by=row.decided_by,
        updated_at=row.updated_at,
    )


def _first(gates: Sequence[ReviewGate], after: ReviewGate | None = None) -> ReviewGate | None:
    """The first gate of ``gates`` after ``after`` (all of them when ``None``)."""
    order = list(ReviewGate)
    start = -1 if after is None else order.index(after)
    return next((g for g in gates if order.index(g) > start), None)


def _snapshot(row: RecordReview) -> dict[str, Any]:
    return {"gate": row.gate, "state": row.state, "round": row.round}


def _audit(
    session: Session,
    row: RecordReview,
    before: dict[str, Any],
    *,
    actor: str,
    archive_code: str,
    detail: dict[str, Any],
) -> None:
    record_event(
        session,
        actor=actor,
        action="record.review",
        target=record_target(archive_code),
        outcome="ok",
        detail={"record_id": row.record_id, **detail, "before": before, "after": _snapshot(row)},
    )


def open_review(
    session: Session,
    record_id: int,
    gates: Sequence[ReviewGate],
    *,
    actor: str,
    archive_code: str,
) -> ReviewInfo:
    """Start a new record's review at its first gate (accepted at once when it needs none).

    :raises ConflictError: the record has a review already.
    """
    if session.get(RecordReview, record_id) is not None:
        raise ConflictError("this record's review has started already")
    first = _first(gates)
    row = RecordReview(
        record_id=record_id,
        gates=",".join(g.value for g in gates),
        gate=first.value if first else None,
        state=(ReviewState.open if first else ReviewState.accepted).value,
        round=1,
        updated_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _audit(
        session,
        row,
        {"gate": None, "state": None, "round": None},
        actor=actor,
        archive_code=archive_code,
        detail={"decision": "open", "gates": [g.value for g in gates]},
    )
    return _info(row)


def get_review(session: Session, record_id: int) -> ReviewInfo | None:
    """The record's review; ``None`` for a record entered before the gates (or imported)."""
    row = session.get(RecordReview, record_id)
    return _info(row) if row is not None else None


def _row(session: Session, record_id: int) -> RecordReview:
    row = session.get(RecordReview, record_id, with_for_update=True)
    if row is None:
        raise ConflictError("this record has no intake review (entered before the gates)")
    return row


def decide_gate(
    session: Session,
    record_id: int,
    gate: ReviewGate,
    *,
    passed: bool,
    reason: str | None,
    actor: str,
    archive_code: str,
    findings: Sequence[dict[str, Any]] | None = None,
    round_: int | None = None,
    require_gate: ReviewGate | None = None,
) -> ReviewInfo:
    """Pass ``gate`` (on to the next gate, or accepted after the last) or send the record
    back to its clerk with ``reason``.

    :param findings: the system check's findings, kept on the review whatever the decision.
    :param round_: the round the decision was made for (the system check); a record
        resubmitted since is not decided by a stale check.
    :param require_gate: a gate this record must meet after ``gate`` even where its type
        skips it (复核 for a record the quality rules flag); added to its gates.
    :raises InvalidInputError: a return without a reason, or a reason too long.
    :raises ConflictError: the record is not waiting at ``gate`` (in that round).
    """
    text = (reason or "").strip() or None
    if not passed and text is None:
        raise InvalidInputError("say why the record goes back: a reason is required")
    if text is not None and len(text) > MAX_REASON:
        raise InvalidInputError(f"a reason has at most {MAX_REASON} characters")
    row = _row(session, record_id)
    if row.state != ReviewState.open.value or row.gate != gate.value:
        where = (
            f"waiting at {row.gate}"
            if row.state == ReviewState.open.value
            else f"{row.state}" + (f" at {row.gate}" if row.gate else "")
        )
        raise ConflictError(f"the record is not waiting at {gate.value}: it is {where}")
    if round_ is not None and row.round != round_:
        raise ConflictError("the record was resubmitted since; this decision is stale")
    before = _snapshot(row)
    if findings is not None:
        row.findings = list(findings)
    row.decided_by = actor
    row.updated_at = utcnow()
    if require_gate is not None and require_gate.value not in row.gates.split(","):
        have = [g for g in row.gates.split(",") if g]
        row.gates = ",".join(g.value for g in order_gates([*have, require_gate]))
    if passed:
        nxt = _first(_info(row).gates, gate)
        row.gate = nxt.value if nxt else None
        row.state = (ReviewState.open if nxt else ReviewState.accepted).value
        if text is not None:
            row.reason = text
    else:
        row.state = ReviewState.returned.value
        row.reason = text
    session.flush()
    detail: dict[str, Any] = {"gate": gate.value, "decision": "pass" if passed else "return"}
    if text is not None:
        detail["reason"] = text
    if findings is not None:
        detail["findings"] = len(findings)
    _audit(session, row, before, actor=actor, archive_code=archive_code, detail=detail)
    return _info(row)


def resubmit_review(
    session: Session, record_id: int, *, actor: str, archive_code: str
) -> ReviewInfo:
    """Send a corrected record back into review: its clerk's gates are passed again with the
    resubmission, and it waits at the first gate after them (the system check runs again).

    :raises ConflictError: the record was not sent back.
    """
    row = _row(session, record_id)
    if row.state != ReviewState.returned.value:
        raise ConflictError(f"only a record sent back is resubmitted; this one is {row.state}")
    before = _snapshot(row)
    returned_reason = row.reason
    gates = _info(row).gates
    nxt = _first(gates, ReviewGate.data_entry)
    row.gate = nxt.value if nxt else None
    row.state = (ReviewState.open if nxt else ReviewState.accepted).value
    row.round += 1
    row.reason = None
    row.decided_by = actor
    row.updated_at = utcnow()
    session.flush()
    _audit(
        session,
        row,
        before,
        actor=actor,
        archive_code=archive_code,
        detail={
            "decision": "resubmit",
            "passed": [g.value for g in gates if g in CLERK_GATES],
            "returned_reason": returned_reason,
        },
    )
    return _info(row)


def list_reviews(
    session: Session,
    who: UserInfo,
    *,
    state: ReviewState | None = None,
    gate: ReviewGate | None = None,
    created_by: int | None = None,
    awaiting: Collection[ReviewGate] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ReviewRow], int]:
    """The reviews of the records ``who`` may see, oldest change first, and how many match.

    :param awaiting: only the records waiting for a person at one of these gates, or sent
        back (:func:`count_awaiting_review`).
    """
    where = _review_filters(who, state=state, gate=gate, created_by=created_by, awaiting=awaiting)
    base = (
        select(RecordReview, Record, BusinessType.name)
        .join(Record, Record.id == RecordReview.record_id)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(*where)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(RecordReview.updated_at, RecordReview.record_id).offset(offset).limit(limit)
    ).all()
    out = [
        ReviewRow(
            archive_code=rec.archive_code,
            business_type=btype,
            year=rec.year,
            title=rec.title,
            security_class=SecurityClass(rec.security_class),
            status=RecordStatus(rec.status),
            created_by=rec.created_by,
            needs_review=rec.needs_review,
            review=_info(rev),
        )
        for rev, rec, btype in rows
    ]
    return out, int(total)


def _awaiting_filter(gates: Collection[ReviewGate]) -> ColumnElement[bool]:
    return or_(
        and_(
            RecordReview.state == ReviewState.open.value,
            RecordReview.gate.in_(sorted(g.value for g in gates)),
        ),
        RecordReview.state == ReviewState.returned.value,
    )


def _review_filters(
    who: UserInfo,
    *,
    state: ReviewState | None = None,
    gate: ReviewGate | None = None,
    created_by: int | None = None,
    awaiting: Collection[ReviewGate] | None = None,
) -> list[ColumnElement[bool]]:
    where = [visible_records_filter(who), Record.status != RecordStatus.disposed.value]
    if state is not None:
        where.append(RecordReview.state == state.value)
    if gate is not None:
        where.append(RecordReview.gate == gate.value)
    if created_by is not None:
        where.append(Record.created_by == created_by)
    if awaiting is not None:
        where.append(_awaiting_filter(awaiting))
    return where


def count_awaiting_review(
    session: Session,
    who: UserInfo,
    *,
    gates: Collection[ReviewGate] = PERSON_GATES,
    created_by: int | None = None,
) -> int:
    """How many records ``who`` may see wait for a person: open at one of ``gates`` (by
    default 材料初审, 信息录入 and 复核: not the system check), or sent back to their clerk.

    :param gates: :data:`CLERK_GATES` with ``created_by`` counts what waits for one clerk.
    :param created_by: only the records this user entered.
    """
    where = _review_filters(who, created_by=created_by, awaiting=gates)
    found = session.scalar(
        select(func.count())
        .select_from(RecordReview)
        .join(Record, Record.id == RecordReview.record_id)
        .where(*where)
    )
    return int(found or 0)


def duplicate_suspects(session: Session, record_id: int) -> list[str]:
    """The archive codes of other live records that look like this one: the same content, or
    the same student number, business type and year.

    Only records of the classes every reader of this record may see are compared (an internal
    record with internal records; a contract record with every record), so that a finding
    shown with the record never names a record hidden from its reader.

    :raises NotFoundError: no such record.
    """
    record = session.get(Record, record_id)
    if record is None:
        raise NotFoundError("no such record")
    classes = {record.security_class, SecurityClass.internal.value}
    same = []
    if record.plaintext_sha256:
        same.append(Record.plaintext_sha256 == record.plaintext_sha256)
    if record.student_no:
        same.append(
            and_(
                Record.student_no == record.student_no,
                Record.business_type_id == record.business_type_id,
                Record.year == record.year,
            )
        )
    if not same:
        return []
    return list(
        session.scalars(
            select(Record.archive_code)
            .where(
                Record.id != record_id,
                Record.status != RecordStatus.disposed.value,
                Record.security_class.in_(sorted(classes)),
                or_(*same),
            )
            .order_by(Record.archive_code)
            .limit(20)
        )
    )
