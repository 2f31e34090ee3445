"""The incident log (安全事件登记): suspected leaks or losses of data, who reported them and when,
what happened, the actions taken one by one, and the closure with its summary.

An incident may name the records involved. They are kept by id and shown to each reader
through the policy's visibility filter, so a contract record named in an incident is listed
for directors alone; a code the reporter may not see answers exactly as a missing one. The
audit trail names those records in events of their own (``incident.record``, target
``record:<code>``) so that the trail others read hides them as it hides every hidden record.

What this module must never do: decide who may report, read or manage an incident (callers
ask ``catalog.policy`` first), or put an incident's words into the audit trail (they may name
people); the trail keeps ids, kinds and counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import ColumnElement, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.audit import record_event
from catalog.models import Base, Record, utcnow
from catalog.policy import record_not_found, record_target, visible_records_filter
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "Incident",
    "IncidentAction",
    "IncidentActionInfo",
    "IncidentInfo",
    "IncidentKind",
    "IncidentRecord",
    "IncidentState",
    "act_on_incident",
    "close_incident",
    "get_incident",
    "incident_not_found",
    "list_incidents",
    "report_incident",
]

_MAX_TEXT: Final = 4000
_MAX_RECORDS: Final = 200


class IncidentKind(StrEnum):
    leak = "leak"  # data seen or taken by someone who should not have it (泄露)
    loss = "loss"  # data gone or unreadable: a lost file, paper or copy (丢失)


class IncidentState(StrEnum):
    open = "open"
    closed = "closed"


class Incident(Base):
    """One suspected leak or loss."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime | None] = mapped_column()
    reported_by: Mapped[str] = mapped_column(String(64))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), index=True)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closure: Mapped[str | None] = mapped_column(Text)


class IncidentRecord(Base):
    """A record an incident names."""

    __tablename__ = "incident_records"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), primary_key=True)


class IncidentAction(Base):
    """One step taken on an incident: who, when, what."""

    __tablename__ = "incident_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class IncidentActionInfo:
    id: int
    actor: str
    at: dt.datetime
    text: str


@dataclass(frozen=True)
class IncidentInfo:
    id: int
    kind: IncidentKind
    summary: str
    occurred_at: dt.datetime | None
    reported_by: str
    reporter_id: int | None
    reported_at: dt.datetime
    state: IncidentState
    closed_by: str | None
    closed_at: dt.datetime | None
    closure: str | None
    records: tuple[str, ...]  # archive codes, only those the reader may see
    actions: tuple[IncidentActionInfo, ...]


def incident_not_found(incident_id: int) -> NotFoundError:
    """The error for a missing incident and for one the asker may not see alike."""
    return NotFoundError(f"no incident {incident_id}")


def _text(value: str | None, what: str) -> str:
    cleaned = (value or "").strip()
    if not cleaned:
        raise InvalidInputError(f"{what} is needed")
    if len(cleaned) > _MAX_TEXT:
        raise InvalidInputError(f"{what} is at most {_MAX_TEXT} characters")
    return cleaned


def _kind(value: str | IncidentKind) -> IncidentKind:
    try:
        return IncidentKind(value)
    except ValueError:
        names = ", ".join(k.value for k in IncidentKind)
        raise InvalidInputError(f"unknown incident kind; kinds are {names}") from None


def _codes_of(session: Session, ids: Sequence[int], reader: UserInfo) -> dict[int, list[str]]:
    if not ids:
        return {}
    stmt = (
        select(IncidentRecord.incident_id, Record.archive_code)
        .join(Record, Record.id == IncidentRecord.record_id)
        .where(IncidentRecord.incident_id.in_(ids), visible_records_filter(reader))
        .order_by(Record.archive_code)
    )
    found: dict[int, list[str]] = {}
    for incident_id, code in session.execute(stmt):
        found.setdefault(incident_id, []).append(code)
    return found


def _infos(
    session: Session, reader: UserInfo, rows: Sequence[Incident], *, with_actions: bool
) -> list[IncidentInfo]:
    ids = [r.id for r in rows]
    codes = _codes_of(session, ids, reader)
    actions: dict[int, list[IncidentActionInfo]] = {}
    if with_actions and ids:
        stmt = (
            select(IncidentAction)
            .where(IncidentAction.incident_id.in_(ids))
            .order_by(IncidentAction.id)
        )
        for a in session.scalars(stmt):
            actions.setdefault(a.incident_id, []).append(
                IncidentActionInfo(a.id, a.actor, a.at, a.text)
            )
    return [
        IncidentInfo(
            id=r.id,
            kind=IncidentKind(r.kind),
            summary=r.summary,
            occurred_at=r.occurred_at,
            reported_by=r.reported_by,
            reporter_id=r.reporter_id,
            reported_at=r.reported_at,
            state=IncidentState(r.state),
            closed_by=r.closed_by,
            closed_at=r.closed_at,
            closure=r.closure,
            records=tuple(codes.get(r.id, ())),
            actions=tuple(actions.get(r.id, ())),
        )
        for r in rows
    ]


def _target(incident_id: int) -> str:
    return f"incident:{incident_id}"


def report_incident(
    session: Session,
    *,
    user: UserInfo,
    kind: str | IncidentKind,
    summary: str,
    occurred_at: dt.datetime | None = None,
    records: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> IncidentInfo:
    """Log a suspected leak or loss reported by ``user`` (who has ``incident.report``).

    :param occurred_at: when it happened or was noticed, if known; not in the future.
    :param records: archive codes of the records involved, each one ``user`` may see.
    :raises InvalidInputError: an unknown kind, no summary, a time in the future, too many codes.
    :raises NotFoundError: a code names no record ``user`` may see ("no such record").
    """
    at = now or utcnow()
    parsed = _kind(kind)
    text = _text(summary, "what happened")
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            raise InvalidInputError("give the time with its time zone")
        if occurred_at > at:
            raise InvalidInputError("an incident cannot have happened in the future")
    codes = sorted(set(records))
    if len(codes) > _MAX_RECORDS:
        raise InvalidInputError(f"name at most {_MAX_RECORDS} records")
    found: dict[str, int] = {}
    if codes:
        stmt = select(Record.archive_code, Record.id).where(
            Record.archive_code.in_(codes), visible_records_filter(user)
        )
        found = dict(session.execute(stmt).all())
        if set(found) != set(codes):
            raise record_not_found()
    row = Incident(
        kind=parsed.value,
        summary=text,
        occurred_at=occurred_at,
        reported_by=user.name,
        reporter_id=user.id,
        reported_at=at,
        state=IncidentState.open.value,
    )
    session.add(row)
    session.flush()
    for code in codes:
        session.add(IncidentRecord(incident_id=row.id, record_id=found[code]))
    record_event(
        session,
        actor=user.name,
        action="incident.report",
        target=_target(row.id),
        detail={"kind": parsed.value, "records": len(codes)},
        now=at,
    )
    for code in codes:
        record_event(
            session,
            actor=user.name,
            action="incident.record",
            target=record_target(code),
            detail={"incident": row.id},
            now=at,
        )
    session.flush()
    return _infos(session, user, [row], with_actions=True)[0]


def get_incident(session: Session, incident_id: int, reader: UserInfo) -> IncidentInfo:
    """An incident with its actions, the records in it that ``reader`` may see.

    :raises NotFoundError: no such incident.
    """
    row = session.get(Incident, incident_id)
    if row is None:
        raise incident_not_found(incident_id)
    return _infos(session, reader, [row], with_actions=True)[0]


def list_incidents(
    session: Session,
    reader: UserInfo,
    *,
    reporter_id: int | None = None,
    state: IncidentState | None = None,
    kind: IncidentKind | None = None,
    limit: int = 500,
) -> list[IncidentInfo]:
    """Incidents, newest first, filtered; their actions are left out (see :func:`get_incident`)."""
    where: list[ColumnElement[bool]] = []
    if reporter_id is not None:
        where.append(Incident.reporter_id == reporter_id)
    if state is not None:
        where.append(Incident.state == state.value)
    if kind is not None:
        where.append(Incident.kind == kind.value)
    stmt = select(Incident).where(*where).order_by(Incident.id.desc()).limit(limit)
    return _infos(session, reader, list(session.scalars(stmt)), with_actions=False)


def _open(session: Session, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id)
    if row is None:
        raise incident_not_found(incident_id)
    if row.state != IncidentState.open.value:
        raise ConflictError(f"incident {incident_id} is closed")
    return row


def act_on_incident(
    session: Session,
    incident_id: int,
    *,
    reader: UserInfo,
    text: str,
    now: dt.datetime | None = None,
) -> IncidentInfo:
    """Record one action taken on an open incident (the caller has checked
    ``incident.manage``).

    :raises NotFoundError: no such incident.
    :raises ConflictError: it is closed.
    """
    at = now or utcnow()
    body = _text(text, "what was done")
    _open(session, incident_id)
    action = IncidentAction(incident_id=incident_id, actor=reader.name, at=at, text=body)
    session.add(action)
    session.flush()
    record_event(
        session,
        actor=reader.name,
        action="incident.act",
        target=_target(incident_id),
        detail={"action": action.id},
        now=at,
    )
    return get_incident(session, incident_id, reader)


def close_incident(
    session: Session,
    incident_id: int,
    *,
    reader: UserInfo,
    summary: str,
    now: dt.datetime | None = None,
) -> IncidentInfo:
    """Close an open incident with a summary of how it ended (the caller has checked
    ``incident.manage``).

    :raises NotFoundError: no such incident.
    :raises ConflictError: it is closed already.
    """
    at = now or utcnow()
    body = _text(summary, "a closing summary")
    row = _open(session, incident_id)
    row.state = IncidentState.closed.value
    row.closed_by, row.closed_at, row.closure = reader.name, at, body
    record_event(
        session,
        actor=reader.name,
        action="incident.close",
        target=_target(incident_id),
        now=at,
    )
    return get_incident(session, incident_id, reader)
