"""A record as one person sees it over the API: listing, detail, page text, page images and the
record's own history, each through the policy.

A record the person may not see answers exactly as one that does not exist
(:func:`catalog.record_not_found`), and every denied attempt leaves its trace
(:func:`catalog.audit_denied`). Reads of content (a page's text, a page's image) are audited
before anything is shown. Page images are rendered in memory from the decrypted scan and
never written to disk. Nothing here logs text, titles or names.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO, Final

from api.services.access import require_action
from api.services.intake import RefusedUpload, Upload, ingest
from api.services.jobs import rewrite_sidecar
from api.services.pipeline import INDEX_RECORD, read_ocr_text
from api.services.reading import open_original
from api.services.runtime import Runtime
from catalog import (
    KEY_FIELDS,
    Action,
    AuditEventInfo,
    BusinessTypeInfo,
    DecisionInfo,
    NewRecord,
    ObjectInfo,
    ObjectRole,
    PageInfo,
    Progress,
    RecordInfo,
    RecordListing,
    RecordStatus,
    Stage,
    UserInfo,
    audit_denied,
    decisions_citing,
    former_codes,
    get_decision,
    get_record,
    get_review,
    history_targets,
    is_allowed,
    list_business_types,
    list_pages,
    list_visible_events,
    list_visible_records,
    objects_of_record,
    quality_issue_counts,
    record_event,
    record_not_found,
    record_progress,
    record_target,
    require,
    update_record_fields,
    visible_classes,
)
from dangan.errors import (
    ConflictError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from ocr import page_image

__all__ = [
    "MAX_IMAGE_WIDTH",
    "QueueItem",
    "RecordDetail",
    "UploadFile",
    "UploadOutcome",
    "filing_types",
    "ingest_many",
    "intake_queue",
    "list_records",
    "page_png",
    "page_text",
    "record_detail",
    "record_history",
    "record_texts",
    "reindex",
    "update_record",
]

MAX_IMAGE_WIDTH: Final = 4000
_CONTENT_OBJECTS: Final = (ObjectRole.original, ObjectRole.ocr_text, ObjectRole.access_copy)


@dataclass(frozen=True)
class RecordDetail:
    record: RecordInfo
    progress: Progress
    pages: tuple[PageInfo, ...]
    objects: tuple[ObjectInfo, ...]  # the live content objects, each with its copies' fixity
    former_codes: tuple[str, ...] = ()  # codes key changes took from it; they still find it
    decision: DecisionInfo | None = None  # a status-change decision's link to its application
    cited_by: tuple[DecisionInfo, ...] = ()  # the decisions (one may see) deciding this record


def _visible_record(rt: Runtime, code: str, user: UserInfo, action: Action) -> RecordInfo:
    """The record ``code`` if ``user`` may do ``action`` on it; denied attempts are audited."""
    try:
        with rt.db.read() as session:
            try:
                record = get_record(session, code)
            except NotFoundError:
                raise record_not_found() from None
            require(user, action, record)
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, record_target(code), error=exc)
        raise
    return record


def filing_types(rt: Runtime, user: UserInfo) -> list[BusinessTypeInfo]:
    """The active business types ``user`` may file a new record under, by name."""
    with rt.db.read() as session:
        types = list_business_types(session)
    return sorted(
        (
            t
            for t in types
            if t.active and is_allowed(user.role, Action.record_create, t.default_security_class)
        ),
        key=lambda t: t.name,
    )


def list_records(
    rt: Runtime,
    user: UserInfo,
    *,
    business_type: str | None = None,
    year: int | None = None,
    status: RecordStatus | None = None,
    stage: Stage | None = None,
    page: int = 1,
    page_size: int = 50,
) -> RecordListing:
    """One page of the records ``user`` may see, newest first.

    :raises PermissionDeniedError: ``user`` may not read records' metadata (audited).
    """
    require_action(rt, user, Action.record_read_metadata)
    with rt.db.read() as session:
        return list_visible_records(
            session,
            user,
            business_type=business_type,
            year=year,
            status=status,
            stage=stage,
            offset=(page - 1) * page_size,
            limit=page_size,
        )


@dataclass(frozen=True)
class QueueItem:
    record: RecordInfo
    progress: Progress
    quality_issues: int = 0  # the pages' failed digitization checks (docs/quality.md)


def intake_queue(
    rt: Runtime, user: UserInfo, *, limit: int = 50, mine: bool = False
) -> list[QueueItem]:
    """The newest records ``user`` may see with how far their intake is: the intake queue.

    :param mine: only the records ``user`` entered.
    :raises PermissionDeniedError: ``user`` may not read records' metadata (audited).
    """
    require_action(rt, user, Action.record_read_metadata)
    with rt.db.read() as session:
        listing = list_visible_records(
            session, user, limit=limit, created_by=user.id if mine else None
        )
        issues = quality_issue_counts(session, (r.record.id for r in listing.rows))
        return [
            QueueItem(r.record, record_progress(session, r.record.id), issues.get(r.record.id, 0))
            for r in listing.rows
        ]


def record_detail(rt: Runtime, code: str, user: UserInfo) -> RecordDetail:
    """Metadata, intake progress, pages and the copies' fixity of one record.

    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not read its metadata.
    """
    record = _visible_record(rt, code, user, Action.record_read_metadata)
    with rt.db.read() as session:
        progress = record_progress(session, record.id)
        pages = tuple(list_pages(session, record.id))
        objects = tuple(
            o
            for o in objects_of_record(session, record.id)
            if o.role in _CONTENT_OBJECTS and not o.is_shredded
        )
        former = former_codes(session, record.id)
        decision = get_decision(session, record.id)
        cited_by = tuple(decisions_citing(session, record.id, user))
    if (
        decision is not None
        and decision.application_security_class is not None
        and decision.application_security_class not in visible_classes(user)
    ):
        # The application became a record hidden from this user (a key change made it a
        # contract): the link reads as one without its application, never naming it.
        decision = replace(
            decision,
            application_record_id=None,
            application_code=None,
            application_security_class=None,
            application_pages=None,
        )
    return RecordDetail(record, progress, pages, objects, former, decision, cited_by)


def record_history(
    rt: Runtime, code: str, user: UserInfo, *, after_id: int = 0, limit: int = 100
) -> list[AuditEventInfo]:
    """The record's own audit events, in chain order from a cursor: those filed under its
    code and under each former code (a key change renamed it).

    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not read its history.
    """
    record = _visible_record(rt, code, user, Action.record_read_history)
    with rt.db.read() as session:
        return list_visible_events(
            session,
            user,
            targets=history_targets(session, record),
            after_id=after_id,
            limit=limit,
        )


def _audit_content_read(rt: Runtime, record: RecordInfo, user: UserInfo, what: str, n: int) -> None:
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action=Action.record_read_content.value,
            target=record_target(record.archive_code),
            detail={"role": what, "page": n},
        )


def page_text(rt: Runtime, code: str, n: int, user: UserInfo) -> str:
    """The OCR text of page ``n`` (1-based); audited as a read of content.

    :raises NotFoundError: no such record (or hidden), no such page, or no text yet.
    :raises PermissionDeniedError: ``user`` may not read the record's content.
    """
    record = _visible_record(rt, code, user, Action.record_read_content)
    if not 1 <= n <= record.page_count:
        raise NotFoundError("no such page")
    _audit_content_read(rt, record, user, "page_text", n)
    pages = read_ocr_text(rt, record.id, actor=user.name)
    if not pages:
        raise NotFoundError("this record has no OCR text yet")
    result = pages[n - 1] if n <= len(pages) else None
    return result.text if result is not None else ""


def record_texts(rt: Runtime, code: str, user: UserInfo) -> list[str] | None:
    """The OCR text of every page (``""`` for a page that could not be read), or ``None`` when
    the record has none yet; audited as one read of content (``role: ocr_text``).

    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not read the record's content.
    """
    record = _visible_record(rt, code, user, Action.record_read_content)
    pages = read_ocr_text(rt, record.id, actor=user.name)
    if not pages:
        return None
    _audit_content_read(rt, record, user, "ocr_text", 0)
    return [p.text if p is not None else "" for p in pages]


def page_png(rt: Runtime, code: str, n: int, user: UserInfo, *, width: int | None) -> bytes:
    """Page ``n`` (1-based) as a PNG, turned and deskewed as it was read, scaled to ``width``
    pixels (never up). Rendered in memory from the decrypted original; the read is audited.

    :raises InvalidInputError: a width outside 16..:data:`MAX_IMAGE_WIDTH`.
    :raises NotFoundError: no such record (or hidden), or no such page.
    :raises PermissionDeniedError: ``user`` may not read the record's content.
    """
    if width is not None and not 16 <= width <= MAX_IMAGE_WIDTH:
        raise InvalidInputError(f"width is 16 to {MAX_IMAGE_WIDTH} pixels")
    record = _visible_record(rt, code, user, Action.record_read_content)
    if not 1 <= n <= record.page_count or record.content_type is None:
        raise NotFoundError("no such page")
    with rt.db.read() as session:
        page = next((p for p in list_pages(session, record.id) if p.number == n), None)
    # open_original checks the policy again and audits the read of the scan itself.
    original = open_original(rt, code, actor=user.name, user=user)
    data = b"".join(original.chunks)  # one scan, bounded by intake.max_bytes; memory only
    image = page_image(
        data,
        record.content_type,
        n - 1,
        rotation=page.rotation if page is not None else 0,
        skew=(page.skew or 0.0) if page is not None else 0.0,
        max_pixels=rt.settings.ocr.max_image_pixels,
    )
    del data
    if width is not None and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height))
    if image.mode not in ("RGB", "L", "1"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


@dataclass(frozen=True)
class UploadFile:
    """One file of an upload: a binary stream the caller opened (and closes), or a file already
    received into a private directory (or refused on the way: :mod:`api.services.upload_form`);
    and the name the client gave it (kept sanitised; never logged)."""

    stream: BinaryIO | Upload | RefusedUpload
    name: str | None


@dataclass(frozen=True)
class UploadOutcome:
    records: tuple[RecordInfo, ...]
    refused: tuple[tuple[int, DanganError], ...]  # (0-based file index, why)


def ingest_many(
    rt: Runtime, files: Sequence[UploadFile], new: NewRecord, user: UserInfo, *, force: bool
) -> UploadOutcome:
    """Ingest each file as its own record with the same catalog fields.

    A file the caller can fix (bad type, over a limit, a duplicate) is refused alone and the
    others go on; when no file at all was stored, the first refusal is raised as it is, so a
    one-file upload answers exactly as :func:`api.services.intake.ingest` does.

    :raises InvalidInputError: no files, or a legacy archive code given for several files.
    :raises PermissionDeniedError: ``user`` may not create such records (audited by intake).
    :raises StoreUnavailableError: the stores are down; files after the failing one are not read.
    """
    if not files:
        raise InvalidInputError("an upload needs at least one file")
    if new.archive_code is not None and len(files) > 1:
        raise InvalidInputError("a legacy archive code names one record: upload one file with it")
    stored: list[RecordInfo] = []
    refused: list[tuple[int, DanganError]] = []
    for index, file in enumerate(files):
        try:
            stored.append(
                ingest(
                    rt,
                    file.stream,
                    new,
                    actor=user.name,
                    user=user,
                    upload_name=file.name,
                    force=force,
                )
            )
        except (InvalidInputError, ConflictError) as exc:
            refused.append((index, exc))
    if not stored:
        raise refused[0][1]
    return UploadOutcome(tuple(stored), tuple(refused))


def reindex(rt: Runtime, session: object, archive_code: str, *, actor: str) -> None:
    """Queue the record for indexing again (in the caller's transaction): its catalog fields
    changed after it was indexed."""
    rt.enqueue(
        session,
        INDEX_RECORD,
        {"archive_code": archive_code},
        key=f"index:{archive_code}:{uuid.uuid4().hex}",
        actor=actor,
    )


def _edit_action(user: UserInfo, record: RecordInfo, *, key: bool, reopened: bool) -> Action:
    """The action that allows this edit: a supervisor's adjustment of non-key fields, or a
    correction of one's own draft (the only way a clerk, or anyone, fixes a draft's student).
    ``reopened``: the intake review made the record its clerk's draft again (docs/review.md)."""
    if key:
        require(user, Action.record_update_draft, record, reopened=reopened)
        return Action.record_update_draft
    try:
        require(user, Action.record_update_metadata, record)
    except PermissionDeniedError as first:
        try:
            require(user, Action.record_update_draft, record, reopened=reopened)
        except PermissionDeniedError:
            raise first from None
        return Action.record_update_draft
    return Action.record_update_metadata


def update_record(
    rt: Runtime, code: str, user: UserInfo, changes: Mapping[str, str | Sequence[str] | None]
) -> RecordInfo:
    """Edit a record's descriptive fields as the policy allows; audited with before and after.

    ``title``, ``student_class``, ``paper_location``, ``tags`` and ``notes`` need
    ``record.update_metadata`` (or, on one's own draft, ``record.update_draft``); the student's
    number and name only ``record.update_draft`` (past intake they change by an approved
    change request, :mod:`api.services.changes`). A record already indexed is queued for
    indexing again, and its sidecar is rewritten so the vault alone still tells the record's
    fields. ``code`` may be a former code of the record.

    :raises InvalidInputError: nothing to change, an unknown field, a value too long.
    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: the policy refuses the edit (audited).
    :raises StoreUnavailableError: the sidecar could not be rewritten (the edit itself stands).
    """
    if not changes:
        raise InvalidInputError("nothing to change")
    key = bool(KEY_FIELDS & changes.keys())
    action = Action.record_update_draft if key else Action.record_update_metadata
    try:
        with rt.db.write() as session:
            try:
                record = get_record(session, code)
            except NotFoundError:
                raise record_not_found() from None
            review = get_review(session, record.id)
            reopened = review is not None and review.reopened
            action = _edit_action(user, record, key=key, reopened=reopened)
            updated = update_record_fields(session, record.archive_code, changes, actor=user.name)
            if updated != record and record_progress(session, record.id).stage is Stage.done:
                reindex(rt, session, record.archive_code, actor=user.name)
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, record_target(code), error=exc)
        raise
    keyring = rt.vault.keyring
    if updated != record and keyring is not None:
        rewrite_sidecar(rt, record.id, keyring, actor=user.name)
    return updated
