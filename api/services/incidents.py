"""The incident log for people: reporting a suspected leak or loss, reading the log, recording
the actions taken and closing an incident (``docs/incidents.md``). The API, the pages and the
CLI call these.

Anyone may report (``incident.report``) and read what they reported; those who manage
incidents (``incident.manage``: directors, auditors) read every one, add actions and close
them. An incident someone may not read answers exactly as a missing one, and the records an
incident names are shown to each reader through the policy's visibility filter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from api.services.access import require_action
from api.services.runtime import Runtime
from catalog import (
    Action,
    IncidentInfo,
    IncidentKind,
    IncidentState,
    UserInfo,
    act_on_incident,
    audit_denied,
    close_incident,
    get_incident,
    incident_not_found,
    is_allowed,
    list_incidents,
    record_target,
    report_incident,
)
from dangan.errors import NotFoundError

__all__ = ["act", "close", "incidents", "one", "report"]


def _target(incident_id: int) -> str:
    return f"incident:{incident_id}"


def _manages(user: UserInfo) -> bool:
    return is_allowed(user, Action.incident_manage)


def report(
    rt: Runtime,
    user: UserInfo,
    *,
    kind: str,
    summary: str,
    occurred_at: dt.datetime | None = None,
    records: Sequence[str] = (),
) -> IncidentInfo:
    """Report a suspected leak or loss (``incident.report``).

    :raises NotFoundError: a record code names nothing ``user`` may see (audited, as a read
        of that record would be).
    """
    require_action(rt, user, Action.incident_report)
    try:
        with rt.db.write() as session:
            return report_incident(
                session,
                user=user,
                kind=kind,
                summary=summary,
                occurred_at=occurred_at,
                records=records,
            )
    except NotFoundError as exc:
        with rt.db.write() as session:
            for code in sorted(set(records)):
                audit_denied(session, user, Action.incident_report, record_target(code), error=exc)
        raise


def incidents(
    rt: Runtime,
    user: UserInfo,
    *,
    state: IncidentState | None = None,
    kind: IncidentKind | None = None,
) -> list[IncidentInfo]:
    """The log, newest first: every incident for those who manage them, one's own reports for
    everyone else (``incident.report``)."""
    require_action(rt, user, Action.incident_report)
    mine = None if _manages(user) else user.id
    with rt.db.read() as session:
        return list_incidents(session, user, reporter_id=mine, state=state, kind=kind)


def one(rt: Runtime, user: UserInfo, incident_id: int) -> IncidentInfo:
    """One incident with its actions (``incident.report``; one's own unless one manages).

    :raises NotFoundError: no such incident, or one ``user`` may not read (audited).
    """
    require_action(rt, user, Action.incident_report, _target(incident_id))
    with rt.db.read() as session:
        try:
            found: IncidentInfo | None = get_incident(session, incident_id, user)
        except NotFoundError:
            found = None
    if found is None or not (_manages(user) or found.reporter_id == user.id):
        error = incident_not_found(incident_id)
        with rt.db.write() as session:
            audit_denied(session, user, Action.incident_report, _target(incident_id), error=error)
        raise error
    return found


def _manage(rt: Runtime, user: UserInfo, incident_id: int) -> None:
    require_action(rt, user, Action.incident_manage, _target(incident_id))


def act(rt: Runtime, user: UserInfo, incident_id: int, text: str) -> IncidentInfo:
    """Record an action taken on an open incident (``incident.manage``)."""
    _manage(rt, user, incident_id)
    try:
        with rt.db.write() as session:
            return act_on_incident(session, incident_id, reader=user, text=text)
    except NotFoundError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.incident_manage, _target(incident_id), error=exc)
        raise


def close(rt: Runtime, user: UserInfo, incident_id: int, summary: str) -> IncidentInfo:
    """Close an open incident with a summary (``incident.manage``)."""
    _manage(rt, user, incident_id)
    try:
        with rt.db.write() as session:
            return close_incident(session, incident_id, reader=user, summary=summary)
    except NotFoundError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.incident_manage, _target(incident_id), error=exc)
        raise
