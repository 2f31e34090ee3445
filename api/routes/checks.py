"""``/api/v1/checks``: the four-property check (四性检测) of records and of the archive."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, RuntimeDep
from api.schemas import CheckReportOut, CheckRequest
from api.services.fourprop import MAX_RECORDS_PER_REQUEST, Selection, run_check
from api.services.fourprop_report import report_bytes
from api.services.report_files import attachment

router = APIRouter(prefix="/checks", tags=["checks"])


@router.post(
    "",
    response_model=CheckReportOut,
    responses={
        200: {
            "content": {"text/csv": {}, "text/html": {}, "application/pdf": {}},
            "description": "the report: JSON, or a file with `format`",
        }
    },
)
def run(
    rt: RuntimeDep,
    user: CurrentUser,
    body: CheckRequest,
    format: Annotated[Literal["json", "csv", "html", "pdf"], Query()] = "json",
) -> Response | CheckReportOut:
    """Check the selected records you may see, and the archive (``check.run``); audited.

    At most 500 records a request; ``dangan check --batch`` takes any number. With ``format``
    the report comes as a CSV, HTML or PDF file to keep."""
    selection = Selection(tuple(body.codes), body.business_type, body.year_from, body.year_to)
    report = run_check(rt, selection, user=user, deep=body.deep, limit=MAX_RECORDS_PER_REQUEST)
    if format == "json":
        return CheckReportOut.model_validate(report.as_dict())
    media, headers = attachment(format, f"check-{report.started_at:%Y%m%dT%H%M%SZ}")
    return Response(report_bytes(report, format), media_type=media, headers=headers)
