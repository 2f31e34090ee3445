"""The disposition page (directors): open proposals with checkboxes to approve or reject a
selection, and the certificates of past disposals.

The page only reads; approving and rejecting go through the JSON API
(``/api/v1/disposition/approve`` and ``/reject``) from ``api/static/disposition.js``. Who may
open it is the policy's business: the service raises, the error page answers 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.services import retention as svc
from catalog import ProposalState

router = APIRouter(include_in_schema=False)


@router.get("/disposition", response_class=HTMLResponse)
def disposition_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Open proposals to decide, and the certificates already issued."""
    waiting = svc.proposals(rt, user)
    done = svc.proposals(rt, user, states=[ProposalState.disposed])
    certificates = sorted({p.certificate_id for p in done if p.certificate_id}, reverse=True)
    return render(
        request,
        "disposition.html",
        {"proposals": waiting, "certificates": certificates, "disposed": len(done)},
        user=user,
    )
