"""Bringing a restored catalog up to date from the records' sidecars.

After a catalog snapshot is loaded, the records created or changed after it are known only to
their sidecars in the vault. :func:`recover_record` writes what a sidecar (and the OCR text it
names) says into the catalog: the record's fields, its objects and their copies, its pages.
The audit events of what happened between the snapshot and the disaster are lost; each record
brought back leaves one ``record.recover`` event instead.

Never logs; the fields it is given hold names, so nothing of them goes into an audit detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.change_models import RecordAlias
from catalog.codes import _upsert_counter, claim_code, parse_code
from catalog.models import (
    BusinessType,
    ObjectRole,
    Page,
    PageState,
    Record,
    RecordStatus,
    Retention,
    SecurityClass,
    Stage,
    VaultObject,
    utcnow,
)
from catalog.objects import NewCopy, add_object, refresh_record_status, shred_object

__all__ = [
    "RecoveredObject",
    "RecoveredPage",
    "RecoveredRecord",
    "RecoveryOutcome",
    "known_objects",
    "live_sidecar_ids",
    "recover_record",
]

_FIELDS = (
    "title",
    "student_no",
    "student_name",
    "student_class",
    "security_class",
    "paper_location",
    "notes",
)


@dataclass(frozen=True)
class RecoveredObject:
    """One of the record's objects as its sidecar names it, with the copies found in the
    stores (a copy absent or of the wrong size is ``ok=False``)."""

    object_id: str
    role: ObjectRole
    key_id: str
    wrapped_key: bytes
    size: int
    plaintext_sha256: str
    copies: tuple[NewCopy, ...]
    digest_algorithm: str = "sha256"  # of plaintext_sha256 and the copies' hashes


@dataclass(frozen=True)
class RecoveredPage:
    number: int
    state: PageState
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    skew: float | None = None
    confidence: float | None = None
    engine: str | None = None
    needs_review: bool = False


@dataclass(frozen=True)
class RecoveredRecord:
    """A record's catalog fields as its sidecar states them."""

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
    created_at: dt.datetime
    content_type: str | None
    size: int | None
    plaintext_sha256: str | None
    pages: tuple[RecoveredPage, ...] | None  # None: its OCR text was not written yet
    tags: tuple[str, ...] = ()
    notes: str | None = None
    former_codes: tuple[str, ...] = ()  # codes key changes took from it, oldest first


@dataclass(frozen=True)
class RecoveryOutcome:
    record_id: int
    archive_code: str
    created: bool
    changed_fields: tuple[str, ...]
    objects_added: tuple[str, ...]
    status: RecordStatus
    needs_pipeline: bool  # no OCR text yet: its intake pipeline must run again

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changed_fields) or bool(self.objects_added)


def known_objects(session: Session, object_ids: Sequence[str]) -> set[str]:
    """Which of ``object_ids`` the catalog has a row for (live or shredded)."""
    found: set[str] = set()
    ids = list(object_ids)
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        found.update(session.scalars(select(VaultObject.id).where(VaultObject.id.in_(batch))))
    return found


def live_sidecar_ids(session: Session) -> dict[str, str]:
    """Archive code → the id of the record's live sidecar, for every record that has one."""
    rows = session.execute(
        select(Record.archive_code, VaultObject.id)
        .join(VaultObject, VaultObject.record_id == Record.id)
        .where(
            VaultObject.role == ObjectRole.sidecar.value,
            VaultObject.wrapped_key.is_not(None),
        )
    ).all()
    return {str(code): str(oid) for code, oid in rows}


def recovered_business_type(
    session: Session, name: str, security_class: SecurityClass, *, actor: str
) -> int:
    """The id of the business type a recovered record names; one added after the snapshot is
    created (also used by ``catalog.tombstones``)."""
    bt_id = session.scalar(select(BusinessType.id).where(BusinessType.name == name))
    if bt_id is not None:
        return bt_id
    # A type added after the snapshot: keep the record, with the safest retention (永久);
    # the event says so, for a person to set the real one.
    bt = BusinessType(
        name=name,
        retention=Retention.permanent.value,
        default_security_class=security_class.value,
        active=True,
    )
    session.add(bt)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="business_type.recover",
        target=f"business_type:{name}",
        detail={"retention": Retention.permanent.value, "reason": "named by a recovered record"},
    )
    return bt.id


def _new_record(session: Session, rec: RecoveredRecord, *, actor: str) -> Record:
    code = parse_code(rec.archive_code)
    bt_id = recovered_business_type(session, rec.business_type, rec.security_class, actor=actor)
    claim_code(session, str(code), now=max(utcnow(), rec.created_at))  # the counter moves past it
    record = Record(
        archive_code=rec.archive_code,
        year=rec.year,
        business_type_id=bt_id,
        serial=rec.serial,
        title=rec.title,
        student_no=rec.student_no,
        student_name=rec.student_name,
        student_class=rec.student_class,
        security_class=rec.security_class.value,
        paper_location=rec.paper_location,
        tags=list(rec.tags) or None,
        notes=rec.notes,
        status=RecordStatus.pending.value,
        content_type=rec.content_type,
        size=rec.size,
        plaintext_sha256=rec.plaintext_sha256,
        page_count=len(rec.pages) if rec.pages is not None else 0,
        stage=Stage.queued.value,
        created_at=rec.created_at,
        created_by=None,  # who entered it was in the lost audit events
    )
    session.add(record)
    session.flush()
    return record


def _rename(session: Session, record: Record, rec: RecoveredRecord, *, actor: str) -> None:
    """Give a record known by a former code the code its sidecar names (the key change that
    renamed it was after the snapshot); the old code becomes its alias."""
    code = parse_code(rec.archive_code)
    bt_id = recovered_business_type(session, rec.business_type, rec.security_class, actor=actor)
    session.execute(  # back to a code of its own it had given up: no longer an alias
        delete(RecordAlias).where(
            RecordAlias.archive_code == str(code), RecordAlias.record_id == record.id
        )
    )
    claim_code(session, str(code), now=max(utcnow(), rec.created_at))
    session.add(
        RecordAlias(
            archive_code=record.archive_code,
            record_id=record.id,
            year=record.year,
            business_type_id=record.business_type_id,
            serial=record.serial,
        )
    )
    record.archive_code, record.year = str(code), code.year
    record.business_type_id, record.serial = bt_id, code.serial
    session.flush()


def _keep_former_codes(
    session: Session, record: Record, rec: RecoveredRecord, *, actor: str
) -> None:
    """Every former code the sidecar names resolves to the record (an alias row)."""
    for former in rec.former_codes:
        if former == record.archive_code:
            continue
        if session.scalar(select(RecordAlias.id).where(RecordAlias.archive_code == former)):
            continue
        if session.scalar(select(Record.id).where(Record.archive_code == former)):
            continue  # another record's code in this catalog: not ours to take
        code = parse_code(former)
        bt_id = recovered_business_type(
            session, code.business_type, rec.security_class, actor=actor
        )
        session.add(
            RecordAlias(
                archive_code=str(code),
                record_id=record.id,
                year=code.year,
                business_type_id=bt_id,
                serial=code.serial,
            )
        )
        _upsert_counter(session, code.year, bt_id, at_least=code.serial)  # never handed out again
    session.flush()


def _set_pages(session: Session, record: Record, pages: Sequence[RecoveredPage]) -> None:
    existing = {
        p.number: p for p in session.scalars(select(Page).where(Page.record_id == record.id))
    }
    for page in pages:
        row = existing.get(page.number)
        if row is None:
            row = Page(record_id=record.id, number=page.number)
            session.add(row)
        row.state = page.state.value
        row.width, row.height = page.width, page.height
        row.rotation, row.skew = page.rotation, page.skew
        row.ocr_confidence = page.confidence
        row.engine = page.engine
        row.needs_review = page.needs_review
        row.text_object_id = None  # the per-page results live in the assembled OCR text
    record.page_count = len(pages)
    record.needs_review = record.needs_review or any(p.needs_review for p in pages)
    if record.stage != Stage.done.value:
        record.stage = Stage.done.value
        record.processed_at = record.processed_at or utcnow()


def recover_record(
    session: Session,
    rec: RecoveredRecord,
    objects: Sequence[RecoveredObject],
    *,
    actor: str,
    snapshot: str,
) -> RecoveryOutcome:
    """Make the catalog say what the record's sidecar says (in the caller's transaction).

    A record the catalog lacks is created (with the code the sidecar names; the counter moves
    past it); one it has gets the sidecar's fields. Objects the catalog does not know are
    added; a live object of the same role that the sidecar no longer names was replaced after
    the snapshot and is shredded in the catalog (its copies are gone from the stores). With the
    OCR text, the pages and the stage ``done`` follow. One ``record.recover`` event is written
    when anything changed.

    :param snapshot: the id of the snapshot restored, for the audit event.
    :raises InvalidInputError: the archive code is malformed.
    """
    record = session.scalars(select(Record).where(Record.archive_code == rec.archive_code)).first()
    changed: list[str] = []
    if record is None and rec.former_codes:
        # Renamed by a key change after the snapshot: the catalog knows it by a former code.
        record = session.scalars(
            select(Record).where(Record.archive_code.in_(rec.former_codes))
        ).first()
        if record is not None:
            _rename(session, record, rec, actor=actor)
            changed.append("archive_code")
    created = record is None
    if record is None:
        record = _new_record(session, rec, actor=actor)
    _keep_former_codes(session, record, rec, actor=actor)
    if not created:
        for name in _FIELDS:
            value = getattr(rec, name)
            value = value.value if isinstance(value, SecurityClass) else value
            if getattr(record, name) != value:
                setattr(record, name, value)
                changed.append(name)
        if list(record.tags or ()) != list(rec.tags):
            record.tags = list(rec.tags) or None
            changed.append("tags")
    named = {o.object_id for o in objects}
    roles = {o.role for o in objects}
    live = session.scalars(
        select(VaultObject).where(
            VaultObject.record_id == record.id, VaultObject.wrapped_key.is_not(None)
        )
    ).all()
    replaced = [
        o.id
        for o in live
        if o.id not in named
        and (
            ObjectRole(o.role) in roles or (o.role == ObjectRole.ocr_page and rec.pages is not None)
        )
    ]
    for object_id in replaced:
        shred_object(session, object_id=object_id, actor=actor)
    added: list[str] = []
    for obj in objects:
        if session.get(VaultObject, obj.object_id) is not None or not any(c.ok for c in obj.copies):
            continue
        add_object(
            session,
            object_id=obj.object_id,
            record_id=record.id,
            role=obj.role,
            key_id=obj.key_id,
            wrapped_key=obj.wrapped_key,
            size=obj.size,
            plaintext_sha256=obj.plaintext_sha256,
            copies=obj.copies,
            digest_algorithm=obj.digest_algorithm,
        )
        added.append(obj.object_id)
    if rec.pages is not None and (created or added):
        _set_pages(session, record, rec.pages)
    session.flush()
    status = refresh_record_status(session, record.id)
    outcome = RecoveryOutcome(
        record_id=record.id,
        archive_code=record.archive_code,
        created=created,
        changed_fields=tuple(changed),
        objects_added=tuple(added),
        status=status,
        needs_pipeline=rec.pages is None and record.stage != Stage.done.value,
    )
    if outcome.changed:
        record_event(
            session,
            actor=actor,
            action="record.recover",
            target=f"record:{record.archive_code}",
            detail={
                "record_id": record.id,
                "created": created,
                "fields": list(changed),
                "objects": list(added),
                "shredded": replaced,
                "snapshot": snapshot,
            },
        )
    return outcome
