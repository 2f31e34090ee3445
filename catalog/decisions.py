"""The approval chain of a status-change decision (学籍变更: 转学, 休学, 复学 and the like).

A decision record (a record of one of :data:`STATUS_CHANGE_TYPES`) names the application it
decides: another record (the application's scan), or pages of the decision record itself
when both were scanned together; who approved it (a dangan user, or the school official's
name as free text), the decision's date, and whether it approved or rejected the
application. Setting or clearing the link is a non-key adjustment (``record.update_metadata``,
asked by the caller), audited as ``record.decision`` on the decision record with the link
before and after (``{"decision_link": ...}``), and as ``record.decision_application`` on each
application record it names or stops naming, so both records' histories show it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased

from catalog.audit import record_event
from catalog.change_models import DecisionOutcome, RecordDecision
from catalog.codes import EARLIEST_YEAR
from catalog.models import BusinessType, Record, RecordStatus, SecurityClass, User, utcnow
from catalog.policy import record_target, visible_records_filter
from catalog.records import find_record_row
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "STATUS_CHANGE_TYPES",
    "DecisionInfo",
    "DecisionOutcome",
    "clear_decision",
    "decisions_citing",
    "get_decision",
    "set_decision",
]

# The business types whose records are status-change decisions (学籍变更 and its kinds).
STATUS_CHANGE_TYPES: Final = ("学籍变更", "转学", "休学", "复学", "退学")
_MAX_APPROVER: Final = 100
_PAGES: Final = re.compile(r"^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$")


@dataclass(frozen=True)
class DecisionInfo:
    record_id: int  # the decision record
    archive_code: str
    security_class: SecurityClass  # the decision record's: who may see the link
    application_record_id: int | None  # None: the application is in the decision record
    application_code: str | None
    application_security_class: SecurityClass | None
    application_pages: str | None  # e.g. "1-2" or "1,3"
    approver: str  # a user's name, or the school official as written
    approver_user: str | None  # the dangan user, when the approver is one
    decision_date: dt.date
    decision: DecisionOutcome
    set_by: str
    set_at: dt.datetime

    @property
    def same_record(self) -> bool:
        return self.application_record_id is None

    def as_detail(self) -> dict[str, Any]:
        """What the audit trail keeps of the link."""
        return {
            "application": self.application_code,
            "application_pages": self.application_pages,
            "approver": self.approver,
            "approver_user": self.approver_user,
            "decision_date": self.decision_date.isoformat(),
            "decision": self.decision.value,
        }


def _rows(session: Session, *where: Any) -> list[DecisionInfo]:
    decided = aliased(Record)
    applied = aliased(Record)
    stmt = (
        select(RecordDecision, decided, applied, User.name)
        .join(decided, decided.id == RecordDecision.record_id)
        .outerjoin(applied, applied.id == RecordDecision.application_record_id)
        .outerjoin(User, User.id == RecordDecision.approver_user_id)
        .where(*where)
        .order_by(RecordDecision.decision_date, RecordDecision.id)
    )
    return [
        DecisionInfo(
            record_id=d.record_id,
            archive_code=rec.archive_code,
            security_class=SecurityClass(rec.security_class),
            application_record_id=d.application_record_id,
            application_code=app.archive_code if app is not None else None,
            application_security_class=SecurityClass(app.security_class) if app else None,
            application_pages=d.application_pages,
            approver=d.approver,
            approver_user=user,
            decision_date=d.decision_date,
            decision=DecisionOutcome(d.decision),
            set_by=d.set_by,
            set_at=d.set_at,
        )
        for d, rec, app, user in session.execute(stmt).all()
    ]


def get_decision(session: Session, record_id: int) -> DecisionInfo | None:
    """The decision record's link to its application, if it has one."""
    found = _rows(session, RecordDecision.record_id == record_id)
    return found[0] if found else None


def decisions_citing(session: Session, record_id: int, who: UserInfo | None) -> list[DecisionInfo]:
    """The decisions that name this record as their application, of the decision records
    ``who`` may see (``None``: the system, all of them), by decision date."""
    where = [RecordDecision.application_record_id == record_id]
    if who is not None:
        visible = select(Record.id).where(visible_records_filter(who))
        where.append(RecordDecision.record_id.in_(visible))
    return _rows(session, *where)


def _pages(text: str | None, page_count: int) -> str | None:
    """Page ranges as stored ("1-2,4"); :raises InvalidInputError: malformed or past the end."""
    if text is None or not text.strip():
        return None
    compact = re.sub(r"\s+", "", text).replace("，", ",")
    if len(compact) > 32 or not _PAGES.match(compact):
        raise InvalidInputError("pages read like 1-2 or 1,3-4")
    for part in compact.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high:
            raise InvalidInputError("pages are numbered from 1, each range low to high")
        if page_count and high > page_count:
            raise InvalidInputError(f"the record has {page_count} pages")
    return compact


def _date(value: dt.date) -> dt.date:
    latest = utcnow().date() + dt.timedelta(days=1)  # a decision dated today anywhere on earth
    if not dt.date(EARLIEST_YEAR, 1, 1) <= value <= latest:
        raise InvalidInputError(f"the decision date lies between {EARLIEST_YEAR} and today")
    return value


def _live(row: Record | None) -> Record:
    if row is None:
        raise NotFoundError("no such record")
    if row.status == RecordStatus.disposed:
        raise ConflictError(f"record {row.archive_code} was disposed of")
    return row


def _audit_applications(
    session: Session,
    decision: Record,
    old: DecisionInfo | None,
    new: DecisionInfo | None,
    *,
    actor: str,
) -> None:
    """One ``record.decision_application`` event on each other record the changed link names
    or stopped naming as its application, so that record's history shows it too."""
    now = new.application_record_id if new else None
    named = {old.application_record_id if old else None, now} - {None}
    for record_id in sorted(i for i in named if i is not None):
        app = session.get(Record, record_id)
        if app is None:  # pragma: no cover - records are never deleted
            continue
        cited = record_id == now
        record_event(
            session,
            actor=actor,
            action="record.decision_application",
            target=record_target(app.archive_code),
            detail={
                "record_id": app.id,
                "decision_record": decision.archive_code,
                "cited": cited,
                "decision": new.decision.value if cited and new is not None else None,
            },
        )


def set_decision(
    session: Session,
    archive_code: str,
    *,
    decision: DecisionOutcome | str,
    decision_date: dt.date,
    approver: str | None = None,
    approver_user: str | None = None,
    application_code: str | None = None,
    application_pages: str | None = None,
    actor: str,
) -> DecisionInfo:
    """Link a decision record to its application, or change the link; audited.

    :param archive_code: the decision record (a code or a former code).
    :param application_code: the application's record; ``None`` (or the decision record's
        own code): the application is in the decision record, on ``application_pages``.
    :param approver: the school official who approved, as written; or ``approver_user``: the
        dangan user who did (exactly one of the two).
    :raises NotFoundError: either record does not exist; ``approver_user`` names no user.
    :raises InvalidInputError: the record is not a status-change type; pages, date or
        approver malformed; no pages for an application in the decision record itself; a
        contract-class application for a decision of a lower class.
    :raises ConflictError: either record was disposed of.
    """
    row = _live(find_record_row(session, archive_code))
    type_name = session.scalar(
        select(BusinessType.name).where(BusinessType.id == row.business_type_id)
    )
    if type_name not in STATUS_CHANGE_TYPES:
        raise InvalidInputError(
            f"only a status-change decision ({', '.join(STATUS_CHANGE_TYPES)}) links to an "
            f"application; this record is {type_name}"
        )
    try:
        outcome = DecisionOutcome(decision)
    except ValueError:
        raise InvalidInputError("a decision is approved or rejected") from None
    when = _date(decision_date)
    app: Record | None = None
    if application_code is not None and application_code.strip():
        app = _live(find_record_row(session, application_code.strip()))
        if app.id == row.id:
            app = None
    if (
        app is not None
        and app.security_class == SecurityClass.contract
        and row.security_class != SecurityClass.contract
    ):
        # Whoever may see the decision must be able to see what it names.
        raise InvalidInputError(
            "a contract-class application can only be linked from a contract-class decision"
        )
    pages = _pages(application_pages, (app or row).page_count or 0)
    if app is None and pages is None:
        raise InvalidInputError(
            "name the application's record, or the pages of this record that hold it"
        )
    if (approver is None or not approver.strip()) == (approver_user is None):
        raise InvalidInputError("name the approver: a user, or the official as written")
    user_id: int | None = None
    if approver_user is not None:
        user = session.scalars(select(User).where(User.name == approver_user)).first()
        if user is None:
            raise NotFoundError(f"no user {approver_user!r}")
        name, user_id = user.name, user.id
    else:
        name = (approver or "").strip()
        if len(name) > _MAX_APPROVER:
            raise InvalidInputError(f"an approver has at most {_MAX_APPROVER} characters")
    old = get_decision(session, row.id)
    link = session.scalars(select(RecordDecision).where(RecordDecision.record_id == row.id)).first()
    if link is None:
        link = RecordDecision(record_id=row.id)
        session.add(link)
    link.application_record_id = app.id if app is not None else None
    link.application_pages = pages
    link.approver, link.approver_user_id = name, user_id
    link.decision_date = when
    link.decision = outcome.value
    link.set_by, link.set_at = actor, utcnow()
    session.flush()
    new = get_decision(session, row.id)
    if new is None:  # pragma: no cover - just written
        raise NotFoundError("no such record")
    if old is not None and old.as_detail() == new.as_detail():
        return old  # nothing changed, nothing audited
    record_event(
        session,
        actor=actor,
        action="record.decision",
        target=record_target(row.archive_code),
        detail={
            "record_id": row.id,
            "before": {"decision_link": old.as_detail() if old else None},
            "after": {"decision_link": new.as_detail()},
        },
    )
    _audit_applications(session, row, old, new, actor=actor)
    return new


def clear_decision(session: Session, archive_code: str, *, actor: str) -> DecisionInfo | None:
    """Remove the decision record's link (audited); the link removed, or ``None`` if none.

    :raises NotFoundError: no such record.
    """
    row = find_record_row(session, archive_code)
    if row is None:
        raise NotFoundError("no such record")
    old = get_decision(session, row.id)
    if old is None:
        return None
    session.execute(delete(RecordDecision).where(RecordDecision.record_id == row.id))
    record_event(
        session,
        actor=actor,
        action="record.decision",
        target=record_target(row.archive_code),
        detail={
            "record_id": row.id,
            "before": {"decision_link": old.as_detail()},
            "after": {"decision_link": None},
        },
    )
    _audit_applications(session, row, old, None, actor=actor)
    return old
