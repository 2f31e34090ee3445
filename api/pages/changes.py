"""The change requests page: a director's list of the key changes waiting for a decision, each
with its reason and buttons to approve or reject it with one's own; others see the requests
they filed and how they were decided.

The page only reads; approving and rejecting go through the JSON API
(``/api/v1/change-requests/{id}/approve`` and ``/reject``) from
``api/static/change_requests.js``. Who may open it is the policy's business
(``record.request_key_change``): the service raises, the error page answers 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.services import changes as svc
from catalog import ChangeState
from catalog.policy import Action, is_allowed

router = APIRouter(include_in_schema=False)

_DECIDED_SHOWN = 50


@router.get("/change-requests", response_class=HTMLResponse)
def change_requests_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Open requests to decide (directors) or one's own, and the latest decided ones."""
    waiting = svc.requests(rt, user)
    decided = svc.requests(
        rt, user, states=[ChangeState.approved, ChangeState.rejected, ChangeState.stale]
    )
    decided.sort(key=lambda r: r.decided_at or r.filed_at, reverse=True)
    return render(
        request,
        "change_requests.html",
        {
            "waiting": waiting,
            "decided": decided[:_DECIDED_SHOWN],
            "decides": is_allowed(user.role, Action.record_update_key_fields),
        },
        user=user,
    )
