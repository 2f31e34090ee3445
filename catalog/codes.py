"""Archive codes (档号) ``年份-业务类型-编号``, e.g. ``2023-新生入学-001``.

Serials count per year and business type from 1, zero-padded to at least three digits. They
are handed out by one atomic upsert on ``code_counters`` inside the caller's transaction, so
concurrent writers on SQLite and PostgreSQL alike get distinct consecutive serials, and a
rolled-back intake gives its serial back (no gap). A serial is never handed out twice: the
counter only moves forward, also past hand-given legacy codes, and records are never deleted
(a disposed record keeps its row and its code). A code a key change took from a record stays
its alias (``catalog.changes``) and is never handed out or claimed again either.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from catalog.change_models import RecordAlias
from catalog.models import BusinessType, CodeCounter, Record, utcnow
from dangan.errors import ConflictError, InvalidInputError

__all__ = [
    "EARLIEST_YEAR",
    "ArchiveCode",
    "allocate_code",
    "claim_code",
    "next_serial",
    "parse_code",
]

# Records of a school's student-records office do not predate 1949; later years need no more.
EARLIEST_YEAR = 1949
MIN_DIGITS = 3
_CODE = re.compile(r"^(\d{4})-([^\s\-0-9]{1,16})-(\d{3,9})$")


@dataclass(frozen=True, order=True)
class ArchiveCode:
    year: int
    business_type: str
    serial: int

    def __post_init__(self) -> None:
        if self.serial < 1:
            raise InvalidInputError("an archive code's serial starts at 1")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.business_type}-{self.serial:0{MIN_DIGITS}d}"


def parse_code(text: str) -> ArchiveCode:
    """Parse ``年份-业务类型-编号``; checks the form only, not the type or the year's range.

    :raises InvalidInputError: with what is wrong, e.g. a padding other than three digits.
    """
    m = _CODE.match(text.strip())
    if m is None:
        raise InvalidInputError(
            "an archive code reads 年份-业务类型-编号 with a 4-digit year and a serial of 3+ "
            "digits, e.g. 2023-新生入学-001"
        )
    year, btype, digits = int(m[1]), m[2], m[3]
    serial = int(digits)
    if serial < 1:
        raise InvalidInputError("an archive code's serial starts at 001")
    if digits != f"{serial:0{MIN_DIGITS}d}":
        raise InvalidInputError(
            f"an archive code's serial is zero-padded to 3 digits: {serial:0{MIN_DIGITS}d}, "
            f"not {digits}"
        )
    return ArchiveCode(year, btype, serial)


def _check_year(year: int, now: dt.datetime | None) -> None:
    latest = (now or utcnow()).year + 1
    if not EARLIEST_YEAR <= year <= latest:
        raise InvalidInputError(f"the year must lie between {EARLIEST_YEAR} and {latest}")


def _business_type_id(session: Session, name: str) -> int:
    bt_id = session.scalar(
        select(BusinessType.id).where(BusinessType.name == name, BusinessType.active)
    )
    if bt_id is None:
        raise InvalidInputError(f"unknown business type {name!r}")
    return bt_id


def _upsert_counter(session: Session, year: int, bt_id: int, *, at_least: int | None) -> int:
    """Move the counter forward and return its new value, in one statement.

    ``at_least=None`` takes the next serial; a number raises the counter to it if lower.
    """
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(CodeCounter).values(
        year=year, business_type_id=bt_id, last_serial=at_least if at_least else 1
    )
    current = CodeCounter.__table__.c.last_serial
    if at_least is None:
        new_value: Any = current + 1
    else:
        # Never move backwards: a legacy code below the counter leaves it where it is.
        new_value = case((current < at_least, at_least), else_=current)
    stmt = stmt.on_conflict_do_update(
        index_elements=["year", "business_type_id"], set_={"last_serial": new_value}
    ).returning(CodeCounter.last_serial)
    return int(session.execute(stmt).scalar_one())


def allocate_code(
    session: Session, *, year: int, business_type: str, now: dt.datetime | None = None
) -> ArchiveCode:
    """Hand out the next archive code for a year and business type (in the caller's transaction).

    :raises InvalidInputError: unknown or inactive type, implausible year.
    """
    _check_year(year, now)
    bt_id = _business_type_id(session, business_type)
    serial = _upsert_counter(session, year, bt_id, at_least=None)
    return ArchiveCode(year, business_type, serial)


def claim_code(session: Session, text: str, *, now: dt.datetime | None = None) -> ArchiveCode:
    """Validate a hand-given (legacy) code and advance the counter past it.

    :raises InvalidInputError: bad form, unknown type, implausible year.
    :raises ConflictError: a record already carries this code, or once did (an alias).
    """
    code = parse_code(text)
    _check_year(code.year, now)
    bt_id = _business_type_id(session, code.business_type)
    if session.scalar(select(Record.id).where(Record.archive_code == str(code))) is not None:
        raise ConflictError(f"archive code {code} is taken")
    if session.scalar(select(RecordAlias.id).where(RecordAlias.archive_code == str(code))):
        raise ConflictError(f"archive code {code} is taken (a record's former code)")
    _upsert_counter(session, code.year, bt_id, at_least=code.serial)
    return code


def next_serial(session: Session, *, year: int, business_type: str) -> int:
    """The serial the next allocation would get (for display; allocation is what counts)."""
    last = session.scalar(
        select(CodeCounter.last_serial)
        .join(BusinessType, BusinessType.id == CodeCounter.business_type_id)
        .where(CodeCounter.year == year, BusinessType.name == business_type)
    )
    return (last or 0) + 1
