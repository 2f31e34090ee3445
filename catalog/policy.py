"""Who may do what: the one place in dangan that decides a permission.

Every decision is a lookup in one table, action × role × security class (``_RECORD_ROWS`` and
``_SYSTEM_ROWS`` below), so that the rules can be read, reviewed, documented
(``catalog/policy_reference.py`` renders ``docs/permissions.md`` from it) and tested cell by
cell. Callers ask :func:`require` (or :func:`is_allowed`) and filter lists with
:func:`visible_records_filter`; they never compare roles themselves.

What this module must never do: let a record a user may not see differ in any way from a record
that does not exist. Contract-class (合同类) records exist for directors alone; for everyone else
:func:`require` raises the very :class:`NotFoundError` a caller raises for a missing record
(:func:`record_not_found`), the filters leave them out of every listing, count and export, and
audit events about them drop out of the trail others read (:func:`visible_events_filter`).
A disabled user may do nothing and sees nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Protocol

from sqlalchemy import ColumnElement, false, literal, or_, select, true
from sqlalchemy.orm import Session

from catalog.audit import AuditEventInfo, record_event
from catalog.change_models import RecordAlias
from catalog.models import AuditEvent, Record, RecordStatus, Role, SecurityClass
from catalog.users import UserInfo
from dangan.errors import DanganError, InvalidInputError, NotFoundError, PermissionDeniedError

__all__ = [
    "RECORD_TARGET_PREFIX",
    "Action",
    "ActionScope",
    "Permit",
    "PermitCondition",
    "PolicyRule",
    "RecordLike",
    "audit_denied",
    "breakglass_gives",
    "is_allowed",
    "policy_table",
    "record_not_found",
    "record_target",
    "require",
    "visible_classes",
    "visible_events_filter",
    "visible_records_filter",
]

# The one message for "missing" and "hidden" alike; nothing about the record may vary in it.
_NO_SUCH_RECORD: Final = "no such record"
# Audit events about a record name it as `record:<archive code>` (see record_target).
RECORD_TARGET_PREFIX: Final = "record:"


class Action(StrEnum):
    """Everything a person can ask of dangan, by a stable dotted name.

    The names are written into the audit trail (a denied attempt is recorded under its action)
    and drive the API's role × endpoint test, so a released name never changes meaning.
    """

    record_create = "record.create"
    record_read_metadata = "record.read_metadata"
    record_read_content = "record.read_content"
    record_read_history = "record.read_history"
    record_update_draft = "record.update_draft"
    record_update_metadata = "record.update_metadata"
    record_request_key_change = "record.request_key_change"
    record_update_key_fields = "record.update_key_fields"
    record_review = "record.review"
    hold_place = "hold.place"
    hold_release = "hold.release"
    disposition_approve = "disposition.approve"
    sampling_check = "sampling.check"
    finding_manage = "finding.manage"
    finding_respond = "finding.respond"
    search = "search"
    export = "export"
    stats_read = "stats.read"
    job_read = "job.read"
    job_manage = "job.manage"
    audit_read = "audit.read"
    audit_verify = "audit.verify"
    sampling_run = "sampling.run"
    fixity_run = "fixity.run"
    check_run = "check.run"
    repair_run = "repair.run"
    retention_run = "retention.run"
    backup_run = "backup.run"
    keys_manage = "keys.manage"
    user_list = "user.list"
    user_manage = "user.manage"
    business_type_manage = "business_type.manage"
    breakglass_request = "breakglass.request"
    breakglass_grant = "breakglass.grant"
    breakglass_approve = "breakglass.approve"
    incident_report = "incident.report"
    incident_manage = "incident.manage"


class ActionScope(StrEnum):
    """Whether an action's answer depends on a record's security class or on the role alone."""

    record = "record"
    system = "system"


class PermitCondition(StrEnum):
    """A rule a permit adds beyond role and class, checked by :func:`require` on the record."""

    #: The user entered the record (``created_by``) and its intake is unfinished
    #: (``pending`` or ``processing``), or its intake review made it theirs again (waiting
    #: at the clerk's gates, or sent back: ``reopened`` in :func:`require`).
    own_draft = "own_draft"


@dataclass(frozen=True)
class Permit:
    """One cell of the table: the classes a role may act on, and any extra condition.

    For a system action the classes are all of them: its answer does not depend on a class.
    """

    classes: frozenset[SecurityClass]
    condition: PermitCondition | None = None


@dataclass(frozen=True)
class PolicyRule:
    """One row of the table. A role missing from ``permits`` is denied the action."""

    action: Action
    scope: ActionScope
    summary: str
    permits: Mapping[Role, Permit]


class RecordLike(Protocol):
    """What :func:`require` reads of a record: the ORM row or any frozen view of it."""

    @property
    def security_class(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def created_by(self) -> int | None: ...


_INTERNAL_ONLY: Final = frozenset({SecurityClass.internal})
_EVERY_CLASS: Final = frozenset(SecurityClass)

# Which records exist for a role at all. Contract records exist for directors alone (DESIGN.md);
# admins see that internal records exist (counts, codes, copy health) but may read nothing of them.
_VISIBLE: Final[Mapping[Role, frozenset[SecurityClass]]] = MappingProxyType(
    {
        Role.clerk: _INTERNAL_ONLY,
        Role.supervisor: _INTERNAL_ONLY,
        Role.director: _EVERY_CLASS,
        Role.auditor: _INTERNAL_ONLY,
        Role.admin: _INTERNAL_ONLY,
    }
)

_ROLES: Final = (Role.clerk, Role.supervisor, Role.director, Role.auditor, Role.admin)
_NO: Final = None
_INT: Final = Permit(_INTERNAL_ONLY)
_ALL: Final = Permit(_EVERY_CLASS)
_OWN_INT: Final = Permit(_INTERNAL_ONLY, PermitCondition.own_draft)
_OWN_ALL: Final = Permit(_EVERY_CLASS, PermitCondition.own_draft)
_YES: Final = Permit(_EVERY_CLASS)

_Row = tuple[Action, Permit | None, Permit | None, Permit | None, Permit | None, Permit | None, str]

# The table. Columns: clerk (专员), supervisor (主管), director (总监), auditor, admin.
# fmt: off
_RECORD_ROWS: Final[tuple[_Row, ...]] = (
    (Action.record_create,             _INT,     _INT,     _ALL,     _NO,  _NO,
     "enter a new record: scans and metadata (材料初审, 信息录入); the class is the new record's"),
    (Action.record_read_metadata,      _INT,     _INT,     _ALL,     _INT, _NO,
     "see a record's metadata: detail, listings, counts by field, intake queue entries"),
    (Action.record_read_content,       _INT,     _INT,     _ALL,     _INT, _NO,
     "read what a record says: download, page images, OCR text, search snippets"),
    (Action.record_read_history,       _INT,     _INT,     _ALL,     _INT, _NO,
     "read the record's own audit history (before/after values of its changes)"),
    (Action.record_update_draft,       _OWN_INT, _OWN_INT, _OWN_ALL, _NO,  _NO,
     "correct the metadata of a record one entered while its intake is unfinished"),
    (Action.record_update_metadata,    _NO,      _INT,     _ALL,     _NO,  _NO,
     "adjust non-key fields: title, the student's class (班级), paper location, tags, notes"),
    (Action.record_request_key_change, _INT,     _INT,     _ALL,     _NO,  _NO,
     "file a change request for key fields, for a director to decide"),
    (Action.record_update_key_fields,  _NO,      _NO,      _ALL,     _NO,  _NO,
     "change key fields (student, business type, year, archive code, security class), "
     "e.g. by approving a change request"),
    (Action.record_review,             _NO,      _INT,     _ALL,     _NO,  _NO,
     "pass an intake review gate (复核) or send the record back with a reason"),
    (Action.hold_place,                _NO,      _INT,     _ALL,     _NO,  _NO,
     "place a legal hold, which blocks disposition"),
    (Action.hold_release,              _NO,      _NO,      _ALL,     _NO,  _NO,
     "release a legal hold"),
    (Action.disposition_approve,       _NO,      _NO,      _ALL,     _NO,  _NO,
     "approve (or refuse) the disposal of an expired record"),
    (Action.sampling_check,            _NO,      _NO,      _ALL,     _INT, _NO,
     "fill in the manual checklist of a sampled record (legible, matches paper, location)"),
    (Action.finding_manage,            _NO,      _NO,      _ALL,     _INT, _NO,
     "file, assign and close (with evidence) a finding about a record"),
    (Action.finding_respond,           _INT,     _INT,     _ALL,     _NO,  _NO,
     "answer a finding about a record with a fix and evidence"),
)

_SYSTEM_ROWS: Final[tuple[_Row, ...]] = (
    (Action.search,               _YES, _YES, _YES, _YES, _NO,
     "search the archive (results are the records one may see)"),
    (Action.export,               _NO,  _YES, _YES, _YES, _NO,
     "export listings and reports (rows are the records one may see)"),
    (Action.stats_read,           _YES, _YES, _YES, _YES, _YES,
     "see the dashboard and office indicators (counted over the records one may see)"),
    (Action.job_read,             _YES, _YES, _YES, _YES, _YES,
     "see jobs and their status (the records they name still need record.read_metadata)"),
    (Action.job_manage,           _NO,  _YES, _YES, _NO,  _YES,
     "retry or cancel a failed or stuck job"),
    (Action.audit_read,           _NO,  _NO,  _YES, _YES, _NO,
     "read the audit trail"),
    (Action.audit_verify,         _NO,  _NO,  _YES, _YES, _YES,
     "verify the audit chain and export its head"),
    (Action.sampling_run,         _NO,  _NO,  _YES, _YES, _NO,
     "draw the quarterly sample and read its report"),
    (Action.fixity_run,           _NO,  _NO,  _YES, _YES, _YES,
     "check the copies' fixity; shows hashes and states, never content"),
    (Action.check_run,            _NO,  _YES, _YES, _YES, _YES,
     "run the four-property check (四性检测); shows findings and figures, never content"),
    (Action.repair_run,           _NO,  _NO,  _YES, _NO,  _YES,
     "repair or re-replicate a copy from the good one"),
    (Action.retention_run,        _NO,  _NO,  _YES, _NO,  _YES,
     "run the retention schedule: propose expired records, carry out approved disposals"),
    (Action.backup_run,           _NO,  _NO,  _NO,  _NO,  _YES,
     "back the catalog up into the vault"),
    (Action.keys_manage,          _NO,  _NO,  _NO,  _NO,  _YES,
     "rotate and manage the keyring"),
    (Action.user_list,            _NO,  _NO,  _YES, _YES, _YES,
     "list users and their roles"),
    (Action.user_manage,          _NO,  _NO,  _NO,  _NO,  _YES,
     "add, disable and enable users; set passwords and roles"),
    (Action.business_type_manage, _NO,  _NO,  _YES, _NO,  _NO,
     "add or deactivate business types; set retention, default class and review gates"),
    (Action.breakglass_request,   _YES, _YES, _YES, _YES, _YES,
     "ask for time-boxed emergency access, stating a reason"),
    (Action.breakglass_grant,     _NO,  _NO,  _YES, _NO,  _YES,
     "grant a named user time-boxed emergency access"),
    (Action.breakglass_approve,   _NO,  _NO,  _YES, _NO,  _NO,
     "approve a grant's paperwork, closing it"),
    (Action.incident_report,      _YES, _YES, _YES, _YES, _YES,
     "report a suspected data leak or loss"),
    (Action.incident_manage,      _NO,  _NO,  _YES, _YES, _NO,
     "record actions on an incident and close it"),
)
# fmt: on


def _build(rows: tuple[_Row, ...], scope: ActionScope) -> dict[Action, PolicyRule]:
    rules = {}
    for action, *cells, summary in rows:
        permits = {role: g for role, g in zip(_ROLES, cells, strict=True) if g is not None}
        rules[action] = PolicyRule(action, scope, summary, MappingProxyType(permits))
    return rules


_RULES: Final[Mapping[Action, PolicyRule]] = MappingProxyType(
    {
        **_build(_RECORD_ROWS, ActionScope.record),
        **_build(_SYSTEM_ROWS, ActionScope.system),
    }
)


def policy_table() -> tuple[PolicyRule, ...]:
    """Every rule, in :class:`Action` order: for docs and for tests generated from the table."""
    return tuple(_RULES[action] for action in Action)


def _parse_class(value: SecurityClass | str) -> SecurityClass | None:
    # An unknown class (a newer schema, a damaged row) is visible to nobody: fail closed.
    try:
        return SecurityClass(value)
    except ValueError:
        return None


# Break-glass (docs/breakglass.md): while a grant is in force its holder sees every class and
# may do these reading actions on every class, as far as their role may do them at all.
# Nothing else changes: no write, no approval, no other action. Only roles that read but do
# not see every class gain anything, so only they may hold a grant (breakglass_gives).
_BREAKGLASS_READS: Final = frozenset(
    {Action.record_read_metadata, Action.record_read_content, Action.record_read_history}
)


def breakglass_gives(role: Role) -> bool:
    """Whether a break-glass grant would give ``role`` anything (who may hold one)."""
    return _VISIBLE[role] != _EVERY_CLASS and any(
        role in _RULES[action].permits for action in _BREAKGLASS_READS
    )


def visible_classes(who: Role | UserInfo) -> frozenset[SecurityClass]:
    """The security classes whose records exist for ``who``; empty for a disabled user, every
    class for a user marked with a break-glass grant in force (:attr:`UserInfo.breakglass`)."""
    if isinstance(who, UserInfo):
        if who.disabled:
            return frozenset()
        if who.breakglass is not None and breakglass_gives(who.role):
            return _EVERY_CLASS
        who = who.role
    return _VISIBLE[who]


def _permit(who: Role | UserInfo, action: Action) -> Permit | None:
    role = who.role if isinstance(who, UserInfo) else who
    permit = _RULES[action].permits.get(role)
    if (
        permit is not None
        and isinstance(who, UserInfo)
        and who.breakglass is not None
        and action in _BREAKGLASS_READS
        and breakglass_gives(role)
    ):
        return Permit(_EVERY_CLASS, permit.condition)
    return permit


def is_allowed(
    who: Role | UserInfo, action: Action, security_class: SecurityClass | str | None = None
) -> bool:
    """Whether ``who`` may do ``action``, on a record of ``security_class`` if one is given.

    Without a class, a record action is allowed when the role may do it on some class. A system
    action ignores the class. A conditional permit (own drafts) counts as allowed here;
    :func:`require` checks the condition against the record itself. Given a user rather than
    a role, a disabled user may do nothing and a break-glass grant counts.
    """
    if isinstance(who, UserInfo) and who.disabled:
        return False
    rule = _RULES[action]
    permit = _permit(who, action)
    if permit is None:
        return False
    if rule.scope is ActionScope.system or security_class is None:
        return True
    cls = _parse_class(security_class)
    return cls is not None and cls in permit.classes and cls in visible_classes(who)


def record_not_found() -> NotFoundError:
    """The error for a record that does not exist, identical to the one for a hidden record.

    Callers raise this when a lookup finds nothing, so that the two cases cannot be told apart.
    """
    return NotFoundError(_NO_SUCH_RECORD)


# A record is its clerk's draft while intake is unfinished: stored, still being read.
_DRAFT_STATUSES = frozenset({RecordStatus.pending.value, RecordStatus.processing.value})


def require(
    user: UserInfo,
    action: Action,
    record: RecordLike | None = None,
    *,
    security_class: SecurityClass | str | None = None,
    reopened: bool = False,
) -> None:
    """Allow ``user`` to do ``action`` or raise; on ``record`` or on a class if one is given.

    Call it without a record before a lookup or a listing (may this role do this at all?), then
    with the record found. A record hidden from the user raises :func:`record_not_found`'s error
    before anything else is checked, so a hidden record answers exactly as a missing one.
    ``security_class`` is for actions on a class rather than an existing record: the class of
    a record about to be created, or the new class in a key change. ``reopened``: the
    record's intake review waits for its clerk or sent it back (``catalog.ReviewInfo``), so
    it is its clerk's draft again whatever its status (docs/review.md).

    :raises NotFoundError: the record is hidden from this user's role.
    :raises PermissionDeniedError: the user is disabled, the role may not do the action (on this
        class), or the permit's condition does not hold for this record.
    :raises InvalidInputError: ``security_class`` names no class.
    :raises ValueError: a record or class was given with a system action, or both were given.
    """
    rule = _RULES[action]
    if rule.scope is ActionScope.system and (record is not None or security_class is not None):
        raise ValueError(f"{action} is not an action on a record")
    if record is not None and security_class is not None:
        raise ValueError("give a record or a security class, not both")
    cls: SecurityClass | None = None
    visible = visible_classes(user) if not user.disabled else _VISIBLE[user.role]
    if record is not None:
        cls = _parse_class(record.security_class)
        if cls is None or cls not in visible:
            raise record_not_found()
    if user.disabled:
        raise PermissionDeniedError("this account is disabled")
    permit = _permit(user, action)
    if permit is None:
        raise PermissionDeniedError(f"the {user.role} role may not do {action}")
    if security_class is not None:
        cls = _parse_class(security_class)
        if cls is None:
            names = ", ".join(c.value for c in SecurityClass)
            raise InvalidInputError(f"unknown security class; classes are {names}")
    if cls is not None and (cls not in permit.classes or cls not in visible):
        raise PermissionDeniedError(f"the {user.role} role may not do {action} on {cls} records")
    if (
        record is not None
        and permit.condition is PermitCondition.own_draft
        and (
            record.created_by != user.id
            or (record.status not in _DRAFT_STATUSES and not reopened)
            or record.status == RecordStatus.disposed.value
        )
    ):
        raise PermissionDeniedError(
            f"{action} is only for records you entered, while their intake is unfinished"
        )


def visible_records_filter(who: Role | UserInfo) -> ColumnElement[bool]:
    """A where-clause on :class:`Record` for the records ``who`` may see.

    Every listing, count, search candidate set and export of records goes through it, so a
    hidden record is never counted, listed or offered. Records of an unknown class match no one.
    """
    classes = visible_classes(who)
    if not classes:
        return false()
    return Record.security_class.in_(sorted(c.value for c in classes))


def record_target(archive_code: str) -> str:
    """The audit ``target`` naming a record; :func:`visible_events_filter` relies on it."""
    return RECORD_TARGET_PREFIX + archive_code


def visible_events_filter(who: Role | UserInfo) -> ColumnElement[bool]:
    """A where-clause on :class:`AuditEvent` for the events ``who`` may read.

    An event that names a record (``record:<code>``, the code it had then: its current code or
    a former one) is shown only when that record exists and
    is visible. Events naming a code that matches no record are hidden too: otherwise a denied
    probe for a missing code would appear in the trail while one for a hidden record would not,
    which tells the two apart. Events about anything else are shown. Who may read the trail at
    all is :attr:`Action.audit_read`'s business.
    """
    classes = visible_classes(who)
    if not classes:
        return false()
    if classes == _EVERY_CLASS:
        return true()
    visible_targets = select(literal(RECORD_TARGET_PREFIX) + Record.archive_code).where(
        visible_records_filter(who)
    )
    former_targets = (
        select(literal(RECORD_TARGET_PREFIX) + RecordAlias.archive_code)
        .join(Record, Record.id == RecordAlias.record_id)
        .where(visible_records_filter(who))
    )
    return or_(
        AuditEvent.target.is_(None),
        ~AuditEvent.target.startswith(RECORD_TARGET_PREFIX, autoescape=True),
        AuditEvent.target.in_(visible_targets),
        AuditEvent.target.in_(former_targets),
    )


def audit_denied(
    session: Session,
    user: UserInfo,
    action: Action,
    target: str | None,
    *,
    error: DanganError | None = None,
) -> AuditEventInfo:
    """Leave the trace (留痕) of a denied attempt: an event with outcome ``denied``.

    Write it in a transaction of its own, after the attempt's transaction was rolled back, or
    the rollback would take the trace with it::

        try:
            with db.write() as session:
                require(user, Action.record_read_content, row)
                ...
        except (PermissionDeniedError, NotFoundError) as exc:
            with db.write() as session:
                audit_denied(session, user, Action.record_read_content, target, error=exc)
            raise

    :param target: what was asked for, e.g. :func:`record_target` of the code the user gave.
        Use it alike for a missing and a hidden record; the trail others read hides both.
    :param error: the error the user got; its ``code`` is kept in the detail.
    """
    detail: dict[str, str] = {"role": user.role.value}
    if error is not None:
        detail["error"] = error.code
    return record_event(
        session,
        actor=user.name,
        action=action.value,
        target=target,
        outcome="denied",
        detail=detail,
    )
