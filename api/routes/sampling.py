"""``/api/v1/sampling``: the quarterly sampling audit — draw, the items and their checklists,
findings answered and closed with evidence, and the report (``docs/sampling.md``).

What a caller gets is the part of an audit they may see (``api.services.sampling``): a
contract item, its code, results and findings exist for directors alone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RuntimeDep
from api.services import sampling as service
from api.services.intake import private_directory
from api.services.sampling_report import report_csv, report_html, report_pdf
from api.services.upload_form import receive_form
from catalog import AuditInfo, FindingInfo, ItemInfo

router = APIRouter(prefix="/sampling", tags=["sampling"])

_FILES = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
}


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quarter: str = Field(description="the quarter to draw, e.g. 2026Q3", max_length=8)
    dry_run: bool = Field(default=False, description="list the sample without keeping a draw")
    deep: bool = Field(default=False, description="decrypt and render in the automatic checks")


class ChecklistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, bool] = Field(
        description="each question (legible, matches_paper, location_right): true or false"
    )
    note: str | None = Field(default=None, max_length=4000)


class FindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Literal["minor", "major", "critical"]
    summary: str = Field(min_length=1, max_length=2000)
    owner: str | None = Field(
        default=None, description="the user who must fix it; default: the record's clerk"
    )


def item_out(i: ItemInfo) -> dict[str, Any]:
    return {
        "id": i.id,
        "audit_id": i.audit_id,
        "archive_code": i.archive_code,
        "business_type": i.business_type,
        "clerk": i.clerk,
        "security_class": i.security_class.value,
        "automatic": i.auto_outcome,
        "checks": list(i.auto_items),
        "manual": dict(i.manual) if i.manual is not None else None,
        "manual_note": i.manual_note,
        "manual_by": i.manual_by,
        "manual_at": i.manual_at.isoformat() if i.manual_at else None,
        "defective": i.is_defective,
    }


def finding_out(f: FindingInfo, now: dt.datetime | None = None) -> dict[str, Any]:
    at = now or dt.datetime.now(dt.UTC)
    return {
        "id": f.id,
        "item_id": f.item_id,
        "audit_id": f.audit_id,
        "quarter": f.quarter,
        "archive_code": f.archive_code,
        "severity": f.severity.value,
        "summary": f.summary,
        "owner": f.owner,
        "state": f.state.value,
        "opened_by": f.opened_by,
        "opened_at": f.opened_at.isoformat(),
        "due_at": f.due_at.isoformat(),
        "overdue": f.is_overdue(at),
        "answered_at": f.answered_at.isoformat() if f.answered_at else None,
        "closed_by": f.closed_by,
        "closed_at": f.closed_at.isoformat() if f.closed_at else None,
        "evidence": [
            {
                "id": e.id,
                "kind": e.kind,
                "note": e.note,
                "file_name": e.file_name,
                "content_type": e.content_type,
                "size": e.size,
                "sha256": e.sha256,
                "added_by": e.added_by,
                "added_at": e.added_at.isoformat(),
            }
            for e in f.evidence
        ],
    }


def audit_out(a: AuditInfo, *, items_seen: int, sees_everything: bool) -> dict[str, Any]:
    """An audit's facts; its population and size only for a reader of every class (they
    count records hidden from others)."""
    return {
        "id": a.id,
        "quarter": a.quarter,
        "seed": a.seed,
        "head_id": a.head_id,
        "head_hash": a.head_hash,
        "drawn_at": a.drawn_at.isoformat(),
        "drawn_by": a.drawn_by,
        "items": items_seen,
        "population": a.population if sees_everything else None,
        "sample_size": a.sample_size if sees_everything else None,
    }


def view_out(view: service.AuditView) -> dict[str, Any]:
    e = view.estimate
    return {
        "audit": audit_out(
            view.audit, items_seen=len(view.items), sees_everything=view.sees_everything
        ),
        "estimate": {
            "sampled": e.sampled,
            "defective": e.defective,
            "rate": e.rate,
            "ci_low": e.low,
            "ci_high": e.high,
            "method": "wilson-95",
        },
        "manual_done": view.manual_done,
        "strata": [
            {"business_type": s.business_type, "clerk": s.clerk, "items": s.drawn}
            for s in view.strata
        ],
        "items": [item_out(i) for i in view.items],
        "findings": [finding_out(f) for f in view.findings],
        "overdue_grants": list(view.overdue_grants) if view.overdue_grants is not None else None,
    }


@router.post("/draws", status_code=status.HTTP_201_CREATED)
def draw(rt: RuntimeDep, user: CurrentUser, body: DrawIn) -> Response:
    """Draw a quarter's sample and run each item's automatic checks (``sampling.run``): 201
    with the audit as you may see it. With ``dry_run`` the answer is 200 and the archive codes
    the draw would take now (those you may see), and nothing is kept but the trace."""
    if body.dry_run:
        codes = service.preview(rt, user, body.quarter)
        return JSONResponse({"quarter": body.quarter.upper(), "codes": codes})
    audit = service.draw(rt, user, body.quarter, deep=body.deep)
    view = service.audit_view(rt, user, audit.id)
    return JSONResponse(view_out(view), status_code=status.HTTP_201_CREATED)


@router.get("/audits")
def list_audits(rt: RuntimeDep, user: CurrentUser) -> dict[str, Any]:
    """Every quarter drawn, newest first, with the number of items you see (``sampling.run``)."""
    every = service.sees_every_class(user)
    return {
        "audits": [
            audit_out(a, items_seen=n, sees_everything=every)
            for a, n in service.audits_for(rt, user)
        ]
    }


@router.get("/audits/{audit_id}")
def get_audit(rt: RuntimeDep, user: CurrentUser, audit_id: int) -> dict[str, Any]:
    """One audit: its items with their automatic and manual results, its findings, and the
    error rate estimated over the items you see (``sampling.run``)."""
    return view_out(service.audit_view(rt, user, audit_id))


@router.get(
    "/audits/{audit_id}/report",
    responses={200: {"content": {"text/csv": {}, "text/html": {}, "application/pdf": {}}}},
)
def report(
    rt: RuntimeDep,
    user: CurrentUser,
    audit_id: int,
    format: Annotated[Literal["csv", "html", "pdf"], Query()] = "html",
) -> Response:
    """The audit's report as a file: the estimated error rate with its 95% interval, the
    items, open findings and overdue break-glass grants (``sampling.run``); audited."""
    view = service.audit_view(rt, user, audit_id)
    service.note_report(rt, user, view, format)
    media, ext = _FILES[format]
    content: bytes
    if format == "csv":
        content = report_csv(view).encode("utf-8-sig")
    elif format == "html":
        content = report_html(view).encode()
    else:
        content = report_pdf(view)
    name = f"sampling-{view.audit.quarter}.{ext}"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/items/{item_id}/checklist")
def checklist(rt: RuntimeDep, user: CurrentUser, item_id: int, body: ChecklistIn) -> dict[str, Any]:
    """Fill in an item's manual checklist (``sampling.check`` on its record: a contract item
    by a director only)."""
    item = service.manual_check(rt, user, item_id, body.answers, note=body.note)
    return item_out(item)


@router.post("/items/{item_id}/findings", status_code=status.HTTP_201_CREATED)
def file_finding(
    rt: RuntimeDep, user: CurrentUser, item_id: int, body: FindingIn
) -> dict[str, Any]:
    """File a finding against an item, due in 7 days (``finding.manage`` on its record)."""
    finding = service.file(
        rt, user, item_id, severity=body.severity, summary=body.summary, owner=body.owner
    )
    return finding_out(finding)


@router.get("/findings")
def findings(
    rt: RuntimeDep,
    user: CurrentUser,
    open_only: Annotated[bool, Query(alias="open")] = False,
) -> dict[str, Any]:
    """The findings you deal with: every one on records you may see if you manage findings
    (``finding.manage``), else those you own (``finding.respond``)."""
    return {
        "findings": [finding_out(f) for f in service.findings_for(rt, user, open_only=open_only)]
    }


_EVIDENCE_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "note": {"type": "string", "description": "what was fixed"},
                        "files": {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "description": "one evidence file: a scan, photo or PDF",
                        },
                    },
                }
            }
        }
    }
}


async def _with_form(request: Request, rt: RuntimeDep, call: Any) -> FindingInfo:
    with private_directory() as tmp:
        form = await receive_form(
            request.headers.get("content-type", ""),
            request.stream(),
            Path(tmp),
            fields=("note",),
            max_bytes=rt.settings.intake.max_bytes,
        )
        evidence = service.evidence_of(form)
        result: FindingInfo = await run_in_threadpool(call, form.fields.get("note", ""), evidence)
        return result


@router.post("/findings/{finding_id}/answer", openapi_extra=_EVIDENCE_BODY)
async def answer(
    request: Request, rt: RuntimeDep, user: CurrentUser, finding_id: int
) -> dict[str, Any]:
    """The owner answers a finding with what was fixed: a note and/or an evidence file
    (``finding.respond`` on the record, and only the finding's owner)."""
    finding = await _with_form(
        request,
        rt,
        lambda note, ev: service.answer(rt, user, finding_id, note=note, evidence=ev),
    )
    return finding_out(finding)


@router.post("/findings/{finding_id}/close", openapi_extra=_EVIDENCE_BODY)
async def close(
    request: Request, rt: RuntimeDep, user: CurrentUser, finding_id: int
) -> dict[str, Any]:
    """Close a finding with evidence: a note or a file here, or the owner's answer's
    (``finding.manage`` on the record); 409 without any."""
    finding = await _with_form(
        request,
        rt,
        lambda note, ev: service.close(rt, user, finding_id, note=note, evidence=ev),
    )
    return finding_out(finding)
