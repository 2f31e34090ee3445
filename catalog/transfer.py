"""The catalog's side of open transfer packages (``docs/transfer.md``): which records an export
takes, and a record taken back from a package with its own archive code, dates and pages.

An export's candidates go through the policy's filter, so a record hidden from the exporter is
never among them. An imported record is written in the caller's transaction with the code the
package gives it (a legacy code: the counter moves past it) and never with another one: a code
taken here is refused (:class:`ConflictError`), not renamed. Never logs; the fields it is given
hold names, so nothing of them goes into an audit detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.codes import claim_code, parse_code
from catalog.models import (
    BusinessType,
    ObjectRole,
    Page,
    PageState,
    Record,
    RecordStatus,
    SecurityClass,
    Stage,
)
from catalog.objects import add_object, refresh_record_status
from catalog.policy import visible_records_filter
from catalog.records import _LIMITS, RecordInfo
from catalog.records import _info as record_info
from catalog.users import UserInfo
from dangan.errors import InvalidInputError

__all__ = [
    "ImportedObject",
    "ImportedPage",
    "ImportedRecord",
    "import_record",
    "records_for_export",
]


def records_for_export(
    session: Session,
    who: UserInfo,
    *,
    business_type: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    record_ids: Sequence[int] | None = None,
) -> list[RecordInfo]:
    """The records ``who`` may see that match every filter given, disposed ones left out, in
    archive-code order (year, type, serial).

    :param record_ids: only these (e.g. a search's hits); ``None``: any.
    """
    conditions = [visible_records_filter(who), Record.status != RecordStatus.disposed.value]
    if business_type is not None:
        conditions.append(BusinessType.name == business_type)
    if year_from is not None:
        conditions.append(Record.year >= year_from)
    if year_to is not None:
        conditions.append(Record.year <= year_to)
    if record_ids is not None:
        if not record_ids:
            return []
        conditions.append(Record.id.in_(sorted(set(record_ids))))
    rows = session.execute(
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(*conditions)
        .order_by(Record.year, BusinessType.name, Record.serial)
    ).all()
    return [record_info(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class ImportedPage:
    """One page as the package describes it; its text goes into the OCR-text object."""

    number: int
    state: PageState
    width: int | None
    height: int | None
    rotation: int
    skew: float | None
    confidence: float | None
    engine: str | None
    needs_review: bool


@dataclass(frozen=True)
class ImportedObject:
    """An object already written to the stores for the record.

    :param written: :func:`add_object`'s fields from the vault's report of the write (the
        wrapped key, the plaintext's fixity, each copy), as intake passes them.
    """

    object_id: str
    role: ObjectRole
    written: Mapping[str, Any]


@dataclass(frozen=True)
class ImportedRecord:
    """A record's catalog fields as the package states them."""

    archive_code: str
    year: int
    business_type: str
    title: str
    student_no: str | None
    student_name: str | None
    student_class: str | None
    security_class: SecurityClass
    paper_location: str | None
    created_at: dt.datetime
    processed_at: dt.datetime | None
    needs_review: bool
    content_type: str
    size: int
    plaintext_sha256: str
    upload_name: str | None
    pages: tuple[ImportedPage, ...]


def import_record(
    session: Session,
    rec: ImportedRecord,
    objects: Sequence[ImportedObject],
    *,
    actor: str,
    actor_id: int | None,
    bag: str,
) -> RecordInfo:
    """Create the record a package carries, with its code, dates and pages, and its objects
    (written already); the pipeline is ``done`` (its OCR text came with it). Audited as
    ``record.import`` in the caller's transaction.

    :param bag: the package's name and identifier, for the audit event.
    :raises InvalidInputError: a malformed code, a code of another type or year than the
        record's, an unknown or inactive type, a field too long, a contract type filed lower.
    :raises ConflictError: the code is taken here.
    """
    for name, limit in _LIMITS.items():
        value = getattr(rec, name)
        if value is not None and len(value) > limit:
            raise InvalidInputError(f"{rec.archive_code}: {name} has at most {limit} characters")
    code = parse_code(rec.archive_code)
    if (code.year, code.business_type) != (rec.year, rec.business_type):
        raise InvalidInputError(f"archive code {code} does not match the record's year and type")
    claim_code(session, str(code), now=max(dt.datetime.now(dt.UTC), rec.created_at))
    bt = session.scalars(select(BusinessType).where(BusinessType.name == code.business_type)).one()
    if bt.default_security_class == SecurityClass.contract and (
        rec.security_class is not SecurityClass.contract
    ):
        raise InvalidInputError(f"records of type {bt.name} are always contract-class")
    record = Record(
        archive_code=str(code),
        year=code.year,
        business_type_id=bt.id,
        serial=code.serial,
        title=rec.title,
        student_no=rec.student_no,
        student_name=rec.student_name,
        student_class=rec.student_class,
        security_class=rec.security_class.value,
        paper_location=rec.paper_location,
        status=RecordStatus.pending.value,
        content_type=rec.content_type,
        size=rec.size,
        plaintext_sha256=rec.plaintext_sha256,
        page_count=len(rec.pages),
        upload_name=rec.upload_name,
        stage=Stage.done.value,
        needs_review=rec.needs_review or any(p.needs_review for p in rec.pages),
        processed_at=rec.processed_at,
        created_at=rec.created_at,
        created_by=actor_id,
    )
    session.add(record)
    session.flush()
    for page in rec.pages:
        session.add(
            Page(
                record_id=record.id,
                number=page.number,
                state=page.state.value,
                width=page.width,
                height=page.height,
                rotation=page.rotation,
                skew=page.skew,
                ocr_confidence=page.confidence,
                engine=page.engine,
                needs_review=page.needs_review,
                text_object_id=None,  # the page's text lives in the record's OCR-text object
            )
        )
    for obj in objects:
        add_object(
            session, object_id=obj.object_id, record_id=record.id, role=obj.role, **obj.written
        )
    session.flush()
    refresh_record_status(session, record.id)
    record_event(
        session,
        actor=actor,
        action="record.import",
        target=f"record:{record.archive_code}",
        detail={
            "record_id": record.id,
            "bag": bag,
            "objects": [o.object_id for o in objects],
            "pages": len(rec.pages),
        },
    )
    session.flush()
    row = session.execute(
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(Record.id == record.id)
    ).one()
    return record_info(row[0], row[1])
