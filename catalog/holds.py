"""Legal holds (诉讼保留/法律冻结): while a hold stands, no record it covers is proposed for
disposition or disposed of, by anyone.

A hold covers one record, every record of a student (``student_no``), of a business type, or
of a range of years (the year of the archive code). It is placed with a reason and released
with one; both are audited, and a released hold stays in the table as history.

Placing a hold and disposing of a record are serialised (:func:`lock_holds`): the disposal
transaction checks for holds (:func:`ensure_not_held`) holding the same lock a placement
takes, so a hold committed before a disposal is seen by it, and one placed after finds the
record already disposed. Who may place or release a hold is the policy's business (callers
ask ``catalog.policy``); this module never decides a permission.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.codes import EARLIEST_YEAR
from catalog.models import BusinessType, Record, utcnow
from catalog.retention_models import HoldScope, LegalHold
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "HoldInfo",
    "HoldTarget",
    "ensure_not_held",
    "get_hold",
    "hold_matcher",
    "holds_covering",
    "list_holds",
    "lock_holds",
    "place_hold",
    "release_hold",
]

# One transaction-scoped PostgreSQL advisory lock shared by hold placement and disposal. On
# SQLite every write transaction holds the database lock already (BEGIN IMMEDIATE).
_PG_HOLD_LOCK: Final = 0x64616E67_686F6C64 & 0x7FFFFFFFFFFFFFFF  # "danghold"
_MAX_REASON: Final = 500


@dataclass(frozen=True)
class HoldTarget:
    """What a record looks like to a hold: the fields a hold can name."""

    record_id: int
    student_no: str | None
    business_type_id: int
    year: int


@dataclass(frozen=True)
class HoldInfo:
    id: int
    scope: HoldScope
    archive_code: str | None  # scope record
    record_id: int | None
    student_no: str | None  # scope student
    business_type: str | None  # scope type
    business_type_id: int | None
    year_from: int | None  # scope years, inclusive
    year_to: int | None
    reason: str
    placed_by: str
    placed_at: dt.datetime
    released_by: str | None
    released_at: dt.datetime | None
    release_reason: str | None

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    @property
    def covers(self) -> str:
        """What the hold covers, in words: ``record 2019-会议纪要-001``, ``years 2019..2021``."""
        if self.scope is HoldScope.record:
            return f"record {self.archive_code}"
        if self.scope is HoldScope.student:
            return f"student {self.student_no}"
        if self.scope is HoldScope.business_type:
            return f"type {self.business_type}"
        return f"years {self.year_from}..{self.year_to}"

    def matches(self, target: HoldTarget) -> bool:
        """Whether this hold, if active, covers a record with these fields."""
        if not self.is_active:
            return False
        if self.scope is HoldScope.record:
            return self.record_id == target.record_id
        if self.scope is HoldScope.student:
            return target.student_no is not None and self.student_no == target.student_no
        if self.scope is HoldScope.business_type:
            return self.business_type_id == target.business_type_id
        first = self.year_from if self.year_from is not None else target.year + 1
        last = self.year_to if self.year_to is not None else first
        return first <= target.year <= last


def lock_holds(session: Session) -> None:
    """Serialise with every hold placement and disposal until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_HOLD_LOCK})


def _rows(session: Session, *where: ColumnElement[bool]) -> list[HoldInfo]:
    stmt = (
        select(LegalHold, Record.archive_code, BusinessType.name)
        .outerjoin(Record, Record.id == LegalHold.record_id)
        .outerjoin(BusinessType, BusinessType.id == LegalHold.business_type_id)
        .where(*where)
        .order_by(LegalHold.id)
    )
    return [
        HoldInfo(
            id=h.id,
            scope=HoldScope(h.scope),
            archive_code=code,
            record_id=h.record_id,
            student_no=h.student_no,
            business_type=type_name,
            business_type_id=h.business_type_id,
            year_from=h.year_from,
            year_to=h.year_to,
            reason=h.reason,
            placed_by=h.placed_by,
            placed_at=h.placed_at,
            released_by=h.released_by,
            released_at=h.released_at,
            release_reason=h.release_reason,
        )
        for h, code, type_name in session.execute(stmt)
    ]


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("a legal hold needs a reason")
    if len(reason) > _MAX_REASON:
        raise InvalidInputError(f"a reason has at most {_MAX_REASON} characters")
    return reason


def place_hold(
    session: Session,
    *,
    reason: str,
    actor: str,
    record_id: int | None = None,
    student_no: str | None = None,
    business_type: str | None = None,
    years: tuple[int, int] | None = None,
    now: dt.datetime | None = None,
) -> HoldInfo:
    """Place a hold on exactly one of: a record (by id), a student, a business type, a range
    of years (inclusive), audited as ``hold.place`` in the caller's transaction.

    :raises InvalidInputError: not exactly one target, no reason, an unknown type, a bad range.
    :raises NotFoundError: no record with this id.
    """
    given = [x is not None for x in (record_id, student_no, business_type, years)]
    if sum(given) != 1:
        raise InvalidInputError("a hold covers one of: a record, a student, a type, a year range")
    hold = LegalHold(reason=_reason(reason), placed_by=actor, placed_at=now or utcnow())
    target = "hold"
    if record_id is not None:
        code = session.scalar(select(Record.archive_code).where(Record.id == record_id))
        if code is None:
            raise NotFoundError("no such record")
        hold.scope, hold.record_id, target = HoldScope.record.value, record_id, f"record:{code}"
    elif student_no is not None:
        student_no = student_no.strip()
        if not student_no or len(student_no) > 32:
            raise InvalidInputError("a student number has 1 to 32 characters")
        hold.scope, hold.student_no = HoldScope.student.value, student_no
    elif business_type is not None:
        bt_id = session.scalar(select(BusinessType.id).where(BusinessType.name == business_type))
        if bt_id is None:
            raise InvalidInputError(f"unknown business type {business_type!r}")
        hold.scope, hold.business_type_id = HoldScope.business_type.value, bt_id
    elif years is not None:
        first, last = years
        if not EARLIEST_YEAR <= first <= last <= 9999:
            raise InvalidInputError(f"a year range reads FIRST..LAST, from {EARLIEST_YEAR} on")
        hold.scope, hold.year_from, hold.year_to = HoldScope.years.value, first, last
    lock_holds(session)
    session.add(hold)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="hold.place",
        target=target if target != "hold" else f"hold:{hold.id}",
        detail={"hold_id": hold.id, "scope": hold.scope},
    )
    return get_hold(session, hold.id)


def release_hold(
    session: Session, hold_id: int, *, reason: str, actor: str, now: dt.datetime | None = None
) -> HoldInfo:
    """Release a hold, audited as ``hold.release``; the hold stays as history.

    :raises NotFoundError: no such hold.
    :raises ConflictError: it was released already.
    """
    row = session.get(LegalHold, hold_id)
    if row is None:
        raise NotFoundError(f"no legal hold {hold_id}")
    if row.released_at is not None:
        raise ConflictError(f"legal hold {hold_id} was released already")
    row.release_reason = _reason(reason)
    row.released_by = actor
    row.released_at = now or utcnow()
    session.flush()
    info = get_hold(session, hold_id)
    record_event(
        session,
        actor=actor,
        action="hold.release",
        target=f"record:{info.archive_code}" if info.archive_code else f"hold:{hold_id}",
        detail={"hold_id": hold_id, "scope": info.scope.value},
    )
    return info


def get_hold(session: Session, hold_id: int) -> HoldInfo:
    """:raises NotFoundError: no such hold."""
    found = _rows(session, LegalHold.id == hold_id)
    if not found:
        raise NotFoundError(f"no legal hold {hold_id}")
    return found[0]


def list_holds(session: Session, *, include_released: bool = False) -> list[HoldInfo]:
    """Holds in the order placed; the active ones unless ``include_released``.

    Record holds name their record: callers showing them to a person filter by visibility.
    """
    if include_released:
        return _rows(session)
    return _rows(session, LegalHold.released_at.is_(None))


def hold_matcher(session: Session) -> Callable[[HoldTarget], list[HoldInfo]]:
    """The active holds, loaded once, as a function giving those that cover a record.

    For walks over many records (the retention scan); a disposal checks with
    :func:`ensure_not_held` under the lock instead.
    """
    active = list_holds(session)

    def covering(target: HoldTarget) -> list[HoldInfo]:
        return [h for h in active if h.matches(target)]

    return covering


def _target(session: Session, record_id: int) -> HoldTarget:
    row = session.execute(
        select(Record.id, Record.student_no, Record.business_type_id, Record.year).where(
            Record.id == record_id
        )
    ).first()
    if row is None:
        raise NotFoundError("no such record")
    return HoldTarget(row.id, row.student_no, row.business_type_id, row.year)


def holds_covering(session: Session, record_id: int) -> Sequence[HoldInfo]:
    """The active holds that cover a record (any scope).

    :raises NotFoundError: no such record.
    """
    return hold_matcher(session)(_target(session, record_id))


def ensure_not_held(session: Session, record_id: int) -> None:
    """Refuse, inside the caller's (disposal) transaction, if any active hold covers the record.

    Takes the hold lock first, so no hold can be placed between this check and the commit.

    :raises ConflictError: the record is under a legal hold.
    :raises NotFoundError: no such record.
    """
    lock_holds(session)
    held = holds_covering(session, record_id)
    if held:
        ids = ", ".join(str(h.id) for h in held)
        raise ConflictError(f"the record is under legal hold ({ids}); it cannot be disposed of")
