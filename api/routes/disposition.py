"""``/api/v1/disposition``: open proposals, approving or rejecting them (directors), and the
destruction certificates approvals issue. Thin: ``api.services.retention`` does the work."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, RuntimeDep
from api.services import retention as svc
from catalog import ProposalInfo, ProposalState

router = APIRouter(prefix="/disposition", tags=["disposition"])


class ProposalOut(BaseModel):
    id: int
    archive_code: str
    business_type: str
    year: int
    state: str
    retention: str
    trigger: str
    trigger_year: int
    due_year: int
    proposed_by: str
    proposed_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    certificate_id: str | None

    @classmethod
    def of(cls, p: ProposalInfo) -> ProposalOut:
        return cls(
            id=p.id,
            archive_code=p.archive_code,
            business_type=p.business_type,
            year=p.year,
            state=p.state.value,
            retention=p.retention.value,
            trigger=p.trigger.value,
            trigger_year=p.trigger_year,
            due_year=p.due_year,
            proposed_by=p.proposed_by,
            proposed_at=p.proposed_at,
            decided_by=p.decided_by,
            decided_at=p.decided_at,
            certificate_id=p.certificate_id,
        )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=1000)
    reason: str | None = Field(default=None, max_length=500)


class ApprovalOut(BaseModel):
    disposed: list[str]
    withheld: list[str]
    certificate_id: str | None


class RejectionOut(BaseModel):
    kept: list[str]


@router.get("")
def list_proposals(
    rt: RuntimeDep,
    user: CurrentUser,
    state: Annotated[ProposalState, Query()] = ProposalState.open,
) -> list[ProposalOut]:
    """Disposition proposals in a state (default open), about records you may see
    (``disposition.approve``)."""
    return [ProposalOut.of(p) for p in svc.proposals(rt, user, states=[state])]


@router.post("/approve")
def approve(rt: RuntimeDep, user: CurrentUser, body: DecisionIn) -> ApprovalOut:
    """Approve proposals and destroy their records for good (crypto-shredding, both copies,
    the index); one signed certificate for the batch. Any proposal not open, hidden or under
    a legal hold refuses the whole batch (409 / 404) before anything is destroyed."""
    outcome = svc.approve(rt, body.ids, user=user, reason=body.reason)
    return ApprovalOut(
        disposed=outcome.disposed,
        withheld=outcome.withheld,
        certificate_id=outcome.certificate.id if outcome.certificate else None,
    )


@router.post("/reject")
def reject(rt: RuntimeDep, user: CurrentUser, body: DecisionIn) -> RejectionOut:
    """Keep the records: reject proposals (not proposed again for a year)."""
    return RejectionOut(
        kept=[p.archive_code for p in svc.reject(rt, body.ids, user=user, reason=body.reason)]
    )


@router.get(
    "/certificates/{certificate_id}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def certificate_file(rt: RuntimeDep, user: CurrentUser, certificate_id: str) -> Response:
    """A destruction certificate's signed JSON, byte for byte as issued (what
    ``dangan certificate verify`` checks)."""
    cert = svc.certificate(rt, certificate_id, user)
    return Response(
        cert.document.encode("utf-8"),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{cert.id}.json"'},
    )


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def certificate_pdf(rt: RuntimeDep, user: CurrentUser, certificate_id: str) -> Response:
    """The certificate as a signed PDF carrying its JSON."""
    cert = svc.certificate(rt, certificate_id, user)
    return Response(
        svc.certificate_pdf_bytes(rt, cert),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{cert.id}.pdf"'},
    )
