"""The audit trail over the API: reading it (what the reader may see of it) and verifying it.

Reading goes through the policy's event filter, so events about records hidden from the reader
drop out; verifying walks the whole chain (it shows hashes and ids, never details) and is
itself audited.
"""

from __future__ import annotations

import datetime as dt

from api.services.access import require_action
from api.services.runtime import Runtime
from catalog import (
    Action,
    AuditEventInfo,
    ChainReport,
    UserInfo,
    list_visible_events,
    record_event,
    verify_chain,
)

__all__ = ["read_trail", "verify_trail"]


def read_trail(
    rt: Runtime,
    user: UserInfo,
    *,
    after_id: int = 0,
    before_id: int | None = None,
    newest_first: bool = False,
    limit: int = 100,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[AuditEventInfo]:
    """The events ``user`` may read; the cursor and filters are
    :func:`catalog.list_visible_events`'s.

    :raises PermissionDeniedError: ``user`` may not read the trail (audited).
    """
    require_action(rt, user, Action.audit_read)
    with rt.db.read() as session:
        return list_visible_events(
            session,
            user,
            after_id=after_id,
            before_id=before_id,
            newest_first=newest_first,
            limit=limit,
            action=action,
            actor=actor,
            target=target,
            outcome=outcome,
            since=since,
            until=until,
        )


def verify_trail(rt: Runtime, user: UserInfo) -> ChainReport:
    """Walk the whole chain; the verification is audited with its outcome.

    :raises PermissionDeniedError: ``user`` may not verify the trail (audited).
    """
    require_action(rt, user, Action.audit_verify)
    with rt.db.read() as session:
        report = verify_chain(session)
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action=Action.audit_verify.value,
            outcome="ok" if report.ok else "error",
            detail={"events": report.events, "problems": len(report.problems)},
        )
    return report
