"""``/api/v1/incidents``: the incident log of suspected data leaks and losses
(``docs/incidents.md``). Thin: ``api.services.incidents`` does the work."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, RuntimeDep
from api.services import incidents as svc
from catalog import IncidentInfo, IncidentKind, IncidentState

router = APIRouter(prefix="/incidents", tags=["incidents"])


class IncidentActionOut(BaseModel):
    id: int
    actor: str
    at: dt.datetime
    text: str


class IncidentOut(BaseModel):
    id: int
    kind: str
    summary: str
    occurred_at: dt.datetime | None
    reported_by: str
    reported_at: dt.datetime
    state: str
    closed_by: str | None
    closed_at: dt.datetime | None
    closure: str | None
    records: list[str]  # the ones you may see
    actions: list[IncidentActionOut]

    @classmethod
    def of(cls, i: IncidentInfo) -> IncidentOut:
        return cls(
            id=i.id,
            kind=i.kind.value,
            summary=i.summary,
            occurred_at=i.occurred_at,
            reported_by=i.reported_by,
            reported_at=i.reported_at,
            state=i.state.value,
            closed_by=i.closed_by,
            closed_at=i.closed_at,
            closure=i.closure,
            records=list(i.records),
            actions=[
                IncidentActionOut(id=a.id, actor=a.actor, at=a.at, text=a.text) for a in i.actions
            ],
        )


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IncidentKind
    summary: str = Field(min_length=1, max_length=4000, description="what happened")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened or was noticed, with its time zone"
    )
    records: list[str] = Field(default_factory=list, max_length=200, description="archive codes")


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


@router.get("")
def list_incidents(
    rt: RuntimeDep,
    user: CurrentUser,
    state: Annotated[IncidentState | None, Query()] = None,
    kind: Annotated[IncidentKind | None, Query()] = None,
) -> list[IncidentOut]:
    """The log, newest first, without the actions (``incident.report``): every incident for
    those who manage them (``incident.manage``), your own reports for everyone else."""
    return [IncidentOut.of(i) for i in svc.incidents(rt, user, state=state, kind=kind)]


@router.post("", status_code=status.HTTP_201_CREATED)
def report(rt: RuntimeDep, user: CurrentUser, body: ReportIn) -> IncidentOut:
    """Report a suspected leak or loss (``incident.report``); the records named must be ones
    you may see."""
    return IncidentOut.of(
        svc.report(
            rt,
            user,
            kind=body.kind.value,
            summary=body.summary,
            occurred_at=body.occurred_at,
            records=body.records,
        )
    )


@router.get("/{incident_id}")
def one(rt: RuntimeDep, user: CurrentUser, incident_id: int) -> IncidentOut:
    """One incident with its actions (yours, unless you manage incidents)."""
    return IncidentOut.of(svc.one(rt, user, incident_id))


@router.post("/{incident_id}/actions")
def act(rt: RuntimeDep, user: CurrentUser, incident_id: int, body: TextIn) -> IncidentOut:
    """Record an action taken on an open incident (``incident.manage``)."""
    return IncidentOut.of(svc.act(rt, user, incident_id, body.text))


@router.post("/{incident_id}/close")
def close(rt: RuntimeDep, user: CurrentUser, incident_id: int, body: TextIn) -> IncidentOut:
    """Close an open incident; ``text`` is the closing summary (``incident.manage``)."""
    return IncidentOut.of(svc.close(rt, user, incident_id, body.text))
