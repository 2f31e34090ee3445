"""What the four-property check (四性检测, ``api.services.fourprop``) asks of the catalog:
which records a check covers, and the archive-code serials handed out per year and type.

Read-only: nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.change_models import RecordAlias
from catalog.codes import parse_code
from catalog.models import AuditEvent, BusinessType, CodeCounter, Record
from catalog.policy import visible_records_filter
from catalog.records import RecordInfo
from catalog.records import _info as record_info
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError

__all__ = [
    "GAP_EXPLAINED",
    "SerialRun",
    "explain_gap",
    "explained_codes",
    "legacy_series_tops",
    "records_to_check",
    "serial_runs",
]


def records_to_check(
    session: Session,
    *,
    who: UserInfo | None,
    codes: Sequence[str] = (),
    business_type: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    limit: int | None = None,
) -> list[RecordInfo]:
    """The records a check covers, in archive-code order: the given codes (or former codes),
    or those of the type and year range; only the ones ``who`` may see (``None``: the system,
    every record).

    A code that does not exist or is hidden is simply not in the answer; the caller tells the
    two apart from nothing.
    """
    stmt = select(Record, BusinessType.name).join(
        BusinessType, BusinessType.id == Record.business_type_id
    )
    if who is not None:
        stmt = stmt.where(visible_records_filter(who))
    if codes:
        wanted = sorted(set(codes))
        renamed = select(RecordAlias.record_id).where(RecordAlias.archive_code.in_(wanted))
        stmt = stmt.where(or_(Record.archive_code.in_(wanted), Record.id.in_(renamed)))
    if business_type:
        stmt = stmt.where(BusinessType.name == business_type)
    if year_from is not None:
        stmt = stmt.where(Record.year >= year_from)
    if year_to is not None:
        stmt = stmt.where(Record.year <= year_to)
    stmt = stmt.order_by(Record.year, BusinessType.name, Record.serial)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [record_info(row[0], row[1]) for row in session.execute(stmt).all()]


@dataclass(frozen=True)
class SerialRun:
    """The serials of one year and business type: those the counter handed out, and those a
    record (live or disposed: a tombstone keeps its code) still holds, or held before a key
    change renamed it (its former code is kept as an alias)."""

    year: int
    business_type: str
    last_serial: int
    held: frozenset[int]

    @property
    def missing(self) -> list[int]:
        """Serials handed out that no record holds: gaps the archive must explain."""
        top = max(self.last_serial, max(self.held, default=0))
        return [n for n in range(1, top + 1) if n not in self.held]


def serial_runs(
    session: Session,
    *,
    business_type: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
) -> list[SerialRun]:
    """Every year and type that has a counter or a record, with the serials held."""
    held: dict[tuple[int, str], set[int]] = {}
    rec = select(Record.year, BusinessType.name, Record.serial).join(
        BusinessType, BusinessType.id == Record.business_type_id
    )
    cnt = select(CodeCounter.year, BusinessType.name, CodeCounter.last_serial).join(
        BusinessType, BusinessType.id == CodeCounter.business_type_id
    )
    if business_type:
        rec = rec.where(BusinessType.name == business_type)
        cnt = cnt.where(BusinessType.name == business_type)
    if year_from is not None:
        rec, cnt = rec.where(Record.year >= year_from), cnt.where(CodeCounter.year >= year_from)
    if year_to is not None:
        rec, cnt = rec.where(Record.year <= year_to), cnt.where(CodeCounter.year <= year_to)
    former = select(RecordAlias.year, BusinessType.name, RecordAlias.serial).join(
        BusinessType, BusinessType.id == RecordAlias.business_type_id
    )
    if business_type:
        former = former.where(BusinessType.name == business_type)
    if year_from is not None:
        former = former.where(RecordAlias.year >= year_from)
    if year_to is not None:
        former = former.where(RecordAlias.year <= year_to)
    for year, name, serial in [*session.execute(rec), *session.execute(former)]:
        held.setdefault((year, name), set()).add(serial)
    last: dict[tuple[int, str], int] = {
        (year, name): serial for year, name, serial in session.execute(cnt)
    }
    keys = sorted(set(held) | set(last))
    return [
        SerialRun(year, name, last.get((year, name), 0), frozenset(held.get((year, name), ())))
        for year, name in keys
    ]


GAP_EXPLAINED = "code.gap_explained"
"""The audit action by which a director explains a serial no record holds (a lost paper, a
number skipped by the old register); its target is ``code:<archive code>``."""


def explained_codes(session: Session) -> frozenset[str]:
    """The archive codes whose missing serial a director has explained."""
    rows = session.scalars(
        select(AuditEvent.target).where(
            AuditEvent.action == GAP_EXPLAINED, AuditEvent.outcome == "ok"
        )
    )
    return frozenset(t.removeprefix("code:") for t in rows if t)


def legacy_series_tops(session: Session) -> dict[tuple[int, str], int]:
    """Per year and type, the highest serial a record took with a code of its own (a legacy
    code kept at intake, or a code kept by an import): the serials below it were numbered by
    an earlier register, not handed out by dangan."""
    ids: set[int] = set()
    for action, detail in session.execute(
        select(AuditEvent.action, AuditEvent.detail).where(
            AuditEvent.action.in_(["record.create", "record.import"]), AuditEvent.outcome == "ok"
        )
    ):
        doc = json.loads(detail or "{}")
        if action == "record.import" or doc.get("legacy_code"):
            rid = doc.get("record_id")
            if isinstance(rid, int):
                ids.add(rid)
    tops: dict[tuple[int, str], int] = {}
    if not ids:
        return tops
    for year, name, serial in session.execute(
        select(Record.year, BusinessType.name, Record.serial)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(Record.id.in_(sorted(ids)))
    ):
        key = (year, name)
        tops[key] = max(tops.get(key, 0), serial)
    return tops


def explain_gap(session: Session, archive_code: str, *, reason: str, actor: str) -> None:
    """Record why no record holds ``archive_code`` (audited as :data:`GAP_EXPLAINED`).

    :raises InvalidInputError: a malformed code, an empty or overlong reason.
    :raises ConflictError: a record holds that code: it is no gap.
    """
    code = parse_code(archive_code)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidInputError("give a reason of 1 to 500 characters")
    text = str(code)
    taken = session.scalar(select(Record.id).where(Record.archive_code == text))
    if taken is not None:
        raise ConflictError(f"{text} is held by a record: it is no gap")
    record_event(
        session,
        actor=actor,
        action=GAP_EXPLAINED,
        target=f"code:{text}",
        detail={"reason": reason},
    )
