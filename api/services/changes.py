"""Key changes as people ask for them: filing a change request, the directors' list, approving
(which applies it) and rejecting, each through the policy; and a status-change decision's
link to its application (``catalog.changes``, ``catalog.decisions``).

A record one may not see answers exactly as one that does not exist, and every denied attempt
leaves its trace. An approved change is indexed again (when the record was indexed) and the
record's vault sidecar is rewritten, so the vault's own account of it stays current; when the
record got a new code, so are the sidecars of the decisions that name it as their application.
Nothing here logs text, titles or names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from api.services.access import require_action
from api.services.jobs import rewrite_sidecar
from api.services.records import reindex
from api.services.runtime import Runtime
from catalog import (
    Action,
    ChangeRequestInfo,
    ChangeState,
    DecisionInfo,
    DecisionOutcome,
    KeyChange,
    RecordInfo,
    Stage,
    StaleChangeRequestError,
    UserInfo,
    approve_change_request,
    audit_denied,
    clear_decision,
    decisions_citing,
    file_change_request,
    get_change_request,
    get_record,
    is_allowed,
    list_change_requests,
    mark_stale,
    record_not_found,
    record_progress,
    record_target,
    reject_change_request,
    require,
    set_decision,
)
from dangan.errors import NotFoundError, PermissionDeniedError

__all__ = [
    "approve",
    "clear_decision_link",
    "file_request",
    "reject",
    "requests",
    "set_decision_link",
]


def _record_for(session: Any, code: str, user: UserInfo, action: Action) -> RecordInfo:
    try:
        record = get_record(session, code)
    except NotFoundError:
        raise record_not_found() from None
    require(user, action, record)
    return record


def _denied(rt: Runtime, user: UserInfo, action: Action, target: str, exc: Exception) -> None:
    with rt.db.write() as session:
        audit_denied(
            session,
            user,
            action,
            target,
            error=exc if isinstance(exc, NotFoundError | PermissionDeniedError) else None,
        )


def _refresh_sidecars(rt: Runtime, record_ids: Iterable[int], *, actor: str) -> None:
    """Write the records' sidecars again from the catalog (after the change committed)."""
    keyring = rt.vault.keyring
    if keyring is None:
        return
    for record_id in dict.fromkeys(record_ids):
        rewrite_sidecar(rt, record_id, keyring, actor=actor)


# --- change requests --------------------------------------------------------------------------


def file_request(
    rt: Runtime, code: str, user: UserInfo, changes: Mapping[str, Any], *, reason: str
) -> ChangeRequestInfo:
    """File a request to change the record's key fields (``record.request_key_change``).

    :raises NotFoundError: no such record, or hidden from ``user`` (audited).
    :raises PermissionDeniedError: the policy refuses (audited).
    :raises InvalidInputError: no reason, or changes that could not apply.
    :raises ConflictError: the record was disposed of, or the code asked for is taken.
    """
    action = Action.record_request_key_change
    try:
        with rt.db.write() as session:
            _record_for(session, code, user, action)
            return file_change_request(
                session, code, changes, reason=reason, actor=user.name, actor_id=user.id
            )
    except (NotFoundError, PermissionDeniedError) as exc:
        _denied(rt, user, action, record_target(code), exc)
        raise


def requests(
    rt: Runtime,
    user: UserInfo,
    *,
    states: Sequence[ChangeState] | None = (ChangeState.open,),
    code: str | None = None,
) -> list[ChangeRequestInfo]:
    """Change requests (``record.request_key_change``): a director sees every request about
    the records they may see; anyone else, the requests they filed, or with ``code`` every
    request about that record (so as not to file one twice).

    :raises PermissionDeniedError: the role files no requests (audited).
    :raises NotFoundError: ``code`` names no record ``user`` may see.
    """
    require_action(rt, user, Action.record_request_key_change, "change_requests")
    record_id = None
    if code is not None:
        try:
            with rt.db.read() as session:
                record_id = _record_for(session, code, user, Action.record_read_metadata).id
        except (NotFoundError, PermissionDeniedError) as exc:
            _denied(rt, user, Action.record_read_metadata, record_target(code), exc)
            raise
    decides = is_allowed(user.role, Action.record_update_key_fields)
    with rt.db.read() as session:
        return list_change_requests(
            session,
            user,
            states=states,
            record_id=record_id,
            filed_by_id=None if decides or record_id is not None else user.id,
        )


def _request_for_decision(rt: Runtime, request_id: int, user: UserInfo) -> ChangeRequestInfo:
    """The request a director decides; one about a record hidden from ``user`` is missing."""
    require_action(rt, user, Action.record_update_key_fields, f"change_request:{request_id}")
    missing = NotFoundError(f"no change request {request_id}")
    with rt.db.read() as session:
        request = get_change_request(session, request_id)
        try:
            record = get_record(session, request.archive_code)
            require(user, Action.record_update_key_fields, record)
            new_class = request.changes.get("security_class")
            if new_class is not None:
                require(user, Action.record_update_key_fields, security_class=new_class)
        except NotFoundError:
            raise missing from None
    return request


def approve(rt: Runtime, request_id: int, user: UserInfo, *, reason: str) -> KeyChange:
    """Approve a change request and apply it (``record.update_key_fields``): one transaction
    changes the record (a new archive code when its type or year changes, the old one kept as
    an alias), audited as ``record.key_change`` with before and after; the record is then
    indexed again and its sidecar rewritten.

    :raises PermissionDeniedError: not a director (audited).
    :raises NotFoundError: no such request, or one about a record hidden from ``user``.
    :raises ConflictError: the request is not open; it is stale (the record's key fields
        changed after it was filed: it is closed as ``stale``); the record was disposed of;
        the code it asks for was taken meanwhile.
    :raises InvalidInputError: no reason, or the change no longer applies.
    :raises StoreUnavailableError: a sidecar could not be rewritten (the change itself stands).
    """
    _request_for_decision(rt, request_id, user)
    try:
        with rt.db.write() as session:
            change = approve_change_request(session, request_id, actor=user.name, reason=reason)
            if record_progress(session, change.record.id).stage is Stage.done:
                reindex(rt, session, change.record.archive_code, actor=user.name)
            cited_by = [d.record_id for d in _citing(session, change)]
    except StaleChangeRequestError:
        with rt.db.write() as session:
            mark_stale(session, request_id, actor=user.name)
        raise
    _refresh_sidecars(rt, [change.record.id, *cited_by], actor=user.name)
    return change


def _citing(session: Any, change: KeyChange) -> list[DecisionInfo]:
    """The decisions whose sidecars name the record by its code: those citing it, when the
    change gave it a new one."""
    if change.former_code is None:
        return []
    return decisions_citing(session, change.record.id, None)


def reject(rt: Runtime, request_id: int, user: UserInfo, *, reason: str) -> ChangeRequestInfo:
    """Reject a change request (``record.update_key_fields``); the record is unchanged.

    :raises PermissionDeniedError: not a director (audited).
    :raises NotFoundError: no such request, or one about a record hidden from ``user``.
    :raises ConflictError: the request is not open.
    :raises InvalidInputError: no reason.
    """
    _request_for_decision(rt, request_id, user)
    with rt.db.write() as session:
        return reject_change_request(session, request_id, actor=user.name, reason=reason)


# --- status-change decisions ------------------------------------------------------------------


def set_decision_link(
    rt: Runtime,
    code: str,
    user: UserInfo,
    *,
    decision: DecisionOutcome | str,
    decision_date: dt.date,
    approver: str | None = None,
    approver_user: str | None = None,
    application_code: str | None = None,
    application_pages: str | None = None,
) -> DecisionInfo:
    """Link a status-change decision record to its application (``record.update_metadata`` on
    the decision; the application must be a record ``user`` may see); audited on both. The
    decision record's sidecar is rewritten.

    :raises NotFoundError: either record missing or hidden from ``user`` (audited);
        ``approver_user`` names no user.
    :raises PermissionDeniedError: the policy refuses (audited).
    :raises InvalidInputError: not a status-change record, malformed pages, date or approver.
    :raises ConflictError: either record was disposed of.
    """
    action, target = Action.record_update_metadata, record_target(code)
    denied = False
    try:
        with rt.db.write() as session:
            try:
                record = _record_for(session, code, user, action)
                if application_code:
                    action, target = Action.record_read_metadata, record_target(application_code)
                    _record_for(session, application_code, user, action)
            except (NotFoundError, PermissionDeniedError):
                denied = True
                raise
            link = set_decision(
                session,
                record.archive_code,
                decision=decision,
                decision_date=decision_date,
                approver=approver,
                approver_user=approver_user,
                application_code=application_code,
                application_pages=application_pages,
                actor=user.name,
            )
    except (NotFoundError, PermissionDeniedError) as exc:
        if denied:
            _denied(rt, user, action, target, exc)
        raise
    _refresh_sidecars(rt, [record.id], actor=user.name)
    return link


def clear_decision_link(rt: Runtime, code: str, user: UserInfo) -> DecisionInfo | None:
    """Remove a decision record's link to its application (``record.update_metadata``);
    audited on both records; the sidecar is rewritten.

    :raises NotFoundError: no such record, or hidden from ``user`` (audited).
    :raises PermissionDeniedError: the policy refuses (audited).
    """
    action = Action.record_update_metadata
    try:
        with rt.db.write() as session:
            record = _record_for(session, code, user, action)
            old = clear_decision(session, record.archive_code, actor=user.name)
    except (NotFoundError, PermissionDeniedError) as exc:
        _denied(rt, user, action, record_target(code), exc)
        raise
    if old is not None:
        _refresh_sidecars(rt, [record.id], actor=user.name)
    return old
