"""``/api/v1/stats``: the dashboard's figures, for scripts."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, RuntimeDep
from api.schemas import StatsOut
from api.services.stats import dashboard

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("")
def stats(rt: RuntimeDep, user: CurrentUser) -> StatsOut:
    """The dashboard's figures (``stats.read``), counted over the records you may see."""
    return StatsOut.of(dashboard(rt, user))
