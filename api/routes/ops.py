"""``/api/v1/health`` and ``/api/v1/ready``: for the operator's probes; no content."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.schemas import ReadyOut
from api.services.readiness import readiness
from dangan import __version__

router = APIRouter(tags=["operations"])


@router.get("/health")
def health(rt: RuntimeDep) -> dict[str, Any]:
    """Liveness and the catalog's schema revision; no authentication, no content."""
    db = rt.require_initialised()
    return {"status": "ok", "version": __version__, "schema": db.current_revision()}


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def ready(rt: RuntimeDep) -> JSONResponse:
    """Whether the catalog and both vault stores answer; 503 when one does not."""
    checks = readiness(rt)
    body = ReadyOut(ready=all(checks.values()), checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
