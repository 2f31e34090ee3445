"""Records (档案): created with an archive code, described by catalog fields.

A record starts ``pending``; the vault's dual write makes it ``archived`` (two verified copies)
or ``under_replicated``. Creation allocates (or validates a hand-given) archive code in the same
transaction, so a failed intake returns its serial. Records are never deleted: disposal marks
them ``disposed`` and destroys their content, keeping the code from ever being reused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.change_models import RecordAlias
from catalog.codes import allocate_code, claim_code, parse_code
from catalog.models import BusinessType, Record, RecordStatus, SecurityClass
from dangan.errors import InvalidInputError, NotFoundError

__all__ = [
    "NewRecord",
    "RecordContent",
    "RecordInfo",
    "create_record",
    "find_record_row",
    "former_codes",
    "get_record",
    "get_record_by_id",
    "mark_content_destroyed",
]

# Field name → the longest value it takes (the column's size): checked here, so that a caller
# that does not check (the CLI, a manifest) gets an answer, not the database's error.
_LIMITS = {
    "title": 500,
    "student_no": 32,
    "student_name": 64,
    "student_class": 64,
    "paper_location": 200,
}


@dataclass(frozen=True)
class NewRecord:
    """What intake knows of a record before it is stored."""

    business_type: str
    year: int
    title: str = ""
    student_no: str | None = None
    student_name: str | None = None
    student_class: str | None = None  # 班级, e.g. 高三(2)班
    security_class: SecurityClass | None = None  # None: the business type's default
    paper_location: str | None = None
    archive_code: str | None = None  # a legacy code to keep; None: allocate the next


@dataclass(frozen=True)
class RecordContent:
    """What intake learned of the scan itself: set once, when the record is created."""

    content_type: str
    size: int  # bytes of the original
    plaintext_sha256: str  # of the original; duplicate uploads are found by it
    page_count: int
    upload_name: str | None = None  # sanitised (``api.services.names``); holds names: never log


@dataclass(frozen=True)
class RecordInfo:
    id: int
    archive_code: str
    year: int
    business_type: str
    serial: int
    title: str
    student_no: str | None
    student_name: str | None
    student_class: str | None
    security_class: SecurityClass
    paper_location: str | None
    status: RecordStatus
    created_at: dt.datetime
    created_by: int | None  # the user who entered it (the policy's "own draft" rule)
    content_type: str | None = None
    size: int | None = None
    plaintext_sha256: str | None = None
    page_count: int = 0
    upload_name: str | None = None
    tags: tuple[str, ...] = ()  # non-key labels, in the order given
    notes: str | None = None  # non-key remarks (备注)


def _info(record: Record, business_type: str) -> RecordInfo:
    return RecordInfo(
        id=record.id,
        archive_code=record.archive_code,
        year=record.year,
        business_type=business_type,
        serial=record.serial,
        title=record.title,
        student_no=record.student_no,
        student_name=record.student_name,
        student_class=record.student_class,
        security_class=SecurityClass(record.security_class),
        paper_location=record.paper_location,
        status=RecordStatus(record.status),
        created_at=record.created_at,
        created_by=record.created_by,
        content_type=record.content_type,
        size=record.size,
        plaintext_sha256=record.plaintext_sha256,
        page_count=record.page_count or 0,
        upload_name=record.upload_name,
        tags=tuple(record.tags or ()),
        notes=record.notes,
    )


def create_record(
    session: Session,
    new: NewRecord,
    *,
    actor: str,
    actor_id: int | None = None,
    content: RecordContent | None = None,
) -> RecordInfo:
    """Create a ``pending`` record with its archive code, audited in the same transaction.

    :param content: what intake found in the scan (type, size, hash, pages, upload name).

    :raises InvalidInputError: a field too long, unknown type, implausible year, malformed
        legacy code, a legacy code whose type or year differs from the record's, a
        contract-class type filed with a lower class.
    :raises ConflictError: the legacy code is taken.
    """
    for name, limit in _LIMITS.items():
        value = getattr(new, name)
        if value is not None and len(value) > limit:
            raise InvalidInputError(f"{name} has at most {limit} characters")
    # Everything the caller can get wrong is checked before a legacy code is looked up, so
    # that "taken" is only ever said of a code of the caller's own type (and class).
    if new.archive_code is not None:
        given = parse_code(new.archive_code)
        if (given.year, given.business_type) != (new.year, new.business_type):
            raise InvalidInputError(
                f"archive code {given} does not match year {new.year} and type {new.business_type}"
            )
    default = session.scalar(
        select(BusinessType.default_security_class).where(BusinessType.name == new.business_type)
    )
    if default == SecurityClass.contract and new.security_class not in (
        None,
        SecurityClass.contract,
    ):
        # 合同类 files are the director's alone; their type cannot be filed as anything less.
        raise InvalidInputError(f"records of type {new.business_type} are always contract-class")
    if new.archive_code is None:
        code = allocate_code(session, year=new.year, business_type=new.business_type)
    else:
        code = claim_code(session, new.archive_code)
    bt = session.scalars(select(BusinessType).where(BusinessType.name == code.business_type)).one()
    security = new.security_class or SecurityClass(bt.default_security_class)
    record = Record(
        archive_code=str(code),
        year=code.year,
        business_type_id=bt.id,
        serial=code.serial,
        title=new.title,
        student_no=new.student_no,
        student_name=new.student_name,
        student_class=new.student_class,
        security_class=security.value,
        paper_location=new.paper_location,
        status=RecordStatus.pending.value,
        created_by=actor_id,
    )
    if content is not None:
        record.content_type = content.content_type
        record.size = content.size
        record.plaintext_sha256 = content.plaintext_sha256
        record.page_count = content.page_count
        record.upload_name = content.upload_name
    session.add(record)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="record.create",
        target=f"record:{record.archive_code}",
        detail={"record_id": record.id, "legacy_code": new.archive_code is not None},
    )
    return _info(record, bt.name)


def find_record_row(session: Session, archive_code: str) -> Record | None:
    """The row of the record with this code, or of the record that once had it (a former code
    kept as an alias when a key change renamed the record); ``None`` if neither."""
    row = session.scalars(select(Record).where(Record.archive_code == archive_code)).first()
    if row is not None:
        return row
    return session.scalars(
        select(Record)
        .join(RecordAlias, RecordAlias.record_id == Record.id)
        .where(RecordAlias.archive_code == archive_code)
    ).first()


def get_record(session: Session, archive_code: str) -> RecordInfo:
    """The record with this code, or a former code of it: the answer carries the record's
    current code. Visibility is the policy's business, not this function's.

    :raises NotFoundError: no such record.
    """
    row = find_record_row(session, archive_code)
    if row is None:
        raise NotFoundError("no such record")
    name = session.scalar(select(BusinessType.name).where(BusinessType.id == row.business_type_id))
    return _info(row, str(name))


def former_codes(session: Session, record_id: int) -> tuple[str, ...]:
    """The codes the record was known by before key changes renamed it, oldest first."""
    return tuple(
        session.scalars(
            select(RecordAlias.archive_code)
            .where(RecordAlias.record_id == record_id)
            .order_by(RecordAlias.id)
        )
    )


def get_record_by_id(session: Session, record_id: int) -> RecordInfo:
    """The record with this catalog id (the vault's objects name records by id).

    :raises NotFoundError: no such record.
    """
    row = session.execute(
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(Record.id == record_id)
    ).first()
    if row is None:
        raise NotFoundError("no such record")
    return _info(row[0], row[1])


def mark_content_destroyed(session: Session, archive_code: str, *, actor: str) -> RecordInfo:
    """Set a record ``disposed`` once its content is destroyed; its row and code stay forever.

    :raises NotFoundError: no such record.
    """
    row = find_record_row(session, archive_code)
    if row is None:
        raise NotFoundError("no such record")
    if row.status != RecordStatus.disposed:
        row.status = RecordStatus.disposed.value
        record_event(
            session,
            actor=actor,
            action="record.content_destroyed",
            target=f"record:{row.archive_code}",
            detail={"record_id": row.id},
        )
    session.flush()
    return get_record(session, row.archive_code)
