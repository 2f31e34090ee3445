"""What the four-property check (四性检测, ``api.services.fourprop``) asks of the catalog:
which records a check covers, and the archive-code serials handed out per year and type.

Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import BusinessType, CodeCounter, Record
from catalog.policy import visible_records_filter
from catalog.records import RecordInfo
from catalog.records import _info as record_info
from catalog.users import UserInfo

__all__ = ["SerialRun", "records_to_check", "serial_runs"]


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
    """The records a check covers, in archive-code order: the given codes, or those of the
    type and year range; only the ones ``who`` may see (``None``: the system, every record).

    A code that does not exist or is hidden is simply not in the answer; the caller tells the
    two apart from nothing.
    """
    stmt = select(Record, BusinessType.name).join(
        BusinessType, BusinessType.id == Record.business_type_id
    )
    if who is not None:
        stmt = stmt.where(visible_records_filter(who))
    if codes:
        stmt = stmt.where(Record.archive_code.in_(sorted(set(codes))))
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
    record (live or disposed: a tombstone keeps its code) still holds."""

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
    for year, name, serial in session.execute(rec):
        held.setdefault((year, name), set()).add(serial)
    last: dict[tuple[int, str], int] = {
        (year, name): serial for year, name, serial in session.execute(cnt)
    }
    keys = sorted(set(held) | set(last))
    return [
        SerialRun(year, name, last.get((year, name), 0), frozenset(held.get((year, name), ())))
        for year, name in keys
    ]
