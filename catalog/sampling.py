"""The quarterly sampling audit in the catalog: the population a quarter's draw is taken
from, the trail head that seeds it, the draw itself with its items, and the manual checklist
(``docs/sampling.md``).

The size of the sample, the seed and the choice of records are the service's arithmetic
(``api/services/sampling.py``); this module keeps what was drawn and answers who may see which
item. A sampled record that is hidden from a reader is left out of everything they get, as
a missing one is (:func:`catalog.policy.visible_records_filter`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, not_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.audit import ChainHead, record_event
from catalog.models import AuditEvent, BusinessType, Record, RecordStatus, SecurityClass, User
from catalog.policy import record_not_found, record_target, visible_records_filter
from catalog.sampling_models import SamplingAudit, SamplingItem
from catalog.users import UserInfo
from dangan.errors import ConflictError, NotFoundError

__all__ = [
    "SAMPLING_ACTION_PREFIXES",
    "AuditInfo",
    "DrawnItem",
    "ItemInfo",
    "PopulationRecord",
    "get_audit",
    "get_item",
    "list_audits",
    "list_items",
    "record_checklist",
    "sampling_head",
    "sampling_population",
    "store_draw",
]

#: Audit actions of the sampling audit itself. The seed's trail head skips them, so that a
#: preview, a report or a finding never draws another sample (docs/sampling.md, "The seed").
SAMPLING_ACTION_PREFIXES = ("sampling.", "finding.")

_NO_CLERK = "—"  # a record entered by the system (an import, a CLI without --as)


@dataclass(frozen=True)
class PopulationRecord:
    """A record of the quarter's population, with the two fields that make its stratum."""

    record_id: int
    archive_code: str
    business_type: str
    clerk: str  # the name of the user who entered it, or "—"
    security_class: SecurityClass


@dataclass(frozen=True)
class DrawnItem:
    """A sampled record and its automatic results, as the service hands them over to keep."""

    record_id: int
    archive_code: str
    business_type: str
    clerk: str
    auto_outcome: str
    auto_items: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class AuditInfo:
    id: int
    quarter: str
    seed: str
    head_id: int
    head_hash: str
    population: int
    sample_size: int
    defect_rate: float
    confidence: float
    drawn_at: dt.datetime
    drawn_by: str


@dataclass(frozen=True)
class ItemInfo:
    """One sampled record as a reader who may see it gets it."""

    id: int
    audit_id: int
    position: int
    record_id: int
    archive_code: str
    business_type: str
    clerk: str
    security_class: SecurityClass
    record_status: RecordStatus
    created_by: int | None
    auto_outcome: str
    auto_items: tuple[Mapping[str, Any], ...]
    manual: Mapping[str, bool] | None
    manual_note: str | None
    manual_by: str | None
    manual_at: dt.datetime | None

    # What catalog.policy.require reads of a record (RecordLike).
    @property
    def status(self) -> str:
        return self.record_status.value

    @property
    def is_defective(self) -> bool:
        """A failed automatic rule, or a "no" in the manual checklist."""
        return self.auto_outcome == "fail" or (
            self.manual is not None and not all(self.manual.values())
        )


def sampling_population(
    session: Session, start: dt.datetime, end: dt.datetime
) -> list[PopulationRecord]:
    """Every record created in ``[start, end)`` that is not disposed, of every class, in
    archive-code order. The draw covers the whole archive; readers see their part of it."""
    rows = session.execute(
        select(Record.id, Record.archive_code, BusinessType.name, User.name, Record.security_class)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .outerjoin(User, User.id == Record.created_by)
        .where(
            Record.created_at >= start,
            Record.created_at < end,
            Record.status != RecordStatus.disposed.value,
        )
        .order_by(Record.archive_code)
    )
    return [
        PopulationRecord(rid, code, btype, clerk or _NO_CLERK, SecurityClass(cls))
        for rid, code, btype, clerk, cls in rows
    ]


def sampling_head(session: Session) -> ChainHead | None:
    """The newest audit event that is not the sampling audit's own (its id and hash)."""
    not_ours = [not_(AuditEvent.action.startswith(p)) for p in SAMPLING_ACTION_PREFIXES]
    row = session.execute(
        select(AuditEvent.id, AuditEvent.hash)
        .where(*not_ours)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    return ChainHead(row.id, row.hash) if row else None


def _audit_info(a: SamplingAudit) -> AuditInfo:
    return AuditInfo(
        a.id,
        a.quarter,
        a.seed,
        a.head_id,
        a.head_hash,
        a.population,
        a.sample_size,
        a.defect_rate,
        a.confidence,
        a.drawn_at,
        a.drawn_by,
    )


def store_draw(
    session: Session,
    *,
    quarter: str,
    seed: str,
    head: ChainHead,
    population: int,
    defect_rate: float,
    confidence: float,
    items: Sequence[DrawnItem],
    actor: str,
    now: dt.datetime | None = None,
) -> AuditInfo:
    """Keep a quarter's draw and its items, audited: ``sampling.draw`` (no record named, no
    count of hidden records) and one ``sampling.item`` per record, about that record.

    :raises ConflictError: the quarter was drawn already.
    """
    if session.scalar(select(SamplingAudit.id).where(SamplingAudit.quarter == quarter)):
        raise ConflictError(f"{quarter} has been drawn already; open its audit")
    audit = SamplingAudit(
        quarter=quarter,
        seed=seed,
        head_id=head.id,
        head_hash=head.hash,
        population=population,
        sample_size=len(items),
        defect_rate=defect_rate,
        confidence=confidence,
        drawn_by=actor,
        **({"drawn_at": now} if now else {}),
    )
    session.add(audit)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"{quarter} has been drawn already; open its audit") from None
    for position, item in enumerate(items, start=1):
        session.add(
            SamplingItem(
                audit_id=audit.id,
                record_id=item.record_id,
                position=position,
                business_type=item.business_type,
                clerk=item.clerk,
                auto_outcome=item.auto_outcome,
                auto_items=[dict(i) for i in item.auto_items],
            )
        )
        record_event(
            session,
            actor=actor,
            action="sampling.item",
            target=record_target(item.archive_code),
            outcome="ok" if item.auto_outcome != "fail" else "error",
            detail={"audit_id": audit.id, "quarter": quarter, "automatic": item.auto_outcome},
            now=now,
        )
    record_event(
        session,
        actor=actor,
        action="sampling.draw",
        target=f"sampling:{quarter}",
        detail={"audit_id": audit.id, "seed": seed, "head_id": head.id},
        now=now,
    )
    session.flush()
    return _audit_info(audit)


def list_audits(session: Session) -> list[AuditInfo]:
    """Every draw, newest quarter first."""
    rows = session.scalars(select(SamplingAudit).order_by(SamplingAudit.quarter.desc()))
    return [_audit_info(a) for a in rows]


def get_audit(session: Session, audit_id: int) -> AuditInfo:
    """:raises NotFoundError: no such audit."""
    audit = session.get(SamplingAudit, audit_id)
    if audit is None:
        raise NotFoundError("no such sampling audit")
    return _audit_info(audit)


def _items_query(who: UserInfo | None) -> Select[SamplingItem, Record]:
    stmt = select(SamplingItem, Record).join(Record, Record.id == SamplingItem.record_id)
    if who is not None:
        stmt = stmt.where(visible_records_filter(who))
    return stmt


def _item_info(item: SamplingItem, record: Record) -> ItemInfo:
    return ItemInfo(
        id=item.id,
        audit_id=item.audit_id,
        position=item.position,
        record_id=record.id,
        archive_code=record.archive_code,
        business_type=item.business_type,
        clerk=item.clerk,
        security_class=SecurityClass(record.security_class),
        record_status=RecordStatus(record.status),
        created_by=record.created_by,
        auto_outcome=item.auto_outcome,
        auto_items=tuple(item.auto_items or ()),
        manual=dict(item.manual) if item.manual is not None else None,
        manual_note=item.manual_note,
        manual_by=item.manual_by,
        manual_at=item.manual_at,
    )


def list_items(session: Session, audit_id: int, *, who: UserInfo | None) -> list[ItemInfo]:
    """The audit's items ``who`` may see (``None``: all), in the order drawn."""
    stmt = _items_query(who).where(SamplingItem.audit_id == audit_id)
    rows = session.execute(stmt.order_by(SamplingItem.position)).all()
    return [_item_info(item, record) for item, record in rows]


def get_item(session: Session, item_id: int, *, who: UserInfo | None) -> ItemInfo:
    """One item, if ``who`` may see its record.

    :raises NotFoundError: no such item, or its record is hidden (the same answer).
    """
    row = session.execute(_items_query(who).where(SamplingItem.id == item_id)).first()
    if row is None:
        raise NotFoundError("no such sampled item")
    return _item_info(row[0], row[1])


def record_checklist(
    session: Session,
    item_id: int,
    answers: Mapping[str, bool],
    *,
    note: str | None,
    actor: str,
    now: dt.datetime | None = None,
) -> ItemInfo:
    """Fill in (or correct) an item's manual checklist, audited as ``sampling.check`` with
    the answers before and after. The caller has checked the policy on the item's record.

    :raises NotFoundError: no such item.
    """
    row = session.execute(_items_query(None).where(SamplingItem.id == item_id)).first()
    if row is None:
        raise record_not_found()
    item, record = row
    before = dict(item.manual) if item.manual is not None else None
    item.manual = dict(answers)
    item.manual_note = note or None
    item.manual_by = actor
    item.manual_at = now or dt.datetime.now(dt.UTC)
    record_event(
        session,
        actor=actor,
        action="sampling.check",
        target=record_target(record.archive_code),
        outcome="ok" if all(answers.values()) else "error",
        detail={"item_id": item.id, "audit_id": item.audit_id, "before": before, "after": answers},
        now=now,
    )
    session.flush()
    return _item_info(item, record)
