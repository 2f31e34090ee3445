"""``/api/v1/stats``: the dashboard's figures, for scripts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, RuntimeDep
from api.schemas import IndicatorsOut, StatsOut
from api.services.indicators import indicators_csv, office_indicators, sampling_by_quarter
from api.services.stats import dashboard

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("")
def stats(rt: RuntimeDep, user: CurrentUser) -> StatsOut:
    """The dashboard's figures (``stats.read``), counted over the records you may see."""
    return StatsOut.of(dashboard(rt, user))


@router.get(
    "/indicators",
    response_model=IndicatorsOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format"}},
)
def indicators(
    rt: RuntimeDep,
    user: CurrentUser,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response | IndicatorsOut:
    """The office's indicators per quarter with trends, and counts by type, year, class and
    status change (``stats.read``), over the records you may see; ``format=csv`` for a file."""
    found = office_indicators(rt, user, sampling=sampling_by_quarter(rt, user))
    if format == "csv":
        return Response(
            indicators_csv(found).encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="indicators.csv"'},
        )
    return IndicatorsOut.model_validate(found.as_dict())
