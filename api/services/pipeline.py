"""The intake pipeline as durable jobs: count pages → read each page → assemble → index.

::

    ocr.rasterize  (one per record)  count the pages, create them, queue one ocr.page each
    ocr.page       (one per page)    rasterize, turn, deskew and OCR one page (or take a
                                     born-digital PDF's text layer); its result is stored
                                     encrypted in the vault; the last page queues ocr.assemble
    ocr.assemble   (one per record)  every page's result in one OCR-text object, and the
                                     access copy (a searchable PDF), both in both stores
    index.record   (one per record)  the record into the search index; the record is done

Pages run in parallel because each is its own job and the workers are one process a core
(each OCR engine is held to one thread). Every step looks before it writes, so a job run twice
(a worker killed mid-way, a lease lost) changes nothing the second time, and a record reaches
``archived`` once. A page whose reading keeps failing is marked failed on its last attempt and
the record flagged for review: the record is never stuck and never loses its other pages.

OCR text is record content: it lives only in the vault (encrypted, two copies) and in memory;
the catalog keeps a page's size, turn, skew and confidence. Nothing here logs text or names.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple, cast

from pydantic import BaseModel, ConfigDict, Field

from api.services.fourprop import CHECK_PRIORITY, CHECK_RECORD
from api.services.jobs import (
    RecordPayload,
    discard_on_error,
    queue_replication,
    rewrite_sidecar,
    written,
)
from api.services.reading import mark_bad_copy
from api.services.review import queue_system_check
from api.services.runtime import Runtime, job_runtime, worker_actor
from api.services.vault import load_configured_keyring
from catalog import (
    JobContext,
    ObjectInfo,
    ObjectRole,
    PageCheckInfo,
    PageInfo,
    PageOutcome,
    PageState,
    RecordInfo,
    RecordStatus,
    Stage,
    Verdict,
    add_object,
    finish_pipeline,
    former_codes,
    get_record,
    list_pages,
    mark_page_done,
    mark_page_failed,
    objects_of_record,
    record_event,
    register,
    set_stage,
    shred_object,
    start_pages,
    store_page_checks,
)
from dangan.config import QualitySettings
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
)
from indexer import IndexDoc
from ocr import (
    PageResult,
    PageScan,
    QualityRules,
    assess,
    measure_page,
    page_count,
    page_image,
    read_page,
    searchable_pdf,
)
from ocr.inspect import limit_pillow_pixels, sniff_media_type
from vault import CHUNK, WrappedKey, WriteResult, new_object_id

__all__ = [
    "INDEX_RECORD",
    "OCR_ASSEMBLE",
    "OCR_PAGE",
    "OCR_RASTERIZE",
    "PagePayload",
    "index_document",
    "quality_checks",
    "read_ocr_text",
]

log = logging.getLogger(__name__)

# Queued by intake for every new record, keyed ``ocr:{archive_code}``.
OCR_RASTERIZE = "ocr.rasterize"
OCR_PAGE = "ocr.page"
OCR_ASSEMBLE = "ocr.assemble"
INDEX_RECORD = "index.record"

OCR_TEXT_FORMAT = "dangan-ocr-text"
OCR_TEXT_VERSION = 1


class PagePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive_code: str = Field(min_length=1, max_length=64)
    page: int = Field(ge=1)


def _live_record(rt: Runtime, archive_code: str) -> tuple[RecordInfo, list[PageInfo]] | None:
    """The record a job is about and its pages; ``None`` once it is disposed of (or gone):
    there is nothing left to read or index, and the job ends quietly."""
    with rt.db.read() as session:
        try:
            record = get_record(session, archive_code)
        except NotFoundError:
            return None
        pages = list_pages(session, record.id)
    if record.status is RecordStatus.disposed:
        return None
    return record, pages


class _JobRecord(NamedTuple):
    rt: Runtime
    actor: str
    record: RecordInfo
    pages: list[PageInfo]


def _job_record(ctx: JobContext[Any], archive_code: str) -> _JobRecord | None:
    """What every pipeline job starts from: its runtime, its audit actor, and the live record
    with its pages (``None`` once the record is disposed of or gone)."""
    rt = job_runtime(ctx, "pipeline")
    found = _live_record(rt, archive_code)
    if found is None:
        return None
    return _JobRecord(rt, worker_actor(ctx), *found)


# --- reading what the vault holds -------------------------------------------------------------


def _live(objects: list[ObjectInfo], role: ObjectRole) -> list[ObjectInfo]:
    return [o for o in objects if o.role is role and not o.is_shredded]


def _read_object(rt: Runtime, obj: ObjectInfo, *, actor: str) -> bytes:
    """The whole plaintext of one (small or page-sized) object, checked against its SHA-256;
    a bad copy on the way is marked and its repair queued."""
    if obj.wrapped_key is None:
        raise NotFoundError("this object was destroyed")
    primary = obj.copy_in("primary")
    reader = rt.vault.read(
        obj.id,
        WrappedKey.from_bytes(obj.wrapped_key),
        plaintext_sha256=obj.plaintext_sha256,
        ciphertext_sha256=primary.ciphertext_sha256 if primary else None,
        algorithm=obj.digest_algorithm,
        on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=actor),
    )
    with reader:
        return b"".join(reader)


def original_scan(rt: Runtime, record: RecordInfo, *, actor: str) -> tuple[bytes, str]:
    """The record's original scan in memory, and its media type (sniffed, as at intake)."""
    return _original(rt, record, actor=actor)


def _original(rt: Runtime, record: RecordInfo, *, actor: str) -> tuple[bytes, str]:
    """The record's original scan in memory, and its media type (sniffed, as at intake)."""
    with rt.db.read() as session:
        originals = _live(objects_of_record(session, record.id), ObjectRole.original)
    if not originals:
        raise NotFoundError("this record has no readable original")
    data = _read_object(rt, originals[0], actor=actor)
    limit_pillow_pixels(rt.settings.ocr.max_image_pixels)  # this process's Pillow, as intake's
    return data, sniff_media_type(data[:16])


def read_ocr_text(rt: Runtime, record_id: int, *, actor: str) -> list[PageResult | None]:
    """The record's OCR result per page (``None`` for a page that could not be read); empty
    when the record has no OCR text yet.

    :raises CorruptDataError: the OCR text object is not one dangan wrote.
    """
    with rt.db.read() as session:
        texts = _live(objects_of_record(session, record_id), ObjectRole.ocr_text)
    if not texts:
        return []
    doc = json.loads(_read_object(rt, texts[0], actor=actor))
    if doc.get("format") != OCR_TEXT_FORMAT:
        raise CorruptDataError("the record's OCR text is not in dangan's format")
    return [PageResult.from_json(p) if p is not None else None for p in doc["pages"]]


def _store(rt: Runtime, chunks: Iterator[bytes] | list[bytes]) -> tuple[str, WriteResult]:
    object_id = new_object_id()
    return object_id, rt.vault.write(object_id, chunks)


# --- ocr.rasterize ----------------------------------------------------------------------------


@register(OCR_RASTERIZE, RecordPayload)
def rasterize(ctx: JobContext[Any], payload: RecordPayload) -> None:
    """Count the record's pages, create them, and queue the reading of each pending one."""
    job = _job_record(ctx, payload.archive_code)
    if job is None:
        return
    rt, actor, record, pages = job
    if not pages:
        data, media_type = _original(rt, record, actor=actor)
        count = page_count(data, media_type)
        del data
    else:
        count = len(pages)
    ctx.ensure_lease()
    with rt.db.write() as session:
        pages = start_pages(session, record.id, count)
        for page in pages:
            if page.state is PageState.pending:
                rt.enqueue(
                    session,
                    OCR_PAGE,
                    {"archive_code": record.archive_code, "page": page.number},
                    key=f"ocr:{record.archive_code}:p{page.number}",
                    actor=actor,
                )
        if all(p.state is not PageState.pending for p in pages):
            _queue_assemble(rt, session, record, actor=actor)


def _queue_assemble(rt: Runtime, session: Any, record: RecordInfo, *, actor: str) -> None:
    rt.enqueue(
        session,
        OCR_ASSEMBLE,
        {"archive_code": record.archive_code},
        key=f"assemble:{record.archive_code}",
        actor=actor,
    )


# --- ocr.page ---------------------------------------------------------------------------------


@register(OCR_PAGE, PagePayload)
def read_one_page(ctx: JobContext[Any], payload: PagePayload) -> None:
    """Read one page and store its result encrypted; on its last attempt a page that keeps
    failing is marked failed instead (the record is flagged for review, never stuck)."""
    job = _job_record(ctx, payload.archive_code)
    if job is None:
        return
    rt, actor, record, pages = job
    page = next((p for p in pages if p.number == payload.page), None)
    if page is None or page.state is not PageState.pending:
        return
    settings = rt.settings.ocr
    try:
        data, media_type = _original(rt, record, actor=actor)
        result = read_page(
            data,
            media_type,
            payload.page - 1,
            engine=settings.engine,
            languages=settings.languages,
            max_pixels=settings.max_image_pixels,
        )
        checks = quality_checks(
            rt.settings.quality,
            record.business_type,
            measure_page(data, media_type, payload.page - 1, max_pixels=settings.max_image_pixels),
            result,
        )
        del data
    except StoreUnavailableError:
        raise  # the stores will be back: retry without counting it against the page
    except Exception as exc:
        final = isinstance(exc, InvalidInputError) or ctx.job.attempts >= ctx.job.max_attempts
        if not final:
            raise
        reason = exc.code if isinstance(exc, DanganError) else type(exc).__name__
        with rt.db.write() as session:
            remaining = mark_page_failed(
                session,
                record.id,
                payload.page,
                error=reason,
                actor=actor,
                archive_code=record.archive_code,
            )
            if remaining == 0:
                _queue_assemble(rt, session, record, actor=actor)
        log.warning(
            "a page could not be read",
            extra={"event": "ocr.page_failed", "record_id": record.id, "page": payload.page},
        )
        return
    ctx.ensure_lease()
    body = json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")
    object_id, stored = _store(rt, [body])
    try:
        with discard_on_error(rt.vault, object_id), rt.db.write() as session:
            add_object(
                session,
                object_id=object_id,
                record_id=record.id,
                role=ObjectRole.ocr_page,
                **written(stored),
            )
            remaining = mark_page_done(
                session,
                record.id,
                payload.page,
                PageOutcome(
                    text_object_id=object_id,
                    width=result.width,
                    height=result.height,
                    rotation=result.rotation,
                    skew=result.skew,
                    engine=result.engine,
                    confidence=result.confidence,
                    needs_review=result.needs_review,
                ),
            )
            store_page_checks(
                session,
                record.id,
                payload.page,
                checks,
                actor=actor,
                archive_code=record.archive_code,
            )
            if remaining == 0:
                _queue_assemble(rt, session, record, actor=actor)
    except ConflictError:
        return  # another attempt recorded the page first; ours is discarded


def quality_checks(
    rules: QualitySettings, business_type: str, scan: PageScan, result: PageResult
) -> list[PageCheckInfo]:
    """Judge one page's digitization (docs/quality.md): a failed check warns, or fails (the
    record then needs review) where ``business_type`` is one of ``quality.block_types``.

    :param scan: what :func:`ocr.quality.measure_page` found on the page as scanned.
    :param result: the page's reading; its skew is the angle measured before deskewing.
    """
    return judge_page(
        rules,
        business_type,
        scan,
        skew=result.skew,
        confidence=result.confidence,
        engine=result.engine,
    )


def judge_page(
    rules: QualitySettings,
    business_type: str,
    scan: PageScan,
    *,
    skew: float | None,
    confidence: float | None,
    engine: str | None,
) -> list[PageCheckInfo]:
    """:func:`quality_checks` from a page's figures: its skew before deskewing, its OCR
    confidence and the engine that read it (``text_layer``: born digital, never skewed)."""
    born_digital = engine == "text_layer"  # its text came with it: nothing was skewed
    judged = assess(
        scan,
        skew=None if born_digital else skew,
        confidence=confidence,
        rules=QualityRules(
            min_dpi=rules.min_dpi,
            max_skew=rules.max_skew,
            blank_below=rules.blank_below,
            min_confidence=rules.min_confidence,
            need_colour=business_type in rules.seal_types,
            size_tolerance=rules.size_tolerance,
        ),
    )
    failed = Verdict.fail if business_type in rules.block_types else Verdict.warn
    verdicts = {None: Verdict.unmeasured, True: Verdict.passed, False: failed}
    return [
        PageCheckInfo(c.name, verdicts[c.passed], c.value, c.reading, c.threshold) for c in judged
    ]


# --- ocr.assemble -----------------------------------------------------------------------------


def _ocr_text_body(results: list[PageResult | None], record: RecordInfo) -> bytes:
    doc = {
        "format": OCR_TEXT_FORMAT,
        "version": OCR_TEXT_VERSION,
        "archive_code": record.archive_code,
        "pages": [r.to_json() if r is not None else None for r in results],
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _spooled_chunks(spool: Any) -> Iterator[bytes]:
    spool.seek(0)
    while piece := spool.read(CHUNK):
        yield piece


@register(OCR_ASSEMBLE, RecordPayload)
def assemble(ctx: JobContext[Any], payload: RecordPayload) -> None:
    """Store the record's OCR text (every page) and its access copy, then queue indexing.

    The per-page results are destroyed once the OCR text that carries them is recorded.
    """
    job = _job_record(ctx, payload.archive_code)
    if job is None:
        return
    rt, actor, record, pages = job
    with rt.db.read() as session:
        objects = objects_of_record(session, record.id)
    if any(p.state is PageState.pending for p in pages):
        raise ConflictError("pages are still being read")  # retried later
    page_objects = _live(objects, ObjectRole.ocr_page)
    if not _live(objects, ObjectRole.ocr_text):
        by_id = {o.id: o for o in page_objects}
        results: list[PageResult | None] = []
        for p in pages:
            obj = by_id.get(p.text_object_id or "")
            if p.state is PageState.done and obj is not None:
                results.append(PageResult.from_json(json.loads(_read_object(rt, obj, actor=actor))))
            else:
                results.append(None)
        ctx.ensure_lease()
        _store_derived(rt, record, results, actor=actor)
    with rt.db.write() as session:
        set_stage(session, record.id, Stage.indexing)
        rt.enqueue(
            session,
            INDEX_RECORD,
            {"archive_code": record.archive_code},
            key=f"index:{record.archive_code}",
            actor=actor,
        )
    _destroy_page_objects(rt, page_objects, actor=actor)
    # The sidecar names the record's objects, for rebuilding the catalog from the vault.
    rewrite_sidecar(rt, record.id, load_configured_keyring(rt.settings), actor=actor)


def _store_derived(
    rt: Runtime, record: RecordInfo, results: list[PageResult | None], *, actor: str
) -> None:
    """Write the OCR text and the access copy, and record both in one transaction."""
    text_id, text_written = _store(rt, [_ocr_text_body(results, record)])
    with discard_on_error(rt.vault, text_id):
        data, media_type = _original(rt, record, actor=actor)
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
            searchable_pdf(_access_pages(data, media_type, results), cast(BinaryIO, spool))
            del data
            copy_id, copy_written = _store(rt, _spooled_chunks(spool))
        with discard_on_error(rt.vault, copy_id), rt.db.write() as session:
            for object_id, role, result in (
                (text_id, ObjectRole.ocr_text, text_written),
                (copy_id, ObjectRole.access_copy, copy_written),
            ):
                add_object(
                    session, object_id=object_id, record_id=record.id, role=role, **written(result)
                )
                queue_replication(rt, session, object_id, result, actor=actor)
            record_event(
                session,
                actor=actor,
                action="record.ocr_stored",
                target=f"record:{record.archive_code}",
                detail={"ocr_text": text_id, "access_copy": copy_id, "pages": len(results)},
            )


def _access_pages(
    data: bytes, media_type: str, results: list[PageResult | None]
) -> Iterator[tuple[Any, PageResult]]:
    """Each page's normalised image with its OCR result; a page that could not be read gets
    its raw image and no text, and one that cannot even be rendered is left out."""
    for index, result in enumerate(results):
        try:
            image = page_image(
                data,
                media_type,
                index,
                rotation=result.rotation if result else 0,
                skew=result.skew if result else 0.0,
            )
        except Exception:  # noqa: BLE001 - one unrenderable page must not lose the others
            log.warning(
                "a page could not be rendered for the access copy",
                extra={"event": "access_copy.page_skipped", "page": index + 1},
            )
            continue
        yield image, result or _unread(image.width, image.height)


def _unread(width: int, height: int) -> PageResult:
    """A page with no text (its reading failed): in the access copy as an image alone."""
    return PageResult(
        text="",
        words=(),
        confidence=0.0,
        rotation=0,
        skew=0.0,
        width=width,
        height=height,
        engine="none",
        needs_review=True,
    )


def _destroy_page_objects(rt: Runtime, page_objects: list[ObjectInfo], *, actor: str) -> None:
    for obj in page_objects:
        try:
            rt.vault.delete_object(obj.id)
        except StoreUnavailableError:
            continue  # shredding the key below makes any copy left unreadable
        with rt.db.write() as session:
            shred_object(session, object_id=obj.id, actor=actor)


# --- index.record -----------------------------------------------------------------------------


def index_document(rt: Runtime, record: RecordInfo, *, actor: str) -> IndexDoc:
    """What the search index holds of a record: its catalog fields (its former codes too) and
    its pages' text."""
    results = read_ocr_text(rt, record.id, actor=actor)
    with rt.db.read() as session:
        former = former_codes(session, record.id)
    return IndexDoc(
        record_id=record.id,
        archive_code=record.archive_code,
        title=record.title,
        business_type=record.business_type,
        year=record.year,
        security_class=record.security_class.value,
        student_name=record.student_name,
        student_no=record.student_no,
        student_class=record.student_class,
        paper_location=record.paper_location,
        pages=tuple(r.text if r is not None else "" for r in results),
        former_codes=former,
        tags=record.tags,
    )


@register(INDEX_RECORD, RecordPayload)
def index_record(ctx: JobContext[Any], payload: RecordPayload) -> None:
    """Put the record into the search index; its pipeline is then done."""
    job = _job_record(ctx, payload.archive_code)
    if job is None:
        return
    rt, actor, record, _pages = job
    rt.index.add([index_document(rt, record, actor=actor)])
    with rt.db.write() as session:
        finish_pipeline(session, record.id, actor=actor, archive_code=record.archive_code)
        # The four-property check of the record as archived (docs/standards.md).
        rt.enqueue(
            session,
            CHECK_RECORD,
            {"archive_code": record.archive_code},
            key=f"check:{record.archive_code}:intake",
            actor=actor,
            priority=CHECK_PRIORITY,
        )
        # The intake review's system check, if the record waits for it (docs/review.md).
        queue_system_check(rt, session, record, actor=actor)
    log.info(
        "record processed",
        extra={"event": "record.processed", "record_id": record.id},
    )
