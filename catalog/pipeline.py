"""The catalog's side of the intake pipeline: each record's stage and each page's state.

The pipeline (``api/services/pipeline.py``) runs as jobs; this module is what they agree on.
A record goes ``queued → ocr → assembling → indexing → done``; its pages are created once
(:func:`start_pages`) and each ends ``done`` (its OCR result stored in the vault, named here by
object id) or ``failed`` (retried and given up; the record is flagged for review). Page text
never enters the catalog: only its size, turn, skew, engine and confidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import Page, PageState, Record, RecordStatus, Stage, utcnow
from catalog.objects import refresh_record_status
from catalog.quality import PageCheckInfo, checks_of_pages
from dangan.errors import ConflictError, NotFoundError

__all__ = [
    "PageInfo",
    "PageOutcome",
    "Progress",
    "finish_pipeline",
    "list_pages",
    "mark_page_done",
    "mark_page_failed",
    "record_progress",
    "records_in_stage",
    "set_stage",
    "start_pages",
]


@dataclass(frozen=True)
class PageInfo:
    number: int  # 1-based
    state: PageState
    width: int | None
    height: int | None
    rotation: int
    skew: float | None
    engine: str | None
    confidence: float | None
    needs_review: bool
    text_object_id: str | None
    error: str | None
    #: The digitization quality findings (docs/quality.md); empty until the page is read.
    checks: tuple[PageCheckInfo, ...] = field(default=())


@dataclass(frozen=True)
class PageOutcome:
    """What reading one page found (its text is in the vault object ``text_object_id``)."""

    text_object_id: str
    width: int
    height: int
    rotation: int
    skew: float
    engine: str
    confidence: float
    needs_review: bool


@dataclass(frozen=True)
class Progress:
    """How far a record is: ``dangan status CODE``."""

    archive_code: str
    status: RecordStatus
    stage: Stage
    pages: int
    pages_done: int
    pages_failed: int
    needs_review: bool
    processed_at: dt.datetime | None

    @property
    def pages_pending(self) -> int:
        return self.pages - self.pages_done - self.pages_failed


def _record(session: Session, record_id: int) -> Record:
    record = session.get(Record, record_id)
    if record is None:
        raise NotFoundError("no such record")
    return record


def _page_info(p: Page, checks: tuple[PageCheckInfo, ...] = ()) -> PageInfo:
    return PageInfo(
        number=p.number,
        state=PageState(p.state),
        width=p.width,
        height=p.height,
        rotation=p.rotation,
        skew=p.skew,
        engine=p.engine,
        confidence=p.ocr_confidence,
        needs_review=p.needs_review,
        text_object_id=p.text_object_id,
        error=p.error,
        checks=checks,
    )


def set_stage(session: Session, record_id: int, stage: Stage) -> None:
    """Move the record to ``stage`` (a disposed record is left alone)."""
    record = _record(session, record_id)
    if record.status == RecordStatus.disposed.value:
        return
    record.stage = stage.value
    refresh_record_status(session, record_id)


def start_pages(session: Session, record_id: int, count: int) -> list[PageInfo]:
    """Create the record's ``count`` pages (once) and move it to the ``ocr`` stage.

    Idempotent: called again (a retried job), the pages made the first time are returned.

    :raises ConflictError: the record has a different number of pages already.
    """
    if count < 1:
        raise ConflictError("a record needs at least one page")
    record = _record(session, record_id)
    pages = list(
        session.scalars(select(Page).where(Page.record_id == record_id).order_by(Page.number))
    )
    if pages and len(pages) != count:
        raise ConflictError(f"the record has {len(pages)} pages already, not {count}")
    if not pages:
        pages = [
            Page(record_id=record_id, number=n, state=PageState.pending.value)
            for n in range(1, count + 1)
        ]
        session.add_all(pages)
        session.flush()
    record.page_count = count
    if record.stage == Stage.queued.value:
        set_stage(session, record_id, Stage.ocr)
    return [_page_info(p) for p in pages]


def _page(session: Session, record_id: int, number: int) -> Page:
    page = session.scalars(
        select(Page).where(Page.record_id == record_id, Page.number == number)
    ).one_or_none()
    if page is None:
        raise NotFoundError(f"no page {number} in this record")
    return page


def _pending(session: Session, record_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Page)
            .where(Page.record_id == record_id, Page.state == PageState.pending.value)
        )
        or 0
    )


def _lock_record(session: Session, record_id: int) -> Record:
    """The record row, locked until commit (PostgreSQL), so that two pages finishing at once
    cannot both count the other as pending and leave the record unassembled."""
    record = session.get(Record, record_id, with_for_update=True)
    if record is None:
        raise NotFoundError("no such record")
    return record


def mark_page_done(session: Session, record_id: int, number: int, outcome: PageOutcome) -> int:
    """Record a page's OCR outcome.

    :returns: the pages still pending.
    :raises ConflictError: the page is not pending (another attempt recorded it first).
    """
    _lock_record(session, record_id)
    page = _page(session, record_id, number)
    if page.state != PageState.pending.value:
        raise ConflictError(f"page {number} is {page.state} already")
    page.state = PageState.done.value
    page.text_object_id = outcome.text_object_id
    page.width = outcome.width
    page.height = outcome.height
    page.rotation = outcome.rotation
    page.skew = outcome.skew
    page.engine = outcome.engine
    page.ocr_confidence = outcome.confidence
    page.needs_review = outcome.needs_review
    page.error = None
    return _pending(session, record_id)


def mark_page_failed(
    session: Session, record_id: int, number: int, *, error: str, actor: str, archive_code: str
) -> int:
    """Give up on a page after its retries: it keeps no text and the record needs review.

    :param error: a safe one-line reason (an error code, never page text).
    :returns: the pages still pending.
    """
    record = _lock_record(session, record_id)
    page = _page(session, record_id, number)
    if page.state == PageState.pending.value:
        page.state = PageState.failed.value
        page.error = error[:200]
        page.needs_review = True
        record.needs_review = True
        record_event(
            session,
            actor=actor,
            action="record.page_failed",
            target=f"record:{archive_code}",
            outcome="error",
            detail={"page": number, "error": error[:200]},
        )
    return _pending(session, record_id)


def list_pages(session: Session, record_id: int) -> list[PageInfo]:
    """The record's pages in order, each with its digitization quality findings."""
    pages = list(
        session.scalars(select(Page).where(Page.record_id == record_id).order_by(Page.number))
    )
    checks = checks_of_pages(session, (p.id for p in pages))
    return [_page_info(p, tuple(checks.get(p.id, ()))) for p in pages]


def finish_pipeline(session: Session, record_id: int, *, actor: str, archive_code: str) -> None:
    """The record is read and indexed: stage ``done`` (``archived`` once both copies hold)."""
    record = _record(session, record_id)
    if record.stage == Stage.done.value or record.status == RecordStatus.disposed.value:
        return
    pages = list_pages(session, record_id)
    record.needs_review = record.needs_review or any(p.needs_review for p in pages)
    record.processed_at = utcnow()
    set_stage(session, record_id, Stage.done)
    record_event(
        session,
        actor=actor,
        action="record.processed",
        target=f"record:{archive_code}",
        detail={
            "pages": len(pages),
            "failed_pages": sum(p.state is PageState.failed for p in pages),
            "needs_review": record.needs_review,
        },
    )


def record_progress(session: Session, record_id: int) -> Progress:
    record = _record(session, record_id)
    counts = dict(
        session.execute(
            select(Page.state, func.count()).where(Page.record_id == record_id).group_by(Page.state)
        ).all()
    )
    return Progress(
        archive_code=record.archive_code,
        status=RecordStatus(record.status),
        stage=Stage(record.stage),
        pages=record.page_count,
        pages_done=int(counts.get(PageState.done.value, 0)),
        pages_failed=int(counts.get(PageState.failed.value, 0)),
        needs_review=record.needs_review,
        processed_at=record.processed_at,
    )


def records_in_stage(
    session: Session, stages: Sequence[Stage], *, after_id: int = 0, limit: int = 500
) -> list[tuple[int, str]]:
    """``(record id, archive code)`` of live records in ``stages``, by id from a cursor."""
    rows = session.execute(
        select(Record.id, Record.archive_code)
        .where(
            Record.stage.in_([s.value for s in stages]),
            Record.status != RecordStatus.disposed.value,
            Record.id > after_id,
        )
        .order_by(Record.id)
        .limit(limit)
    ).all()
    return [(int(i), str(c)) for i, c in rows]
