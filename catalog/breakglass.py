"""Break-glass grants (紧急授权): time-boxed emergency access for a named user, with a reason,
paperwork due within five days, and a director's approval that closes the grant.

A grant is in force from ``granted_at`` until ``ends_at``, unless revoked or closed earlier;
nothing has to run for it to end. While one is in force, :func:`with_grant` marks the holder's
:class:`~catalog.users.UserInfo` (``breakglass``), and the policy widens what that user may read
(``catalog/policy.py``, ``docs/breakglass.md``); :func:`grant_mark` lets the audit trail mark
every event the holder causes meanwhile. A grant that was ever in force owes its paperwork: an
uploaded document kept encrypted in the vault (named here by object id only), due
:data:`PAPERWORK_DAYS` days after the grant. Until a director approves it the grant is
*overdue* past that day (:func:`overdue_grants`, for the dashboard and every sampling audit).

What this module must never do: decide who may grant, approve or see a grant (that is
``catalog.policy``'s business; callers ask it first), or keep the paperwork's bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from sqlalchemy import ColumnElement, ForeignKey, Integer, String, and_, or_, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from catalog.audit import record_event
from catalog.models import Base, Role, User, VaultObject, utcnow
from catalog.policy import breakglass_gives
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "DEFAULT_HOURS",
    "MAX_HOURS",
    "PAPERWORK_DAYS",
    "BreakglassGrant",
    "GrantInfo",
    "GrantState",
    "GrantStatus",
    "approve_paperwork",
    "file_paperwork",
    "get_grant",
    "grant_access",
    "grant_in_force",
    "grant_mark",
    "grant_not_found",
    "list_grants",
    "overdue_grants",
    "request_access",
    "revoke_grant",
    "with_grant",
]

#: The office's rule: the paperwork of an emergency action is due within five days.
PAPERWORK_DAYS: Final = 5
#: The longest window one grant may open, and the default.
MAX_HOURS: Final = 72
DEFAULT_HOURS: Final = 8
_MAX_REASON: Final = 500


class GrantState(StrEnum):
    """What was last decided about a grant (stored). Whether it is in force is a matter of time
    as well: see :class:`GrantStatus`."""

    requested = "requested"  # asked for; nothing given yet
    granted = "granted"  # given: in force until ends_at
    refused = "refused"  # a request turned down
    revoked = "revoked"  # ended early; its paperwork is still owed
    closed = "closed"  # the paperwork was approved


class GrantStatus(StrEnum):
    """A grant as of a moment: its state with the clock applied."""

    requested = "requested"
    active = "active"
    expired = "expired"
    refused = "refused"
    revoked = "revoked"
    closed = "closed"


class BreakglassGrant(Base):
    """One request for, or grant of, emergency access to one user."""

    __tablename__ = "breakglass_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grantee_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(String(_MAX_REASON))
    state: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[dt.datetime | None] = mapped_column()
    granted_by: Mapped[str | None] = mapped_column(String(64))
    granted_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime | None] = mapped_column()
    # Who refused or revoked it, when and why.
    ended_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(_MAX_REASON))
    paperwork_object_id: Mapped[str | None] = mapped_column(ForeignKey("vault_objects.id"))
    paperwork_content_type: Mapped[str | None] = mapped_column(String(100))
    paperwork_by: Mapped[str | None] = mapped_column(String(64))
    paperwork_at: Mapped[dt.datetime | None] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class GrantInfo:
    id: int
    grantee: str
    grantee_id: int
    grantee_role: Role
    reason: str
    state: GrantState
    requested_at: dt.datetime | None
    granted_by: str | None
    granted_at: dt.datetime | None
    ends_at: dt.datetime | None
    ended_by: str | None
    ended_at: dt.datetime | None
    end_reason: str | None
    paperwork_object_id: str | None
    paperwork_content_type: str | None
    paperwork_size: int | None
    paperwork_by: str | None
    paperwork_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None

    @property
    def paperwork_due(self) -> dt.datetime | None:
        """When the paperwork is due: five days after the grant (none for a mere request)."""
        if self.granted_at is None:
            return None
        return self.granted_at + dt.timedelta(days=PAPERWORK_DAYS)

    def is_in_force(self, now: dt.datetime) -> bool:
        return (
            self.state is GrantState.granted
            and self.granted_at is not None
            and self.ends_at is not None
            and self.granted_at <= now < self.ends_at
        )

    def is_overdue(self, now: dt.datetime) -> bool:
        """Granted once, not yet approved, and past its paperwork's day."""
        due = self.paperwork_due
        return (
            due is not None
            and self.state in (GrantState.granted, GrantState.revoked)
            and now >= due
        )

    def status(self, now: dt.datetime) -> GrantStatus:
        if self.state is GrantState.granted:
            return GrantStatus.active if self.is_in_force(now) else GrantStatus.expired
        return GrantStatus(self.state.value)


def grant_not_found(grant_id: int) -> NotFoundError:
    """The error for a missing grant, and for one the asker may not see: the same words."""
    return NotFoundError(f"no break-glass grant {grant_id}")


_Grantee = aliased(User)


def _rows(
    session: Session, *where: ColumnElement[bool], limit: int | None = None
) -> list[GrantInfo]:
    stmt = (
        select(BreakglassGrant, _Grantee.name, _Grantee.role, VaultObject.size)
        .join(_Grantee, _Grantee.id == BreakglassGrant.grantee_id)
        .outerjoin(VaultObject, VaultObject.id == BreakglassGrant.paperwork_object_id)
        .where(*where)
        .order_by(BreakglassGrant.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        GrantInfo(
            id=g.id,
            grantee=name,
            grantee_id=g.grantee_id,
            grantee_role=Role(role),
            reason=g.reason,
            state=GrantState(g.state),
            requested_at=g.requested_at,
            granted_by=g.granted_by,
            granted_at=g.granted_at,
            ends_at=g.ends_at,
            ended_by=g.ended_by,
            ended_at=g.ended_at,
            end_reason=g.end_reason,
            paperwork_object_id=g.paperwork_object_id,
            paperwork_content_type=g.paperwork_content_type,
            paperwork_size=size,
            paperwork_by=g.paperwork_by,
            paperwork_at=g.paperwork_at,
            approved_by=g.approved_by,
            approved_at=g.approved_at,
        )
        for g, name, role, size in session.execute(stmt)
    ]


def _reason(text: str | None, what: str = "a reason") -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise InvalidInputError(f"{what} is needed")
    if len(cleaned) > _MAX_REASON:
        raise InvalidInputError(f"{what} is at most {_MAX_REASON} characters")
    return cleaned


def _hours(hours: int) -> dt.timedelta:
    if not 1 <= hours <= MAX_HOURS:
        raise InvalidInputError(f"a grant lasts 1 to {MAX_HOURS} hours")
    return dt.timedelta(hours=hours)


def _load(session: Session, grant_id: int) -> BreakglassGrant:
    row = session.get(BreakglassGrant, grant_id)
    if row is None:
        raise grant_not_found(grant_id)
    return row


def _in_force(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        BreakglassGrant.state == GrantState.granted.value,
        BreakglassGrant.granted_at <= now,
        BreakglassGrant.ends_at > now,
    )


def _grantee(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    if user.disabled:
        raise ConflictError(f"user {name!r} is disabled")
    if not breakglass_gives(Role(user.role)):
        raise InvalidInputError(
            f"a grant gives the {user.role} role nothing: it widens only what a clerk, "
            "supervisor or auditor may read"
        )
    return user


def _target(grant_id: int) -> str:
    return f"breakglass:{grant_id}"


def get_grant(session: Session, grant_id: int) -> GrantInfo:
    """:raises NotFoundError: no such grant."""
    found = _rows(session, BreakglassGrant.id == grant_id)
    if not found:
        raise grant_not_found(grant_id)
    return found[0]


def list_grants(
    session: Session,
    *,
    grantee_id: int | None = None,
    states: tuple[GrantState, ...] = (),
    limit: int = 500,
) -> list[GrantInfo]:
    """Grants and requests, newest first; only ``grantee_id``'s if given."""
    where: list[ColumnElement[bool]] = []
    if grantee_id is not None:
        where.append(BreakglassGrant.grantee_id == grantee_id)
    if states:
        where.append(BreakglassGrant.state.in_([s.value for s in states]))
    return _rows(session, *where, limit=limit)


def request_access(
    session: Session, *, user: UserInfo, reason: str, now: dt.datetime | None = None
) -> GrantInfo:
    """Ask for emergency access for oneself (``breakglass.request``), for a director or an
    admin to grant (:func:`grant_access` with ``request_id``) or refuse (:func:`revoke_grant`).

    :raises InvalidInputError: no reason, or the user's role would gain nothing by a grant.
    :raises ConflictError: the user has an open request or a grant in force already.
    """
    at = now or utcnow()
    text = _reason(reason)
    if not breakglass_gives(user.role):
        raise InvalidInputError(f"a grant gives the {user.role} role nothing")
    open_ = session.scalar(
        select(BreakglassGrant.id).where(
            BreakglassGrant.grantee_id == user.id,
            or_(
                BreakglassGrant.state == GrantState.requested.value,
                and_(*_in_force(at)),
            ),
        )
    )
    if open_ is not None:
        raise ConflictError(f"you have an open request or a grant in force already ({open_})")
    row = BreakglassGrant(
        grantee_id=user.id, reason=text, state=GrantState.requested.value, requested_at=at
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=user.name,
        action="breakglass.request",
        target=_target(row.id),
        detail={"grantee": user.name},
        now=at,
    )
    return get_grant(session, row.id)


def grant_access(
    session: Session,
    *,
    actor: str,
    hours: int = DEFAULT_HOURS,
    grantee: str | None = None,
    reason: str | None = None,
    request_id: int | None = None,
    now: dt.datetime | None = None,
) -> GrantInfo:
    """Give ``grantee`` (or the user who asked in request ``request_id``) emergency access for
    ``hours`` from now. The caller has checked ``breakglass.grant``.

    A request's reason stands unless ``reason`` is given; a direct grant needs one.

    :raises NotFoundError: no such user or request.
    :raises InvalidInputError: no reason, hours out of range, a role a grant gives nothing,
        or both or neither of ``grantee`` and ``request_id``.
    :raises ConflictError: the request is decided already, the user is disabled, or the user
        holds a grant in force already.
    """
    at = now or utcnow()
    window = _hours(hours)
    if (grantee is None) == (request_id is None):
        raise InvalidInputError("name either the user or the request to grant")
    if request_id is not None:
        row = _load(session, request_id)
        if row.state != GrantState.requested.value:
            raise ConflictError(f"break-glass request {request_id} is {row.state}, not open")
        user = session.get(User, row.grantee_id)
        assert user is not None  # noqa: S101 - a foreign key
        _grantee(session, user.name)
        if reason is not None and reason.strip():
            row.reason = _reason(reason)
    else:
        assert grantee is not None  # noqa: S101 - checked above
        user = _grantee(session, grantee)
        row = BreakglassGrant(grantee_id=user.id, reason=_reason(reason), state="granted")
        session.add(row)
    held = session.scalar(
        select(BreakglassGrant.id).where(BreakglassGrant.grantee_id == user.id, *_in_force(at))
    )
    if held is not None:
        raise ConflictError(f"user {user.name!r} holds break-glass grant {held} already")
    row.state = GrantState.granted.value
    row.granted_by = actor
    row.granted_at = at
    row.ends_at = at + window
    session.flush()
    record_event(
        session,
        actor=actor,
        action="breakglass.grant",
        target=_target(row.id),
        detail={
            "grantee": user.name,
            "hours": hours,
            "ends_at": row.ends_at.isoformat(),
            **({"request": request_id} if request_id is not None else {}),
        },
        now=at,
    )
    return get_grant(session, row.id)


def revoke_grant(
    session: Session, grant_id: int, *, actor: str, reason: str, now: dt.datetime | None = None
) -> GrantInfo:
    """Refuse an open request, or end a grant in force before its time. The caller has
    checked ``breakglass.grant``. A revoked grant still owes its paperwork.

    :raises NotFoundError: no such grant.
    :raises ConflictError: the grant is not open or not in force (expired, closed, refused).
    """
    at = now or utcnow()
    text = _reason(reason)
    row = _load(session, grant_id)
    info = get_grant(session, grant_id)
    if info.state is GrantState.requested:
        row.state = GrantState.refused.value
        action = "breakglass.refuse"
    elif info.is_in_force(at):
        row.state = GrantState.revoked.value
        action = "breakglass.revoke"
    else:
        status = info.status(at)
        raise ConflictError(f"break-glass grant {grant_id} is {status}; nothing to revoke")
    row.ended_by, row.ended_at, row.end_reason = actor, at, text
    record_event(session, actor=actor, action=action, target=_target(grant_id), now=at)
    return get_grant(session, grant_id)


def file_paperwork(
    session: Session,
    grant_id: int,
    *,
    object_id: str,
    content_type: str,
    actor: str,
    now: dt.datetime | None = None,
) -> GrantInfo:
    """Name the vault object holding a grant's paperwork (written already; a later upload
    replaces an earlier one until the paperwork is approved). The caller has checked that
    ``actor`` may (the grantee, or one who may grant).

    :raises NotFoundError: no such grant.
    :raises ConflictError: nothing was granted (a request, refused), or it is closed already.
    """
    at = now or utcnow()
    row = _load(session, grant_id)
    if row.state not in (GrantState.granted.value, GrantState.revoked.value):
        raise ConflictError(f"break-glass grant {grant_id} is {row.state}; it takes no paperwork")
    replaced = row.paperwork_object_id
    row.paperwork_object_id = object_id
    row.paperwork_content_type = content_type[:100]
    row.paperwork_by, row.paperwork_at = actor, at
    detail = {"object_id": object_id, **({"replaces": replaced} if replaced else {})}
    record_event(
        session,
        actor=actor,
        action="breakglass.paperwork",
        target=_target(grant_id),
        detail=detail,
        now=at,
    )
    return get_grant(session, grant_id)


def approve_paperwork(
    session: Session, grant_id: int, *, actor: str, now: dt.datetime | None = None
) -> GrantInfo:
    """Approve a grant's paperwork, closing the grant: a grant still in force ends now. The
    caller has checked ``breakglass.approve``.

    :raises NotFoundError: no such grant.
    :raises ConflictError: no paperwork yet, or the grant is not one that owes it.
    """
    at = now or utcnow()
    row = _load(session, grant_id)
    if row.state not in (GrantState.granted.value, GrantState.revoked.value):
        raise ConflictError(f"break-glass grant {grant_id} is {row.state}; nothing to approve")
    if row.paperwork_object_id is None:
        raise ConflictError(f"break-glass grant {grant_id} has no paperwork yet")
    ended_early = (
        row.state == GrantState.granted.value and row.ends_at is not None and at < row.ends_at
    )
    row.state = GrantState.closed.value
    row.approved_by, row.approved_at = actor, at
    record_event(
        session,
        actor=actor,
        action="breakglass.approve",
        target=_target(grant_id),
        detail={"object_id": row.paperwork_object_id, "ended_early": ended_early},
        now=at,
    )
    return get_grant(session, grant_id)


def grant_in_force(
    session: Session, user_id: int, now: dt.datetime | None = None
) -> GrantInfo | None:
    """The grant ``user_id`` holds at ``now``, if any (at most one is ever in force)."""
    found = _rows(
        session, BreakglassGrant.grantee_id == user_id, *_in_force(now or utcnow()), limit=1
    )
    return found[0] if found else None


def with_grant(session: Session, user: UserInfo, now: dt.datetime | None = None) -> UserInfo:
    """``user`` as the policy must see them at ``now``: marked with the grant they hold."""
    found = session.scalar(
        select(BreakglassGrant.id)
        .where(BreakglassGrant.grantee_id == user.id, *_in_force(now or utcnow()))
        .limit(1)
    )
    return replace(user, breakglass=found)


def grant_mark(session: Session, actor: str, at: dt.datetime) -> int | None:
    """The grant in force for the user named ``actor`` at ``at``, for the audit trail to mark
    the event with; ``None`` for the machine's actors (``worker:…``) and everyone else."""
    if ":" in actor:  # user names never hold one (catalog/users.py)
        return None
    found: int | None = session.scalar(
        select(BreakglassGrant.id)
        .join(User, User.id == BreakglassGrant.grantee_id)
        .where(User.name == actor, *_in_force(at))
        .limit(1)
    )
    return found


def overdue_grants(session: Session, now: dt.datetime | None = None) -> list[GrantInfo]:
    """Grants whose paperwork is past due and not approved, oldest first: for the dashboard
    and for every sampling audit's report. A revoked grant is among them until approved."""
    at = now or utcnow()
    found = _rows(
        session,
        BreakglassGrant.state.in_([GrantState.granted.value, GrantState.revoked.value]),
        BreakglassGrant.granted_at <= at - dt.timedelta(days=PAPERWORK_DAYS),
    )
    return sorted(found, key=lambda g: (g.granted_at or at, g.id))
