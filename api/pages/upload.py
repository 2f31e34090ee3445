"""The archivist's pages: uploading scans, and the intake queue following them to ``archived``.

The upload page only gathers the files and the fields: its script sends each file to the JSON
API (``POST /api/v1/records``) on its own, so each gets its own progress bar and its own
answer. The queue's rows are re-read every few seconds from ``/queue/rows``.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.services import records as service
from catalog import SecurityClass
from catalog.policy import Action, require

router = APIRouter(include_in_schema=False)

QUEUE_ROWS = 50


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    require(user, Action.record_create)
    types = service.filing_types(rt, user)
    return render(
        request,
        "upload.html",
        {
            "types": types,
            "contract_types": [
                t.name for t in types if t.default_security_class is SecurityClass.contract
            ],
            "this_year": dt.datetime.now(dt.UTC).year,
            "max_bytes": rt.settings.intake.max_bytes,
        },
        user=user,
    )


def _queue_context(rt: RuntimeDep, user: PageUser, mine: bool) -> dict[str, object]:
    return {"items": service.intake_queue(rt, user, limit=QUEUE_ROWS, mine=mine), "mine": mine}


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, rt: RuntimeDep, user: PageUser, mine: bool = False) -> Response:
    return render(request, "queue.html", _queue_context(rt, user, mine), user=user)


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(request: Request, rt: RuntimeDep, user: PageUser, mine: bool = False) -> Response:
    """The queue's table body alone, for the page's script to swap in."""
    return render(request, "queue_rows.html", _queue_context(rt, user, mine), user=user)
