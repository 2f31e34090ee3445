"""The records pages: the list with filters, and one record's page (its fields, both copies'
fixity, each page image beside its OCR text with the search's hits marked, downloads, its
history, the form to correct it where the policy allows, the form to ask for a key change and
the change requests open on it, and a status-change decision's approval chain).

A former code of a record (a key change gave it a new one) sends the browser to the record's
page under its current code (307), once the record is known to be visible."""

from __future__ import annotations

import contextlib
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.pages.marks import Piece, cut
from api.services import changes as change_service
from api.services import records as service
from api.services import review as review_service
from catalog import (
    STATUS_CHANGE_TYPES,
    ChangeRequestInfo,
    RecordInfo,
    RecordStatus,
    Stage,
    UserInfo,
)
from catalog.policy import Action, is_allowed
from dangan.errors import InvalidInputError, PermissionDeniedError
from indexer import highlight_spans, parse_query

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
IMAGE_WIDTH = 900
_DRAFT = frozenset({RecordStatus.pending, RecordStatus.processing})


@router.get("/records", response_class=HTMLResponse)
def records_page(
    request: Request,
    rt: RuntimeDep,
    user: PageUser,
    business_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    status: RecordStatus | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    listing = service.list_records(
        rt,
        user,
        business_type=business_type or None,
        year=year,
        status=status,
        page=page,
        page_size=PAGE_SIZE,
    )
    filters = {
        "type": business_type or "",
        "year": year or "",
        "status": status.value if status else "",
    }

    def page_link(n: int) -> str:
        return "/records?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": n})

    return render(
        request,
        "records.html",
        {
            "listing": listing,
            "types": [t.name for t in service.filing_types(rt, user)],
            "statuses": [s.value for s in RecordStatus],
            "filters": filters,
            "page_link": page_link,
            "page": page,
            "pages": max(1, -(-listing.total // PAGE_SIZE)),
        },
        user=user,
    )


def _editable(user: UserInfo, record: RecordInfo) -> tuple[str, ...]:
    """The fields ``user`` may correct on ``record`` (the policy's own-draft rule included)."""
    own_draft = record.created_by == user.id and record.status in _DRAFT
    non_key = ("title", "student_class", "paper_location", "tags", "notes")
    if own_draft and is_allowed(user.role, Action.record_update_draft, record.security_class):
        return (*non_key, "student_no", "student_name")
    if is_allowed(user.role, Action.record_update_metadata, record.security_class):
        return non_key
    return ()


def _change_requests(
    rt: RuntimeDep, user: UserInfo, record: RecordInfo
) -> tuple[bool, list[ChangeRequestInfo]]:
    """Whether ``user`` may ask for a key change of ``record``, and the requests open on it."""
    allowed = record.status is not RecordStatus.disposed and is_allowed(
        user.role, Action.record_request_key_change, record.security_class
    )
    if not allowed:
        return False, []
    return True, change_service.requests(rt, user, code=record.archive_code)


@router.get("/records/{code}", response_class=HTMLResponse)
def record_page(
    request: Request,
    rt: RuntimeDep,
    user: PageUser,
    code: str,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    detail = service.record_detail(rt, code, user)
    record = detail.record
    if record.archive_code != code:
        # A former code: the record's page is under its current code.
        asked = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/records/{quote(record.archive_code)}{asked}", 307)
    pages: list[tuple[int, list[Piece] | None]] = []
    hits = 0
    can_read = is_allowed(user, Action.record_read_content, record.security_class)
    texts = service.record_texts(rt, code, user) if can_read else None
    query = None
    if q.strip():
        with contextlib.suppress(InvalidInputError):  # a malformed query marks nothing
            query = parse_query(q)
    for n in range(1, record.page_count + 1):
        text = texts[n - 1] if texts is not None and n <= len(texts) else None
        if text is None:
            pages.append((n, None))
            continue
        spans = highlight_spans(query, text) if query is not None else ()
        hits += len(spans)
        pages.append((n, cut(text, spans)))
    try:
        history = service.record_history(rt, code, user, limit=200)
    except PermissionDeniedError:
        history = None
    # The intake review (docs/review.md): where the record stands, and its decisions so far.
    review = review_service.review_of(rt, code, user)
    review_events = [e for e in history or () if e.action == "record.review" and e.outcome == "ok"]
    can_request, open_requests = _change_requests(rt, user, record)
    return render(
        request,
        "record.html",
        {
            "d": detail,
            "r": record,
            "q": q,
            "pages": pages,
            "hits": hits,
            "can_read": can_read,
            "image_width": IMAGE_WIDTH,
            "history": history,
            "review": review,
            "review_events": review_events,
            "editable": _editable(user, record),
            "done": detail.progress.stage is Stage.done,
            "can_request": can_request,
            "open_requests": open_requests,
            "types": [t.name for t in service.filing_types(rt, user)] if can_request else [],
            "can_link": record.business_type in STATUS_CHANGE_TYPES
            and record.status is not RecordStatus.disposed
            and is_allowed(user.role, Action.record_update_metadata, record.security_class),
        },
        user=user,
    )
