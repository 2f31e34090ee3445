"""The office's indicators per quarter (docs/indicators.md): how many records came in, how
fast they were archived (timeliness), how many lack required fields or pages (completeness),
and the counts by business type, year and class, and status changes per year.

Every figure is taken over the records one person may see (the policy's
:func:`~catalog.policy.visible_records_filter`). Counts and durations only: nothing here
returns a name, a title or any text of a record. Accuracy and the error rate come from the
sampling audit's findings and are joined in by the service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from catalog.models import BusinessType, Page, PageState, Record, RecordStatus
from catalog.policy import visible_records_filter
from catalog.users import UserInfo

__all__ = [
    "QuarterIntake",
    "count_by",
    "intake_by_quarter",
    "quarter_of",
    "status_changes_by_year",
]

_STUDENT_FIELDS = ("student_no", "student_name")


def quarter_of(at: dt.datetime) -> str:
    """``2026Q3`` for a moment in 2026's third quarter (UTC)."""
    at = at.astimezone(dt.UTC)
    return f"{at.year}Q{(at.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class QuarterIntake:
    """One quarter's intake, by when records were entered (UTC)."""

    quarter: str
    entered: int
    archived: int  # of those, processed to ``archived`` (two verified copies, OCR, index)
    hours_to_archive: tuple[float, ...]  # per archived record: entered → processed, sorted
    incomplete_fields: int  # live records missing a required field
    incomplete_pages: int  # live records with a page not read, or fewer pages than declared

    @property
    def mean_hours(self) -> float | None:
        h = self.hours_to_archive
        return sum(h) / len(h) if h else None

    def percentile_hours(self, p: float) -> float | None:
        """The ``p`` quantile (0..1) of the hours to archive, nearest rank."""
        h = self.hours_to_archive
        if not h:
            return None
        rank = max(1, min(len(h), round(p * len(h) + 0.5)))
        return h[rank - 1]


def _missing_any(fields: Iterable[str]) -> list[ColumnElement[bool]]:
    cols = [getattr(Record, f) for f in fields]
    return [or_(c.is_(None), func.trim(c) == "") for c in cols]


def intake_by_quarter(
    session: Session,
    who: UserInfo,
    *,
    required_fields: Sequence[str],
    no_student_types: Sequence[str],
) -> list[QuarterIntake]:
    """Every quarter with a record entered, oldest first."""
    visible = visible_records_filter(who)
    rows = session.execute(
        select(Record.id, Record.created_at, Record.processed_at, Record.status)
        .where(visible)
        .order_by(Record.created_at)
    ).all()
    student = [f for f in _STUDENT_FIELDS if f not in required_fields]
    gaps = _missing_any(required_fields)
    if student:
        gaps.append(
            and_(BusinessType.name.not_in(list(no_student_types)), or_(*_missing_any(student)))
        )
    incomplete_fields = {
        rid
        for (rid,) in session.execute(
            select(Record.id)
            .join(BusinessType, BusinessType.id == Record.business_type_id)
            .where(
                visible,
                Record.status != RecordStatus.disposed.value,
                or_(false(), *gaps),
            )
        )
    }
    read = (
        select(Page.record_id, func.count())
        .where(Page.state == PageState.done.value)
        .group_by(Page.record_id)
        .subquery()
    )
    incomplete_pages = {
        rid
        for (rid,) in session.execute(
            select(Record.id)
            .outerjoin(read, read.c.record_id == Record.id)
            .where(
                visible,
                Record.status == RecordStatus.archived.value,
                func.coalesce(read.c[1], 0) < func.coalesce(Record.page_count, 0),
            )
        )
    }
    quarters: dict[str, _Tally] = {}
    for rid, created, processed, status in rows:
        q = quarters.setdefault(quarter_of(created), _Tally())
        q.entered += 1
        if processed is not None and status != RecordStatus.disposed.value:
            q.archived += 1
            q.hours.append((processed - created).total_seconds() / 3600)
        q.fields += rid in incomplete_fields
        q.pages += rid in incomplete_pages
    return [
        QuarterIntake(name, q.entered, q.archived, tuple(sorted(q.hours)), q.fields, q.pages)
        for name, q in sorted(quarters.items())
    ]


@dataclass
class _Tally:
    entered: int = 0
    archived: int = 0
    hours: list[float] = field(default_factory=list)
    fields: int = 0
    pages: int = 0


def count_by(session: Session, who: UserInfo, field: str) -> list[tuple[str, int]]:
    """Live records per business type (``type``), year (``year``) or class (``class``),
    largest first; records without a class count under ``""``."""
    column = {
        "type": BusinessType.name,
        "year": Record.year,
        "class": func.coalesce(Record.student_class, ""),
    }[field]
    rows = session.execute(
        select(column, func.count())
        .select_from(Record)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(visible_records_filter(who), Record.status != RecordStatus.disposed.value)
        .group_by(column)
    ).all()
    return sorted(((str(k), int(n)) for k, n in rows), key=lambda kv: (-kv[1], kv[0]))


def status_changes_by_year(
    session: Session, who: UserInfo, types: Sequence[str]
) -> list[tuple[int, str, int]]:
    """Status-change records (学籍变更, 转学, 休学, 复学, ...) per year and type."""
    rows = session.execute(
        select(Record.year, BusinessType.name, func.count())
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(
            visible_records_filter(who),
            Record.status != RecordStatus.disposed.value,
            BusinessType.name.in_(list(types)),
        )
        .group_by(Record.year, BusinessType.name)
        .order_by(Record.year, BusinessType.name)
    ).all()
    return [(int(y), str(t), int(n)) for y, t, n in rows]
