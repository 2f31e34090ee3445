"""``/api/v1/reviews`` and ``/api/v1/records/{code}/review``: the intake review gates
(材料初审 → 信息录入 → 系统校验 → 复核, docs/review.md).

A record you may not see answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, RuntimeDep
from api.services import review as service
from catalog import RecordStatus, ReviewGate, ReviewInfo, ReviewRow, ReviewState, SecurityClass

router = APIRouter(tags=["review"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such record, or one you may not see (the same answer)"}
}


class FindingOut(BaseModel):
    rule: str
    name: str
    outcome: Literal["fail", "attention"]
    detail: str


class ReviewOut(BaseModel):
    """Where a record stands in its intake review; ``accepted`` is 归档."""

    archive_code: str
    gates: list[ReviewGate]
    gate: ReviewGate | None
    state: ReviewState | None  # None: entered before the gates, never held at them
    round: int
    reason: str | None
    findings: list[FindingOut]
    decided_by: str | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, code: str, r: ReviewInfo | None) -> ReviewOut:
        if r is None:
            return cls(
                archive_code=code,
                gates=[],
                gate=None,
                state=None,
                round=0,
                reason=None,
                findings=[],
                decided_by=None,
                updated_at=None,
            )
        return cls(
            archive_code=code,
            gates=list(r.gates),
            gate=r.gate,
            state=r.state,
            round=r.round,
            reason=r.reason,
            findings=[FindingOut.model_validate(f) for f in r.findings],
            decided_by=r.decided_by,
            updated_at=r.updated_at,
        )


class ReviewRowOut(ReviewOut):
    business_type: str
    year: int
    title: str
    security_class: SecurityClass
    status: RecordStatus
    needs_review: bool

    @classmethod
    def of_row(cls, row: ReviewRow) -> ReviewRowOut:
        base = ReviewOut.of(row.archive_code, row.review)
        return cls(
            **base.model_dump(),
            business_type=row.business_type,
            year=row.year,
            title=row.title,
            security_class=row.security_class,
            status=row.status,
            needs_review=row.needs_review,
        )


class ReviewsPage(BaseModel):
    total: int
    page: int
    page_size: int
    reviews: list[ReviewRowOut]


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["pass", "return"]
    reason: str | None = Field(default=None, max_length=500)
    gate: ReviewGate | None = Field(
        default=None, description="the gate you decide; refused when the record waits at another"
    )


@router.get("/reviews")
def list_reviews(
    rt: RuntimeDep,
    user: CurrentUser,
    state: ReviewState | None = None,
    gate: ReviewGate | None = None,
    mine: bool = False,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewsPage:
    """The intake reviews of the records you may see, the longest waiting first
    (``record.read_metadata``): e.g. ``state=open&gate=final_review`` is the 复核 queue,
    ``state=returned&mine=true`` a clerk's records sent back."""
    queue = service.review_queue(
        rt, user, state=state, gate=gate, mine=mine, page=page, page_size=page_size
    )
    return ReviewsPage(
        total=queue.total,
        page=page,
        page_size=page_size,
        reviews=[ReviewRowOut.of_row(r) for r in queue.rows],
    )


@router.get("/records/{code}/review", responses=_NOT_FOUND)
def get_review(rt: RuntimeDep, user: CurrentUser, code: str) -> ReviewOut:
    """Where the record stands in its intake review (``record.read_metadata``)."""
    return ReviewOut.of(code, service.review_of(rt, code, user))


@router.post("/records/{code}/review", responses=_NOT_FOUND)
def decide(rt: RuntimeDep, user: CurrentUser, code: str, body: ReviewDecision) -> ReviewOut:
    """Pass the gate the record waits at, or send it back to its clerk with a reason.

    材料初审 and 信息录入: the clerk who entered the record (``record.update_draft``); 复核:
    a supervisor or director (``record.review``); 系统校验 runs by itself. 409 when the
    record waits at no such gate; 422 for a return without a reason."""
    info = service.decide(rt, code, user, body.decision, reason=body.reason, gate=body.gate)
    return ReviewOut.of(code, info)


@router.post("/records/{code}/resubmit", responses=_NOT_FOUND)
def resubmit(rt: RuntimeDep, user: CurrentUser, code: str) -> ReviewOut:
    """Send a corrected record back into review, as the clerk who entered it
    (``record.update_draft``); the system check runs again. 409 unless it was sent back."""
    return ReviewOut.of(code, service.resubmit(rt, code, user))
