"""The review queue (``/reviews``): the records waiting for a person at an intake review gate
(材料初审, 信息录入, 复核) or sent back to their clerk, each with its gate, state, round, the
system check's findings and its pages' digitization quality findings (docs/review.md).

Supervisors and directors (``record.review``) see every such record they may see; a clerk
sees the records they entered (the service's ``mine`` listing). The page only reads: passing,
sending back and resubmitting go through the JSON API (``/api/v1/records/{code}/review`` and
``/resubmit``) from ``api/static/reviews.js``, so the policy decides each one there. The
buttons a row shows are the policy's answer too (``api.services.review.may_do``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.services import review as service
from api.services.access import require_action
from catalog import PERSON_GATES, ReviewGate, ReviewState
from catalog.policy import Action, is_allowed

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(
    request: Request,
    rt: RuntimeDep,
    user: PageUser,
    gate: ReviewGate | None = None,
    state: ReviewState | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """The records waiting for a person, the longest waiting first.

    :raises PermissionDeniedError: a role that neither reviews nor enters records (audited).
    """
    reviewer = is_allowed(user.role, Action.record_review)
    if not reviewer:
        # A clerk's gates and resubmissions: the records they entered, nobody else's.
        require_action(rt, user, Action.record_update_draft)
    queue = service.review_queue(
        rt,
        user,
        state=state,
        gate=gate,
        mine=not reviewer,
        awaiting=True,
        page=page,
        page_size=PAGE_SIZE,
    )
    filters = {"gate": gate.value if gate else "", "state": state.value if state else ""}

    def page_link(n: int) -> str:
        return "/reviews?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": n})

    return render(
        request,
        "reviews.html",
        {
            "queue": queue,
            "mine": not reviewer,
            "quality": service.queue_quality(rt, queue.rows),
            "may": {row.archive_code: service.may_do(user, row) for row in queue.rows},
            "gates": [g for g in ReviewGate if g in PERSON_GATES],
            "states": [ReviewState.open, ReviewState.returned],
            "filters": filters,
            "page": page,
            "pages": max(1, -(-queue.total // PAGE_SIZE)),
            "page_link": page_link,
        },
        user=user,
    )
