"""``/api/v1/breakglass``: emergency access: asking, granting, revoking, the paperwork and its
approval (``docs/breakglass.md``). Thin: ``api.services.breakglass`` does the work."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, RuntimeDep
from api.services import breakglass as svc
from catalog import DEFAULT_HOURS, MAX_HOURS, GrantInfo, GrantState, UserInfo
from dangan.errors import InvalidInputError

router = APIRouter(prefix="/breakglass", tags=["breakglass"])


class GrantOut(BaseModel):
    id: int
    grantee: str
    grantee_role: str
    reason: str
    state: str
    status: str  # the state with the clock applied: active, expired, ...
    requested_at: dt.datetime | None
    granted_by: str | None
    granted_at: dt.datetime | None
    ends_at: dt.datetime | None
    ended_by: str | None
    ended_at: dt.datetime | None
    end_reason: str | None
    paperwork_due: dt.datetime | None
    paperwork: bool
    paperwork_type: str | None
    paperwork_size: int | None
    paperwork_by: str | None
    paperwork_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    overdue: bool

    @classmethod
    def of(cls, g: GrantInfo, now: dt.datetime | None = None) -> GrantOut:
        at = now or dt.datetime.now(dt.UTC)
        return cls(
            id=g.id,
            grantee=g.grantee,
            grantee_role=g.grantee_role.value,
            reason=g.reason,
            state=g.state.value,
            status=g.status(at).value,
            requested_at=g.requested_at,
            granted_by=g.granted_by,
            granted_at=g.granted_at,
            ends_at=g.ends_at,
            ended_by=g.ended_by,
            ended_at=g.ended_at,
            end_reason=g.end_reason,
            paperwork_due=g.paperwork_due,
            paperwork=g.paperwork_object_id is not None,
            paperwork_type=g.paperwork_content_type,
            paperwork_size=g.paperwork_size,
            paperwork_by=g.paperwork_by,
            paperwork_at=g.paperwork_at,
            approved_by=g.approved_by,
            approved_at=g.approved_at,
            overdue=g.is_overdue(at),
        )


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=64, description="the grantee's user name")
    reason: str = Field(min_length=1, max_length=500)
    hours: int = Field(default=DEFAULT_HOURS, ge=1, le=MAX_HOURS)


class GrantRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: int = Field(default=DEFAULT_HOURS, ge=1, le=MAX_HOURS)
    reason: str | None = Field(default=None, max_length=500, description="replaces the asker's")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


@router.get("")
def list_grants(
    rt: RuntimeDep,
    user: CurrentUser,
    state: Annotated[GrantState | None, Query()] = None,
    overdue: Annotated[bool, Query(description="only grants past their paperwork's day")] = False,
) -> list[GrantOut]:
    """Grants and requests, newest first (``breakglass.request``): every one for those who
    grant, approve or read the audit trail, your own for everyone else."""
    now = dt.datetime.now(dt.UTC)
    found = svc.grants(rt, user, states=(state,) if state else ())
    if overdue:
        found = [g for g in found if g.is_overdue(now)]
    return [GrantOut.of(g, now) for g in found]


@router.post("/requests", status_code=status.HTTP_201_CREATED)
def ask(rt: RuntimeDep, user: CurrentUser, body: RequestIn) -> GrantOut:
    """Ask for emergency access for yourself, with a reason (``breakglass.request``)."""
    return GrantOut.of(svc.ask(rt, user, body.reason))


@router.post("", status_code=status.HTTP_201_CREATED)
def grant(rt: RuntimeDep, user: CurrentUser, body: GrantIn) -> GrantOut:
    """Grant a named user emergency access for ``hours`` from now (``breakglass.grant``)."""
    return GrantOut.of(svc.grant(rt, user, grantee=body.user, hours=body.hours, reason=body.reason))


@router.get("/{grant_id}")
def one(rt: RuntimeDep, user: CurrentUser, grant_id: int) -> GrantOut:
    """One grant or request (yours, unless you see every grant)."""
    return GrantOut.of(svc.one(rt, user, grant_id))


@router.post("/{grant_id}/grant")
def grant_request(
    rt: RuntimeDep, user: CurrentUser, grant_id: int, body: GrantRequestIn
) -> GrantOut:
    """Grant an open request for ``hours`` from now (``breakglass.grant``)."""
    return GrantOut.of(
        svc.grant(rt, user, request_id=grant_id, hours=body.hours, reason=body.reason)
    )


@router.post("/{grant_id}/revoke")
def revoke(rt: RuntimeDep, user: CurrentUser, grant_id: int, body: ReasonIn) -> GrantOut:
    """Refuse an open request, or end a grant in force now (``breakglass.grant``); its
    paperwork is still owed."""
    return GrantOut.of(svc.revoke(rt, user, grant_id, body.reason))


async def _body(request: Request) -> list[bytes]:
    # In memory, never on disk, and bounded: the service encrypts it into the vault.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > svc.MAX_PAPERWORK_BYTES:
            raise InvalidInputError(
                f"paperwork is at most {svc.MAX_PAPERWORK_BYTES // (1024 * 1024)} MiB"
            )
        if chunk:
            chunks.append(chunk)
    if not chunks:
        raise InvalidInputError("the request body is the paperwork document; it is empty")
    return chunks


def _paperwork_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("application/pdf", "image/png", "image/jpeg", "image/tiff")
            },
        }
    }


@router.post("/{grant_id}/paperwork", openapi_extra=_paperwork_body())
async def upload_paperwork(
    request: Request, rt: RuntimeDep, user: CurrentUser, grant_id: int
) -> GrantOut:
    """File the grant's paperwork: the request body is the document (PDF, PNG, JPEG or TIFF,
    at most 20 MiB), stored encrypted in both stores. The grantee, or one who may grant; a
    later upload replaces an earlier one until it is approved."""
    who: UserInfo = user
    await run_in_threadpool(svc.check_paperwork_upload, rt, who, grant_id)
    chunks = await _body(request)
    found = await run_in_threadpool(svc.upload_paperwork, rt, who, grant_id, chunks)
    return GrantOut.of(found)


@router.get(
    "/{grant_id}/paperwork",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the bytes"}},
)
def paperwork(rt: RuntimeDep, user: CurrentUser, grant_id: int) -> Response:
    """Download the grant's paperwork (audited)."""
    doc = svc.paperwork(rt, user, grant_id)
    return StreamingResponse(
        doc.chunks,
        media_type=doc.content_type,
        headers={
            "Content-Length": str(doc.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/{grant_id}/approve")
def approve(rt: RuntimeDep, user: CurrentUser, grant_id: int) -> GrantOut:
    """Approve the grant's paperwork, closing the grant (``breakglass.approve``)."""
    return GrantOut.of(svc.approve(rt, user, grant_id))
