"""Key changes and status-change decisions: filing a change request on a record, the
requests' list, approving or rejecting one (directors), and a decision record's link to its
application. Thin: ``api.services.changes`` does the work.

A record you may not see answers 404 exactly like one that does not exist; a former code of a
record names the record, and answers carry its current code.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, RuntimeDep
from api.schemas import DecisionOut, RecordOut
from api.services import changes as svc
from catalog import ChangeRequestInfo, ChangeState, DecisionOutcome, SecurityClass

router = APIRouter(tags=["changes"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such record, or one you may not see (the same answer)"}
}


class ChangeRequestOut(BaseModel):
    id: int
    archive_code: str = Field(description="the record's code now")
    code_at_filing: str = Field(description="the record's code when the request was filed")
    state: ChangeState
    changes: dict[str, Any] = Field(description="each key field asked for → its new value")
    before: dict[str, Any] = Field(description="the record's key fields when it was filed")
    reason: str
    filed_by: str
    filed_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    result_code: str | None = Field(description="the record's code once approved")

    @classmethod
    def of(cls, r: ChangeRequestInfo) -> ChangeRequestOut:
        return cls(
            id=r.id,
            archive_code=r.archive_code,
            code_at_filing=r.code_at_filing,
            state=r.state,
            changes=dict(r.changes),
            before=dict(r.base),
            reason=r.reason,
            filed_by=r.filed_by,
            filed_at=r.filed_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            decision_reason=r.decision_reason,
            result_code=r.result_code,
        )


class ChangeRequestIn(BaseModel):
    """The key fields to change (leave a field out to keep it; ``null`` or ``""`` clears the
    student's number or name) and why. A new business type or year gives the record the next
    archive code of that year and type unless ``archive_code`` names one; an archive code
    brings its year and type with it."""

    model_config = ConfigDict(extra="forbid")

    student_no: str | None = Field(default=None, max_length=32)
    student_name: str | None = Field(default=None, max_length=64)
    business_type: str | None = Field(default=None, max_length=32, description="业务类型")
    year: int | None = Field(default=None, ge=1900, le=2200)
    archive_code: str | None = Field(default=None, max_length=64, description="年份-业务类型-编号")
    security_class: SecurityClass | None = None
    reason: str = Field(min_length=1, max_length=500)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"reason"}, mode="json")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class KeyChangeOut(BaseModel):
    request: ChangeRequestOut
    record: RecordOut
    before: dict[str, Any]
    after: dict[str, Any]
    former_code: str | None = Field(description="the record's code before, when it got a new one")


class DecisionLinkIn(BaseModel):
    """A status-change decision's approval chain: the application it decides (another
    record's code, or pages of this record), who approved (``approver_user``, a dangan user,
    or ``approver``, the school official as written), the date and the decision."""

    model_config = ConfigDict(extra="forbid")

    application_code: str | None = Field(default=None, max_length=64)
    application_pages: str | None = Field(default=None, max_length=32, description="e.g. 1-2")
    approver: str | None = Field(default=None, max_length=100)
    approver_user: str | None = Field(default=None, max_length=64)
    decision_date: dt.date
    decision: DecisionOutcome


@router.post(
    "/records/{code}/change-requests",
    status_code=status.HTTP_201_CREATED,
    responses=_NOT_FOUND,
)
def file_request(
    rt: RuntimeDep, user: CurrentUser, code: str, body: ChangeRequestIn
) -> ChangeRequestOut:
    """File a request to change the record's key fields (student number and name, business
    type, year, archive code, security class) with a reason, for a director to decide
    (``record.request_key_change``). Audited as ``change_request.file``."""
    return ChangeRequestOut.of(svc.file_request(rt, code, user, body.changes(), reason=body.reason))


@router.get("/change-requests", responses=_NOT_FOUND)
def list_requests(
    rt: RuntimeDep,
    user: CurrentUser,
    state: ChangeState = ChangeState.open,
    all_states: Annotated[bool, Query(alias="all", description="every state")] = False,
    code: Annotated[str | None, Query(description="only those about this record")] = None,
) -> list[ChangeRequestOut]:
    """Change requests, oldest first (``record.request_key_change``): a director sees every
    request about the records they may see; others the requests they filed, or with ``code``
    those about that record."""
    states = None if all_states else [state]
    return [ChangeRequestOut.of(r) for r in svc.requests(rt, user, states=states, code=code)]


@router.post("/change-requests/{request_id}/approve")
def approve(rt: RuntimeDep, user: CurrentUser, request_id: int, body: DecisionIn) -> KeyChangeOut:
    """Approve and apply a change request (``record.update_key_fields``): the record changes
    in one transaction, audited as ``record.key_change`` with before and after; a new type or
    year gives it a new archive code and the old one stays its alias. 409 when the request is
    not open, or is stale (the record's key fields changed after it was filed; it is closed)."""
    change = svc.approve(rt, request_id, user, reason=body.reason)
    return KeyChangeOut(
        request=ChangeRequestOut.of(change.request),
        record=RecordOut.of(change.record),
        before=dict(change.before),
        after=dict(change.after),
        former_code=change.former_code,
    )


@router.post("/change-requests/{request_id}/reject")
def reject(
    rt: RuntimeDep, user: CurrentUser, request_id: int, body: DecisionIn
) -> ChangeRequestOut:
    """Reject a change request with a reason (``record.update_key_fields``); the record is
    unchanged. Audited as ``change_request.reject``."""
    return ChangeRequestOut.of(svc.reject(rt, request_id, user, reason=body.reason))


@router.put("/records/{code}/decision", responses=_NOT_FOUND)
def set_decision(rt: RuntimeDep, user: CurrentUser, code: str, body: DecisionLinkIn) -> DecisionOut:
    """Link a status-change decision record (学籍变更, 转学, 休学, 复学, 退学) to its
    application, with its approver, date and decision (``record.update_metadata``; the
    application must be a record you may see). Audited as ``record.decision`` (before and
    after) and ``record.decision_application`` on the application's record."""
    return DecisionOut.of(
        svc.set_decision_link(
            rt,
            code,
            user,
            decision=body.decision,
            decision_date=body.decision_date,
            approver=body.approver,
            approver_user=body.approver_user,
            application_code=body.application_code,
            application_pages=body.application_pages,
        )
    )


@router.delete(
    "/records/{code}/decision",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_NOT_FOUND,
)
def clear_decision(rt: RuntimeDep, user: CurrentUser, code: str) -> Response:
    """Remove the decision record's link to its application (``record.update_metadata``);
    audited."""
    svc.clear_decision_link(rt, code, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
