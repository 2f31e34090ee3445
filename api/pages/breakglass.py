"""The break-glass page (``/breakglass``) and the incident log's page (``/incidents``).

Both only read; granting, revoking, filing paperwork, approving, reporting, recording actions
and closing go through the JSON API (``/api/v1/breakglass``, ``/api/v1/incidents``) from
``api/static/breakglass.js``, so the pages and the scripts share one path through the policy
and the audit. What a person sees is what the services give them: every grant for those who
grant, approve or read the audit trail, their own for everyone else; every incident for those
who manage incidents, their own reports for everyone else.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.pages.labels import N_
from api.services import breakglass as bg
from api.services import incidents as inc
from catalog import MAX_HOURS, Action, IncidentKind, is_allowed

router = APIRouter(include_in_schema=False)

# A grant's status and an incident's kind and state, as the pages name them.
GRANT_STATUS = {
    "requested": N_("requested"),
    "active": N_("active"),
    "expired": N_("expired"),
    "refused": N_("refused"),
    "revoked": N_("revoked"),
    "closed": N_("closed"),
}
INCIDENT_WORDS = {
    "leak": N_("suspected leak"),
    "loss": N_("suspected loss"),
    "open": N_("incident open"),
    "closed": N_("closed"),
}


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@router.get("/breakglass", response_class=HTMLResponse)
def breakglass_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Grants and requests, with what this person may do about them."""
    now = dt.datetime.now(dt.UTC)
    found = bg.grants(rt, user)
    rows = [
        {
            "g": g,
            "status": GRANT_STATUS[g.status(now).value],
            "overdue": g.is_overdue(now),
            "granted_at": _when(g.granted_at),
            "ends_at": _when(g.ends_at),
            "due": _when(g.paperwork_due),
            "mine": g.grantee_id == user.id,
        }
        for g in found
    ]
    return render(
        request,
        "breakglass.html",
        {
            "rows": rows,
            "overdue": sum(1 for r in rows if r["overdue"]),
            "may_grant": is_allowed(user, Action.breakglass_grant),
            "may_approve": is_allowed(user, Action.breakglass_approve),
            "max_hours": MAX_HOURS,
        },
        user=user,
    )


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """The incident log, newest first, with the report form; each incident's actions open
    below it for those who manage incidents."""
    manages = is_allowed(user, Action.incident_manage)
    found = inc.incidents(rt, user)
    shown = [inc.one(rt, user, i.id) if manages else i for i in found[:50]]
    return render(
        request,
        "incidents.html",
        {
            "incidents": shown,
            "words": INCIDENT_WORDS,
            "kinds": [k.value for k in IncidentKind],
            "manages": manages,
            "when": _when,
        },
        user=user,
    )
