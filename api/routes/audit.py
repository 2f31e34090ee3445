"""``/api/v1/audit``: the audit trail (auditors, directors) and its verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, RuntimeDep
from api.schemas import AuditPage, AuditVerifyOut, EventOut
from api.services.trail import read_trail, verify_trail

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
def list_events(
    rt: RuntimeDep,
    user: CurrentUser,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> AuditPage:
    """Events in chain order from ``after_id`` (``audit.read``), filtered by exact action,
    actor or target; events about records hidden from you are left out."""
    events = read_trail(
        rt, user, after_id=after_id, limit=limit, action=action, actor=actor, target=target
    )
    return AuditPage(
        events=[EventOut.of(e) for e in events],
        next_after_id=events[-1].id if len(events) == limit else None,
    )


@router.post("/verify")
def verify(rt: RuntimeDep, user: CurrentUser) -> AuditVerifyOut:
    """Walk the whole hash chain and report every break (``audit.verify``)."""
    return AuditVerifyOut.of(verify_trail(rt, user))
