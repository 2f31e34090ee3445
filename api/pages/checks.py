"""The four-property check page (四性检测): choose records, run the check, read the report
on the page or take it away as CSV, HTML or PDF; and the reports of the scheduled runs.

Running a check is a form post (with the page's CSRF token) handled here, calling the same
service as ``POST /api/v1/checks`` and ``dangan check``; who may run it is the policy's
business (``check.run``): the service raises, the error page answers 403.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, check_form_csrf, render
from api.services.access import require_action
from api.services.fourprop import (
    MAX_RECORDS_PER_REQUEST,
    Property,
    Selection,
    reports_dir,
    run_check,
    sees_every_class,
)
from api.services.fourprop_report import report_bytes
from api.services.report_files import attachment
from catalog import Action, UserInfo, list_business_types
from dangan.errors import InvalidInputError, NotFoundError

router = APIRouter(include_in_schema=False)

_CODES = re.compile(r"[\s,，;；]+")
_SAVED = re.compile(r"^check-\d{8}T\d{6}\d*Z\.(json|csv|html)$")


def _year(value: Any) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1900 <= int(text) <= 2200:
        raise InvalidInputError("a year is four digits")
    return int(text)


def _saved_reports(rt: Any) -> list[dict[str, Any]]:
    """The newest scheduled reports: name and summary, newest first."""
    directory = reports_dir(rt)
    out = []
    for path in (
        sorted(directory.glob("check-*.json"), reverse=True)[:5] if directory.is_dir() else []
    ):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append(
            {
                "stem": path.name.removesuffix(".json"),
                "started_at": data.get("started_at", "")[:19].replace("T", " "),
                "outcome": data.get("outcome", ""),
                "records": data.get("records_checked", 0),
                "counts": data.get("record_outcomes", {}),
            }
        )
    return out


def _context(rt: Any, user: UserInfo, form: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": _type_names(rt),
        "form": form,
        "saved": _saved_reports(rt) if sees_every_class(user) else [],
        "properties": list(Property),
        "limit": MAX_RECORDS_PER_REQUEST,
    }


def _type_names(rt: Any) -> list[str]:
    with rt.db.read() as session:
        return [t.name for t in list_business_types(session)]


@router.get("/checks", response_class=HTMLResponse)
def checks_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """The form, and the reports of the scheduled runs."""
    require_action(rt, user, Action.check_run)
    return render(request, "checks.html", {**_context(rt, user, {}), "report": None}, user=user)


@router.post("/checks", response_class=HTMLResponse)
async def run_checks(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Run the check on the chosen records; the report on the page, or as a file."""
    form = dict(await check_form_csrf(request))
    codes = tuple(c for c in _CODES.split(str(form.get("codes") or "")) if c)
    business_type = str(form.get("business_type") or "") or None
    selection = Selection(
        codes, business_type, _year(form.get("year_from")), _year(form.get("year_to"))
    )
    deep = not form.get("quick")
    fmt = str(form.get("format") or "page")
    report = run_check(rt, selection, user=user, deep=deep, limit=MAX_RECORDS_PER_REQUEST)
    if fmt in ("csv", "html", "pdf"):
        media, headers = attachment(fmt, f"check-{report.started_at:%Y%m%dT%H%M%SZ}")
        return Response(report_bytes(report, fmt), media_type=media, headers=headers)
    shown = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    return render(
        request, "checks.html", {**_context(rt, user, shown), "report": report}, user=user
    )


@router.get("/checks/reports/{name}")
def saved_report(name: str, rt: RuntimeDep, user: PageUser) -> Response:
    """One file of a scheduled run's report (``check.run``). A scheduled run covers every
    record, contracts too, so only a reader of every class gets its reports; to anyone else
    they do not exist."""
    require_action(rt, user, Action.check_run)
    if not _SAVED.match(name) or not sees_every_class(user):
        raise NotFoundError("no such report")
    path = reports_dir(rt) / name
    if not path.is_file():
        raise NotFoundError("no such report")
    stem, ext = name.rsplit(".", 1)
    media, headers = attachment(ext, stem)
    return Response(path.read_bytes(), media_type=media, headers=headers)
