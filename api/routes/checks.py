"""``/api/v1/checks``: the four-property check (四性检测) of records and of the archive."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, RuntimeDep
from api.schemas import CheckReportOut, CheckRequest
from api.services.fourprop import MAX_RECORDS_PER_REQUEST, Selection, run_check
from api.services.fourprop_report import report_csv, report_html, report_pdf

router = APIRouter(prefix="/checks", tags=["checks"])

_FILES = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
}


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
    media, ext = _FILES[format]
    content: bytes
    if format == "csv":
        content = report_csv(report).encode("utf-8-sig")
    elif format == "html":
        content = report_html(report).encode()
    else:
        content = report_pdf(report)
    stamp = report.started_at.strftime("%Y%m%dT%H%M%SZ")
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="check-{stamp}.{ext}"'},
    )
