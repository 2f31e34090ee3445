"""The office's figures for the dashboard: records per business type and year, intake in
progress and in trouble, copies that need repair, pages a person should look at.

Every count is taken over the records the person may see (the policy's
:func:`~catalog.policy.visible_records_filter`), so a contract (合同类) record changes no figure
that a clerk or an auditor reads, and its business type is not even named for them. Failed jobs
are counted unless they concern a hidden record, exactly as the queue lists them. What this
module must never do: return a name, a title or any other text of a record; it counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from catalog.change_models import RecordAlias
from catalog.models import (
    BusinessType,
    CopyState,
    Job,
    JobState,
    Page,
    PageState,
    Record,
    RecordStatus,
    SecurityClass,
    Stage,
    StoredCopy,
    VaultObject,
    utcnow,
)
from catalog.policy import visible_classes, visible_records_filter
from catalog.users import UserInfo

__all__ = ["INTAKE_DAYS", "ArchiveStats", "DayCount", "TypeYearCount", "archive_stats"]

#: How many days the intake-per-day figure covers, today (UTC) included.
INTAKE_DAYS: Final = 14


@dataclass(frozen=True)
class TypeYearCount:
    """How many live (not disposed) records one business type has for one year."""

    business_type: str
    year: int
    records: int


@dataclass(frozen=True)
class DayCount:
    """How many records were entered on one day (UTC)."""

    day: dt.date
    records: int


@dataclass(frozen=True)
class ArchiveStats:
    """The dashboard's figures, all counted over the records one person may see."""

    as_of: dt.datetime
    #: live records per (business type, year); types and years without one are absent.
    by_type_year: tuple[TypeYearCount, ...]
    #: records per status, every status present (zero included), disposed records too.
    by_status: Mapping[RecordStatus, int]
    #: live records whose intake has not reached ``done``.
    in_progress: int
    #: live records a person must look at (a page failed or read with low confidence).
    needs_review: int
    #: pages of live records that OCR gave up on after its retries.
    pages_failed: int
    #: pages of live records that were read, but with too little confidence.
    pages_low_confidence: int
    #: dead jobs (retries used up), leaving out those about hidden records.
    jobs_failed: int
    #: records lacking a verified copy of some content in some store.
    under_replicated: int
    #: copies of live objects of visible records found ``bad`` or ``missing``.
    copies_damaged: int
    #: records entered per day, the last :data:`INTAKE_DAYS` days, oldest first.
    intake_by_day: tuple[DayCount, ...]

    @property
    def by_type(self) -> tuple[tuple[str, int], ...]:
        """Live records per business type, most first (then by name)."""
        totals: dict[str, int] = {}
        for c in self.by_type_year:
            totals[c.business_type] = totals.get(c.business_type, 0) + c.records
        return tuple(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def live_records(self) -> int:
        return sum(c.records for c in self.by_type_year)


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def _jobs_failed(session: Session, who: UserInfo) -> int:
    dead = select(func.count(Job.id)).where(Job.state == JobState.dead.value)
    if visible_classes(who) == frozenset(SecurityClass):
        return _count(session, dead)
    # A job names its record by archive code or by one of its vault objects (see
    # api/services/queue.py); one that names a hidden record is left out, as the queue does.
    hidden = ~visible_records_filter(who)
    by_code = exists().where(Record.archive_code == Job.payload["archive_code"].as_string(), hidden)
    by_former_code = exists().where(
        RecordAlias.archive_code == Job.payload["archive_code"].as_string(),
        Record.id == RecordAlias.record_id,
        hidden,
    )
    by_object = exists().where(
        VaultObject.id == Job.payload["object_id"].as_string(),
        Record.id == VaultObject.record_id,
        hidden,
    )
    return _count(session, dead.where(~by_code, ~by_former_code, ~by_object))


def _intake_by_day(session: Session, who: UserInfo, now: dt.datetime) -> tuple[DayCount, ...]:
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=INTAKE_DAYS - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    per_day = dict.fromkeys((first + dt.timedelta(days=i) for i in range(INTAKE_DAYS)), 0)
    # Bucketed here rather than with SQL date functions, which SQLite and PostgreSQL spell
    # differently; a fortnight of timestamps is small.
    stamps = session.scalars(
        select(Record.created_at).where(visible_records_filter(who), Record.created_at >= start)
    )
    for at in stamps:
        day = at.astimezone(dt.UTC).date()
        if day in per_day:
            per_day[day] += 1
    return tuple(DayCount(day, n) for day, n in per_day.items())


def archive_stats(
    session: Session, who: UserInfo, *, now: dt.datetime | None = None
) -> ArchiveStats:
    """The dashboard's figures as ``who`` may see them.

    Who may read them at all is :attr:`~catalog.policy.Action.stats_read`'s business; this only
    counts, over the records ``who`` may see.

    :param now: the moment the intake-per-day window ends (default: now).
    """
    now = now or utcnow()
    visible = visible_records_filter(who)
    live = Record.status != RecordStatus.disposed.value
    records = select(func.count(Record.id)).where(visible, live)
    pages = (
        select(func.count(Page.id)).join(Record, Record.id == Page.record_id).where(visible, live)
    )

    by_type_year = tuple(
        TypeYearCount(str(name), int(year), int(n))
        for name, year, n in session.execute(
            select(BusinessType.name, Record.year, func.count(Record.id))
            .join(BusinessType, BusinessType.id == Record.business_type_id)
            .where(visible, live)
            .group_by(BusinessType.name, Record.year)
            .order_by(BusinessType.name, Record.year)
        )
    )
    by_status = dict.fromkeys(RecordStatus, 0)
    known = {s.value: s for s in RecordStatus}
    for status, n in session.execute(
        select(Record.status, func.count(Record.id)).where(visible).group_by(Record.status)
    ):
        if status in known:
            by_status[known[status]] = int(n)

    copies_damaged = _count(
        session,
        select(func.count(StoredCopy.id))
        .join(VaultObject, VaultObject.id == StoredCopy.object_id)
        .join(Record, Record.id == VaultObject.record_id)
        .where(
            visible,
            VaultObject.wrapped_key.is_not(None),
            StoredCopy.state.in_([CopyState.bad.value, CopyState.missing.value]),
        ),
    )
    return ArchiveStats(
        as_of=now,
        by_type_year=by_type_year,
        by_status=MappingProxyType(by_status),
        in_progress=_count(session, records.where(Record.stage != Stage.done.value)),
        needs_review=_count(session, records.where(Record.needs_review.is_(True))),
        pages_failed=_count(session, pages.where(Page.state == PageState.failed.value)),
        pages_low_confidence=_count(
            session,
            pages.where(Page.needs_review.is_(True), Page.state != PageState.failed.value),
        ),
        jobs_failed=_jobs_failed(session, who),
        under_replicated=by_status[RecordStatus.under_replicated],
        copies_damaged=copies_damaged,
        intake_by_day=_intake_by_day(session, who, now),
    )
