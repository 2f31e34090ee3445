"""Listings for the HTTP API: records and audit events one person may see, and the user row a
token is checked against.

Every listing goes through the policy's filters (:func:`~catalog.policy.visible_records_filter`,
:func:`~catalog.policy.visible_events_filter`), so a hidden record is never counted, listed or
hinted at by a total. What this module must never do: filter by role itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.audit import AuditEventInfo
from catalog.audit import _info as event_info
from catalog.models import AuditEvent, BusinessType, Record, RecordStatus, Stage, User
from catalog.policy import visible_events_filter, visible_records_filter
from catalog.records import RecordInfo
from catalog.records import _info as record_info
from catalog.users import UserInfo
from catalog.users import _info as user_info

__all__ = [
    "RecordListing",
    "RecordRow",
    "UserStamp",
    "list_visible_events",
    "list_visible_records",
    "user_stamp",
]


@dataclass(frozen=True)
class RecordRow:
    """A record in a listing, with where its intake stands."""

    record: RecordInfo
    stage: Stage
    needs_review: bool


@dataclass(frozen=True)
class RecordListing:
    """One page of a listing; ``total`` counts the visible matches only."""

    total: int
    rows: tuple[RecordRow, ...]


def list_visible_records(
    session: Session,
    who: UserInfo,
    *,
    business_type: str | None = None,
    year: int | None = None,
    status: RecordStatus | None = None,
    stage: Stage | None = None,
    created_by: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> RecordListing:
    """The records ``who`` may see, newest first, filtered by exact field values."""
    conditions = [visible_records_filter(who)]
    if created_by is not None:
        conditions.append(Record.created_by == created_by)
    if business_type is not None:
        conditions.append(BusinessType.name == business_type)
    if year is not None:
        conditions.append(Record.year == year)
    if status is not None:
        conditions.append(Record.status == status.value)
    if stage is not None:
        conditions.append(Record.stage == stage.value)
    base = (
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(*conditions)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Record.id.desc()).offset(offset).limit(limit)).all()
    return RecordListing(
        total=int(total),
        rows=tuple(
            RecordRow(record_info(r[0], r[1]), Stage(r[0].stage), r[0].needs_review) for r in rows
        ),
    )


def list_visible_events(
    session: Session,
    who: UserInfo,
    *,
    after_id: int = 0,
    before_id: int | None = None,
    newest_first: bool = False,
    limit: int = 100,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    targets: Sequence[str] | None = None,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[AuditEventInfo]:
    """Audit events ``who`` may read, in chain order from a cursor, filtered by exact values.

    Events about records hidden from ``who`` (or about codes that match no record) are left
    out, so the trail never tells a hidden record from a missing one.

    :param after_id: only events with a greater id; ``before_id``: only those with a smaller.
    :param newest_first: the newest ``limit`` events of the range, newest first (paging back
        from the head) instead of the oldest in chain order.
    :param since: only events at or after this moment; ``until``: only those before it.
    :param targets: only events naming one of these (a record's code and its former codes).
    """
    stmt = select(AuditEvent).where(AuditEvent.id > after_id, visible_events_filter(who))
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if target:
        stmt = stmt.where(AuditEvent.target == target)
    if targets is not None:
        stmt = stmt.where(AuditEvent.target.in_(list(targets)))
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    order = AuditEvent.id.desc() if newest_first else AuditEvent.id
    return [event_info(r) for r in session.scalars(stmt.order_by(order).limit(limit))]


@dataclass(frozen=True)
class UserStamp:
    """A user and the moment their password last changed: what a token is checked against."""

    user: UserInfo
    password_changed_at: dt.datetime


def user_stamp(session: Session, user_id: int) -> UserStamp | None:
    """The user with this id and their password's change time; ``None`` if there is none."""
    row = session.get(User, user_id)
    if row is None:
        return None
    return UserStamp(user_info(row), row.password_changed_at)
