"""The sampling audit pages (季度抽查): draw a quarter, read its items with their automatic
results, fill in the manual checklist, file findings, answer and close them with evidence,
and take the report away as HTML, PDF or CSV.

Every change is a form post (with the page's CSRF token) handled here by the same service as
``/api/v1/sampling`` and ``dangan audit sample``; the policy decides inside the service, and
the error page answers a refusal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import RuntimeDep
from api.pages.base import PageUser, check_form_csrf, redirect, render
from api.services import sampling as service
from api.services.intake import private_directory
from api.services.sampling_plan import quarter_of
from api.services.sampling_report import report_csv, report_html, report_pdf
from api.services.upload_form import receive_form
from api.session import CSRF_FIELD, check_csrf
from catalog import Action, FindingInfo, Role, is_allowed, list_users
from dangan.errors import InvalidInputError

router = APIRouter(include_in_schema=False)

_FILES = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
}


@router.get("/sampling", response_class=HTMLResponse)
def sampling_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """The quarters drawn, and the form to draw one."""
    audits = service.audits_for(rt, user)
    return render(
        request,
        "sampling.html",
        {
            "audits": audits,
            "quarter": str(quarter_of(dt.datetime.now(dt.UTC))),
            "preview": None,
        },
        user=user,
    )


@router.post("/sampling", response_class=HTMLResponse)
async def sampling_draw(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Draw the quarter (then its audit page), or preview it on this page."""
    form = await check_form_csrf(request)
    quarter = str(form.get("quarter") or "").strip()
    if form.get("op") == "preview":
        codes = await run_in_threadpool(service.preview, rt, user, quarter)
        audits = service.audits_for(rt, user)
        return render(
            request,
            "sampling.html",
            {"audits": audits, "quarter": quarter, "preview": codes},
            user=user,
        )
    audit = await run_in_threadpool(service.draw, rt, user, quarter)
    return redirect(f"/sampling/{audit.id}")


def _owners(rt: Any) -> list[str]:
    with rt.db.read() as session:
        return [
            u.name
            for u in list_users(session)
            if not u.disabled and is_allowed(u.role, Action.finding_respond)
        ]


@router.get("/sampling/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, rt: RuntimeDep, user: PageUser, audit_id: int) -> Response:
    """One audit: items, automatic results, the checklist, findings, report downloads."""
    view = service.audit_view(rt, user, audit_id)
    now = dt.datetime.now(dt.UTC)
    by_item: dict[int, list[FindingInfo]] = {}
    for f in view.findings:
        by_item.setdefault(f.item_id, []).append(f)
    return render(
        request,
        "sampling_audit.html",
        {
            "view": view,
            "e": view.estimate,
            "findings_by_item": by_item,
            "checklist": service.CHECKLIST,
            "owners": _owners(rt),
            "can_check": {
                i.id: is_allowed(user.role, Action.sampling_check, i.security_class)
                for i in view.items
            },
            "can_manage": {
                i.id: is_allowed(user.role, Action.finding_manage, i.security_class)
                for i in view.items
            },
            "now": now,
            "is_director": user.role is Role.director,
        },
        user=user,
    )


@router.get("/sampling/{audit_id}/report.{fmt}")
def report_file(rt: RuntimeDep, user: PageUser, audit_id: int, fmt: str) -> Response:
    """The report as a file (``sampling.run``), of the items you may see."""
    if fmt not in _FILES:
        raise InvalidInputError("a report is html, pdf or csv")
    view = service.audit_view(rt, user, audit_id)
    service.note_report(rt, user, view, fmt)
    media, ext = _FILES[fmt]
    content: bytes
    if fmt == "csv":
        content = report_csv(view).encode("utf-8-sig")
    elif fmt == "html":
        content = report_html(view).encode()
    else:
        content = report_pdf(view)
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="sampling-{view.audit.quarter}.{ext}"'
        },
    )


@router.post("/sampling/items/{item_id}/checklist")
async def checklist(request: Request, rt: RuntimeDep, user: PageUser, item_id: int) -> Response:
    form = await check_form_csrf(request)
    answers = {}
    for key in service.CHECKLIST:
        value = str(form.get(key) or "")
        if value not in ("yes", "no"):
            raise InvalidInputError("answer each question of the checklist yes or no")
        answers[key] = value == "yes"
    note = str(form.get("note") or "")
    item = await run_in_threadpool(service.manual_check, rt, user, item_id, answers, note=note)
    return redirect(f"/sampling/{item.audit_id}#item-{item.id}")


@router.post("/sampling/items/{item_id}/findings")
async def file_finding(request: Request, rt: RuntimeDep, user: PageUser, item_id: int) -> Response:
    form = await check_form_csrf(request)
    finding = await run_in_threadpool(
        lambda: service.file(
            rt,
            user,
            item_id,
            severity=str(form.get("severity") or ""),
            summary=str(form.get("summary") or ""),
            owner=str(form.get("owner") or "") or None,
        )
    )
    return redirect(f"/sampling/{finding.audit_id}#finding-{finding.id}")


async def _evidence_form(request: Request, rt: Any, call: Any) -> FindingInfo:
    with private_directory() as tmp:
        form = await receive_form(
            request.headers.get("content-type", ""),
            request.stream(),
            Path(tmp),
            fields=("note", CSRF_FIELD),
            max_bytes=rt.settings.intake.max_bytes,
        )
        check_csrf(request, form.fields.get(CSRF_FIELD))
        evidence = service.evidence_of(form)
        result: FindingInfo = await run_in_threadpool(call, form.fields.get("note", ""), evidence)
        return result


@router.post("/sampling/findings/{finding_id}/answer")
async def answer(request: Request, rt: RuntimeDep, user: PageUser, finding_id: int) -> Response:
    finding = await _evidence_form(
        request,
        rt,
        lambda note, ev: service.answer(rt, user, finding_id, note=note, evidence=ev),
    )
    back = (
        f"/sampling/{finding.audit_id}"
        if is_allowed(user.role, Action.sampling_run)
        else ("/sampling/findings/mine")
    )
    return redirect(f"{back}#finding-{finding.id}")


@router.post("/sampling/findings/{finding_id}/close")
async def close(request: Request, rt: RuntimeDep, user: PageUser, finding_id: int) -> Response:
    finding = await _evidence_form(
        request,
        rt,
        lambda note, ev: service.close(rt, user, finding_id, note=note, evidence=ev),
    )
    return redirect(f"/sampling/{finding.audit_id}#finding-{finding.id}")


@router.get("/sampling/findings/mine", response_class=HTMLResponse)
def my_findings(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """The findings a clerk or supervisor owns, with the form to answer each."""
    findings = service.findings_for(rt, user, open_only=False)
    return render(
        request,
        "sampling_findings.html",
        {"findings": findings, "now": dt.datetime.now(dt.UTC)},
        user=user,
    )
