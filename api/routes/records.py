"""``/api/v1/records``: upload, list, detail, downloads, page text and images, history.

A record you may not see answers 404 exactly like one that does not exist, on every route here.
A former code of a record (a key change gave it a new one) names the record on every route
here: the answer is the record's, under its current code (no redirect).
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RuntimeDep
from api.errors import error_body
from api.schemas import (
    AuditPage,
    ErrorBody,
    EventOut,
    PageTextOut,
    RecordDetailOut,
    RecordOut,
    RecordsPage,
    UploadOut,
    UploadRefusal,
)
from api.services import records as service
from api.services.intake import private_directory
from api.services.reading import open_original
from api.services.upload_form import ReceivedForm, receive_form
from catalog import MAX_TAG, MAX_TAGS, NewRecord, ObjectRole, RecordStatus, SecurityClass, Stage

router = APIRouter(prefix="/records", tags=["records"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such record, or one you may not see (the same answer)"}
}


class UploadForm(BaseModel):
    """The fields of an upload besides its ``files``; every file gets the same."""

    business_type: str = Field(description="业务类型, e.g. 新生入学")
    year: int = Field(ge=1900, le=2200)
    title: str = Field(default="", max_length=500)
    student_no: str | None = Field(default=None, max_length=32)
    student_name: str | None = Field(default=None, max_length=64)
    student_class: str | None = Field(
        default=None, max_length=64, description="the student's class (班级), e.g. 高三(2)班"
    )
    security_class: SecurityClass | None = None
    paper_location: str | None = Field(default=None, max_length=200)
    archive_code: str | None = Field(default=None, description="a legacy code (one file)")
    force: bool = Field(default=False, description="store content already archived")

    def new_record(self) -> NewRecord:
        return NewRecord(
            business_type=self.business_type,
            year=self.year,
            title=self.title,
            student_no=self.student_no or None,
            student_name=self.student_name or None,
            student_class=self.student_class or None,
            security_class=self.security_class,
            paper_location=self.paper_location or None,
            archive_code=self.archive_code or None,
        )


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its local ``$ref``s replaced by what they name."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _upload_body() -> dict[str, Any]:
    schema = UploadForm.model_json_schema()
    defs = schema.pop("$defs", {})
    schema = _inline(schema, defs)
    files = {
        "type": "array",
        "items": {"type": "string", "contentMediaType": "application/octet-stream"},
        "title": "Files",
        "description": "one or more scans",
    }
    schema["properties"] = {"files": files, **schema["properties"]}
    schema["required"] = ["files", *schema.get("required", [])]
    schema["title"] = "Upload"
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


def _upload_form(form: ReceivedForm) -> UploadForm:
    """The form's fields, checked as FastAPI checks form fields (an empty value is a missing
    one); every problem at once, in the one error shape."""
    errors: list[dict[str, Any]] = []
    if not form.files:
        errors.append({"type": "missing", "loc": ("body", "files"), "msg": "Field required"})
    fields = {name: value for name, value in form.fields.items() if value != ""}
    try:
        checked = UploadForm.model_validate(fields)
    except ValidationError as exc:
        errors += [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    if errors:
        raise RequestValidationError(errors)
    return checked


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_upload_body())
async def upload(request: Request, rt: RuntimeDep, user: CurrentUser) -> UploadOut:
    """Upload scans, each becoming its own record with these fields (``record.create``).

    Each file is sniffed, checked and stored in both stores; its OCR runs in the background
    (follow it on the record or in ``/jobs``). A file that is refused leaves nothing behind
    and is listed in ``refused``; when no file was stored the answer is the first refusal
    (4xx) itself. The body is streamed: each file goes straight into intake's private
    temporary directory, which is removed when the upload is over."""
    with private_directory() as tmp:
        form = await receive_form(
            request.headers.get("content-type", ""),
            request.stream(),
            FilePath(tmp),
            fields=UploadForm.model_fields.keys(),
            max_bytes=rt.settings.intake.max_bytes,
        )
        fields = _upload_form(form)
        parts = [service.UploadFile(f.upload, f.name) for f in form.files]
        outcome = await run_in_threadpool(
            service.ingest_many, rt, parts, fields.new_record(), user, force=fields.force
        )
    return UploadOut(
        records=[RecordOut.of(r, stage=Stage.queued, needs_review=False) for r in outcome.records],
        refused=[
            UploadRefusal(index=i, error=ErrorBody(**error_body(e)["error"]))
            for i, e in outcome.refused
        ],
    )


@router.get("")
def list_records(
    rt: RuntimeDep,
    user: CurrentUser,
    business_type: Annotated[str | None, Query(alias="type", description="业务类型")] = None,
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    status: RecordStatus | None = None,
    stage: Stage | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RecordsPage:
    """The records you may see, newest first (``record.read_metadata``)."""
    listing = service.list_records(
        rt,
        user,
        business_type=business_type,
        year=year,
        status=status,
        stage=stage,
        page=page,
        page_size=page_size,
    )
    return RecordsPage(
        total=listing.total,
        page=page,
        page_size=page_size,
        records=[RecordOut.of_row(r) for r in listing.rows],
    )


@router.get("/{code}", responses=_NOT_FOUND)
def detail(rt: RuntimeDep, user: CurrentUser, code: str) -> RecordDetailOut:
    """Metadata, intake stage, pages, and each content object's copies with their fixity."""
    return RecordDetailOut.of(service.record_detail(rt, code, user))


class RecordPatch(BaseModel):
    """The fields to change; leave a field out to keep it, send ``null`` or ``""`` to clear it."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=500)
    student_class: str | None = Field(
        default=None, max_length=64, description="the student's class (班级)"
    )
    paper_location: str | None = Field(default=None, max_length=200)
    tags: list[Annotated[str, Field(max_length=MAX_TAG)]] | None = Field(
        default=None, max_length=MAX_TAGS, description="non-key labels; [] or null clears them"
    )
    notes: str | None = Field(default=None, max_length=2000, description="non-key remarks (备注)")
    student_no: str | None = Field(default=None, max_length=32)
    student_name: str | None = Field(default=None, max_length=64)


@router.patch("/{code}", responses=_NOT_FOUND)
def update(rt: RuntimeDep, user: CurrentUser, code: str, body: RecordPatch) -> RecordOut:
    """Edit non-key fields: ``title``, ``student_class``, ``paper_location``, ``tags`` and
    ``notes`` (``record.update_metadata``, or ``record.update_draft`` on your own unfinished
    record); the student's number and name only on your own unfinished record
    (``record.update_draft``); other key fields change by a change request
    (``POST /api/v1/records/{code}/change-requests``). Audited with before and after values;
    an indexed record is indexed again. ``code`` may be a former code of the record: the
    answer carries its current one."""
    changes = body.model_dump(exclude_unset=True)
    return RecordOut.of(service.update_record(rt, code, user, changes))


def _download(rt: RuntimeDep, user: CurrentUser, code: str, role: ObjectRole) -> Response:
    original = open_original(rt, code, actor=user.name, user=user, role=role)
    media = "application/pdf" if role is ObjectRole.access_copy else original.record.content_type
    return StreamingResponse(
        original.chunks,
        media_type=media or "application/octet-stream",
        headers={
            "Content-Length": str(original.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
    **_NOT_FOUND,
}


@router.get("/{code}/original", response_class=StreamingResponse, responses=_STREAM)
def original(rt: RuntimeDep, user: CurrentUser, code: str) -> Response:
    """Download the original scan (``record.read_content``; audited)."""
    return _download(rt, user, code, ObjectRole.original)


@router.get("/{code}/access-copy", response_class=StreamingResponse, responses=_STREAM)
def access_copy(rt: RuntimeDep, user: CurrentUser, code: str) -> Response:
    """Download the access copy, a searchable PDF (``record.read_content``; audited)."""
    return _download(rt, user, code, ObjectRole.access_copy)


@router.get("/{code}/pages/{n}/text", responses=_NOT_FOUND)
def page_text(
    rt: RuntimeDep, user: CurrentUser, code: str, n: Annotated[int, Path(ge=1)]
) -> PageTextOut:
    """The OCR text of page ``n`` (1-based) (``record.read_content``; audited)."""
    return PageTextOut(archive_code=code, page=n, text=service.page_text(rt, code, n, user))


@router.get(
    "/{code}/pages/{n}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the page"}, **_NOT_FOUND},
)
def page_image(
    rt: RuntimeDep,
    user: CurrentUser,
    code: str,
    n: Annotated[int, Path(ge=1)],
    width: Annotated[int | None, Query(ge=16, le=service.MAX_IMAGE_WIDTH)] = None,
) -> Response:
    """Page ``n`` as a PNG, turned and deskewed as it was read, at ``width`` pixels (never
    larger than the scan); rendered in memory, never cached (``record.read_content``)."""
    png = service.page_png(rt, code, n, user, width=width)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{code}/history", responses=_NOT_FOUND)
def history(
    rt: RuntimeDep,
    user: CurrentUser,
    code: str,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """The record's own audit events in chain order (``record.read_history``)."""
    events = service.record_history(rt, code, user, after_id=after_id, limit=limit)
    return AuditPage(
        events=[EventOut.of(e) for e in events],
        next_after_id=events[-1].id if len(events) == limit else None,
    )
