"""The JSON the API answers with: pydantic models, so that ``/docs`` is the code's own word.

Each model is built from the catalog's frozen dataclasses by a ``of`` class method; nothing
here reads the database or decides a permission.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from api.services.records import RecordDetail
from api.services.search import SearchHit, SearchPage
from catalog import (
    ArchiveStats,
    AuditEventInfo,
    ChainReport,
    CopyInfo,
    CopyState,
    DecisionInfo,
    DecisionOutcome,
    JobInfo,
    JobState,
    ObjectInfo,
    PageCheckInfo,
    PageInfo,
    PageState,
    RecordInfo,
    RecordRow,
    RecordStatus,
    Retention,
    Role,
    ScheduleState,
    SecurityClass,
    Stage,
    UserInfo,
    Verdict,
)

__all__ = [
    "AuditPage",
    "AuditVerifyOut",
    "DecisionOut",
    "ErrorBody",
    "ErrorOut",
    "EventOut",
    "JobOut",
    "JobsPage",
    "PageTextOut",
    "ReadyOut",
    "RecordDetailOut",
    "RecordOut",
    "RecordsPage",
    "ScheduleOut",
    "SearchOut",
    "StatsOut",
    "TokenOut",
    "UploadOut",
    "UploadRefusal",
    "UserOut",
]


class ErrorBody(BaseModel):
    code: str = Field(description="a stable machine-readable code, e.g. `not_found`")
    message: str = Field(description="a message safe to show the person")


class ErrorOut(BaseModel):
    """The one shape of every error answer."""

    error: ErrorBody


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds the access token lives")


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, u: UserInfo) -> UserOut:
        return cls(id=u.id, name=u.name, role=u.role, disabled=u.disabled, created_at=u.created_at)


class RecordOut(BaseModel):
    archive_code: str
    year: int
    business_type: str
    serial: int
    title: str
    student_no: str | None
    student_name: str | None
    student_class: str | None
    security_class: SecurityClass
    paper_location: str | None
    tags: list[str] = Field(description="non-key labels")
    notes: str | None = Field(description="non-key remarks (备注)")
    status: RecordStatus
    stage: Stage | None = None
    needs_review: bool | None = None
    content_type: str | None
    size: int | None
    page_count: int
    upload_name: str | None
    created_at: dt.datetime

    @classmethod
    def of(
        cls, r: RecordInfo, *, stage: Stage | None = None, needs_review: bool | None = None
    ) -> RecordOut:
        return cls(
            archive_code=r.archive_code,
            year=r.year,
            business_type=r.business_type,
            serial=r.serial,
            title=r.title,
            student_no=r.student_no,
            student_name=r.student_name,
            student_class=r.student_class,
            security_class=r.security_class,
            paper_location=r.paper_location,
            tags=list(r.tags),
            notes=r.notes,
            status=r.status,
            stage=stage,
            needs_review=needs_review,
            content_type=r.content_type,
            size=r.size,
            page_count=r.page_count,
            upload_name=r.upload_name,
            created_at=r.created_at,
        )

    @classmethod
    def of_row(cls, row: RecordRow) -> RecordOut:
        return cls.of(row.record, stage=row.stage, needs_review=row.needs_review)


class RecordsPage(BaseModel):
    total: int
    page: int
    page_size: int
    records: list[RecordOut]


class UploadRefusal(BaseModel):
    index: int = Field(description="0-based position of the file in the upload")
    error: ErrorBody


class UploadOut(BaseModel):
    records: list[RecordOut] = Field(description="the records created, in upload order")
    refused: list[UploadRefusal] = Field(description="the files that were not stored, and why")


class PageCheckOut(BaseModel):
    """One digitization quality check on a page (docs/quality.md)."""

    name: str = Field(description="dpi, size, colour, skew, blank or confidence")
    verdict: Verdict = Field(
        description="pass; warn or fail (failed: fail where the business type blocks); "
        "none when the file does not say"
    )
    value: float | None = Field(description="the measured figure, where it is a number")
    reading: str | None = Field(description="the measured figure in words (grey, A4, blank)")
    threshold: str = Field(description="the rule the page was held to")

    @classmethod
    def of(cls, c: PageCheckInfo) -> PageCheckOut:
        return cls(
            name=c.name, verdict=c.verdict, value=c.value, reading=c.reading, threshold=c.threshold
        )


class PageOut(BaseModel):
    number: int
    state: PageState
    width: int | None
    height: int | None
    rotation: int
    skew: float | None
    engine: str | None
    confidence: float | None
    needs_review: bool
    checks: list[PageCheckOut] = Field(description="digitization quality, once the page is read")

    @classmethod
    def of(cls, p: PageInfo) -> PageOut:
        return cls(
            number=p.number,
            state=p.state,
            width=p.width,
            height=p.height,
            rotation=p.rotation,
            skew=p.skew,
            engine=p.engine,
            confidence=p.confidence,
            needs_review=p.needs_review,
            checks=[PageCheckOut.of(c) for c in p.checks],
        )


class CopyOut(BaseModel):
    store: str
    state: CopyState
    size: int
    ciphertext_sha256: str
    verified_at: dt.datetime | None

    @classmethod
    def of(cls, c: CopyInfo) -> CopyOut:
        return cls(
            store=c.store,
            state=c.state,
            size=c.size,
            ciphertext_sha256=c.ciphertext_sha256,
            verified_at=c.verified_at,
        )


class ObjectOut(BaseModel):
    role: str = Field(description="original, ocr_text or access_copy")
    size: int
    plaintext_sha256: str
    copies: list[CopyOut]

    @classmethod
    def of(cls, o: ObjectInfo) -> ObjectOut:
        return cls(
            role=o.role.value,
            size=o.size,
            plaintext_sha256=o.plaintext_sha256,
            copies=[CopyOut.of(c) for c in o.copies],
        )


class DecisionOut(BaseModel):
    """A status-change decision (学籍变更/转学/休学/复学) and the application it decides."""

    decision_code: str = Field(description="the decision record's archive code")
    application_code: str | None = Field(
        description="the application's record; null: the application is in the decision "
        "record itself (see application_pages), or not recorded"
    )
    application_pages: str | None = Field(description="the application's pages, e.g. 1-2")
    approver: str = Field(description="who approved: a user's name, or the official as written")
    approver_user: str | None = Field(description="the dangan user, when the approver is one")
    decision_date: dt.date
    decision: DecisionOutcome
    set_by: str
    set_at: dt.datetime

    @classmethod
    def of(cls, d: DecisionInfo) -> DecisionOut:
        return cls(
            decision_code=d.archive_code,
            application_code=d.application_code,
            application_pages=d.application_pages,
            approver=d.approver,
            approver_user=d.approver_user,
            decision_date=d.decision_date,
            decision=d.decision,
            set_by=d.set_by,
            set_at=d.set_at,
        )


class RecordDetailOut(BaseModel):
    record: RecordOut
    former_codes: list[str] = Field(
        description="codes a key change took from the record; each still finds it"
    )
    decision: DecisionOut | None = Field(
        description="a status-change decision record's link to its application"
    )
    cited_by: list[DecisionOut] = Field(
        description="the decisions (you may see) that decide this record as their application"
    )
    pages_done: int
    pages_failed: int
    processed_at: dt.datetime | None
    pages: list[PageOut]
    objects: list[ObjectOut]

    @classmethod
    def of(cls, d: RecordDetail) -> RecordDetailOut:
        return cls(
            record=RecordOut.of(
                d.record, stage=d.progress.stage, needs_review=d.progress.needs_review
            ),
            former_codes=list(d.former_codes),
            decision=DecisionOut.of(d.decision) if d.decision is not None else None,
            cited_by=[DecisionOut.of(c) for c in d.cited_by],
            pages_done=d.progress.pages_done,
            pages_failed=d.progress.pages_failed,
            processed_at=d.progress.processed_at,
            pages=[PageOut.of(p) for p in d.pages],
            objects=[ObjectOut.of(o) for o in d.objects],
        )


class PageTextOut(BaseModel):
    archive_code: str
    page: int
    text: str


class EventOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    outcome: str
    target: str | None
    detail: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, e: AuditEventInfo) -> EventOut:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            outcome=e.outcome,
            target=e.target,
            detail=e.detail,
            hash=e.hash,
        )


class AuditPage(BaseModel):
    events: list[EventOut]
    next_after_id: int | None = Field(description="pass as `after_id` for the next page")


class ChainProblemOut(BaseModel):
    event_id: int
    reason: str


class AuditVerifyOut(BaseModel):
    ok: bool
    events: int
    head_id: int | None
    head_hash: str | None
    problems: list[ChainProblemOut]

    @classmethod
    def of(cls, r: ChainReport) -> AuditVerifyOut:
        return cls(
            ok=r.ok,
            events=r.events,
            head_id=r.head.id if r.head else None,
            head_hash=r.head.hash if r.head else None,
            problems=[ChainProblemOut(event_id=p.event_id, reason=p.reason) for p in r.problems],
        )


class SnippetOut(BaseModel):
    page: int = Field(description="1-based page number")
    text: str
    highlights: list[tuple[int, int]] = Field(description="(start, end) offsets into text")


class HitOut(BaseModel):
    record: RecordOut
    score: float
    snippets: list[SnippetOut]

    @classmethod
    def of(cls, h: SearchHit) -> HitOut:
        return cls(
            record=RecordOut.of(h.record),
            score=h.score,
            snippets=[
                SnippetOut(page=s.page, text=s.text, highlights=list(s.highlights))
                for s in h.snippets
            ],
        )


class FacetOut(BaseModel):
    value: str
    count: int


class SearchOut(BaseModel):
    query: str
    total: int
    page: int
    page_size: int
    hits: list[HitOut]
    facets: dict[str, list[FacetOut]]
    suggestion: str | None

    @classmethod
    def of(cls, p: SearchPage) -> SearchOut:
        return cls(
            query=p.query,
            total=p.total,
            page=p.page,
            page_size=p.page_size,
            hits=[HitOut.of(h) for h in p.hits],
            facets={
                k: [FacetOut(value=f.value, count=f.count) for f in v] for k, v in p.facets.items()
            },
            suggestion=p.suggestion,
        )


class JobOut(BaseModel):
    id: int
    kind: str
    state: JobState
    attempts: int
    max_attempts: int
    archive_code: str | None = Field(description="the record it works on, when you may see it")
    last_error: str | None
    created_at: dt.datetime
    run_after: dt.datetime
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, j: JobInfo, archive_code: str | None) -> JobOut:
        return cls(
            id=j.id,
            kind=j.kind,
            state=j.state,
            attempts=j.attempts,
            max_attempts=j.max_attempts,
            archive_code=archive_code,
            last_error=j.last_error,
            created_at=j.created_at,
            run_after=j.run_after,
            finished_at=j.finished_at,
        )


class JobsPage(BaseModel):
    jobs: list[JobOut]


class ScheduleOut(BaseModel):
    """One periodic job: what it runs, how often, how its last run went, when it runs next."""

    name: str
    kind: str
    interval_seconds: int
    description: str
    runnable: bool = Field(description="whether a worker of this server has its handler")
    last_run_at: dt.datetime | None
    last_job_id: int | None
    outcome: str = Field(
        description="the newest job's state (queued, running, done, dead), or never"
    )
    last_error: str | None
    finished_at: dt.datetime | None
    next_run_at: dt.datetime
    summary: dict[str, Any] | None = Field(description="what the last run counted")

    @classmethod
    def of(cls, s: ScheduleState) -> ScheduleOut:
        return cls(
            name=s.name,
            kind=s.kind,
            interval_seconds=int(s.interval.total_seconds()),
            description=s.description,
            runnable=s.runnable,
            last_run_at=s.last_run_at,
            last_job_id=s.last_job_id,
            outcome=s.outcome,
            last_error=s.last_error,
            finished_at=s.finished_at,
            next_run_at=s.next_run_at,
            summary=dict(s.summary) if s.summary else None,
        )


class BusinessTypeOut(BaseModel):
    name: str
    retention: Retention
    default_security_class: SecurityClass


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, bool]


class TypeYearOut(BaseModel):
    business_type: str
    year: int
    records: int


class DayOut(BaseModel):
    day: dt.date = Field(description="a day in UTC")
    records: int


class StatsOut(BaseModel):
    """The dashboard's figures, every one counted over the records you may see."""

    as_of: dt.datetime
    records_by_type_year: list[TypeYearOut] = Field(
        description="live (not disposed) records per business type and year"
    )
    records_by_status: dict[RecordStatus, int] = Field(description="every status, disposed too")
    intake_in_progress: int = Field(description="live records whose intake is not done")
    records_need_review: int = Field(description="records with a failed or low-confidence page")
    pages_failed: int = Field(description="pages OCR gave up on")
    pages_low_confidence: int = Field(description="pages read with too little confidence")
    jobs_failed: int = Field(description="dead jobs, but those about records hidden from you")
    records_under_replicated: int
    copies_damaged: int = Field(description="copies found bad or missing")
    intake_by_day: list[DayOut] = Field(description="records entered per day, oldest first")

    @classmethod
    def of(cls, s: ArchiveStats) -> StatsOut:
        return cls(
            as_of=s.as_of,
            records_by_type_year=[
                TypeYearOut(business_type=c.business_type, year=c.year, records=c.records)
                for c in s.by_type_year
            ],
            records_by_status=dict(s.by_status),
            intake_in_progress=s.in_progress,
            records_need_review=s.needs_review,
            pages_failed=s.pages_failed,
            pages_low_confidence=s.pages_low_confidence,
            jobs_failed=s.jobs_failed,
            records_under_replicated=s.under_replicated,
            copies_damaged=s.copies_damaged,
            intake_by_day=[DayOut(day=d.day, records=d.records) for d in s.intake_by_day],
        )


class CheckRequest(BaseModel):
    """Which records a four-property check covers: codes, or a type and year range, or all
    the records you may see (nothing given)."""

    codes: list[str] = Field(default_factory=list, max_length=500)
    business_type: str | None = None
    year_from: int | None = Field(default=None, ge=1900, le=2200)
    year_to: int | None = Field(default=None, ge=1900, le=2200)
    deep: bool = Field(default=True, description="decrypt every copy and render every page")


class CheckItemOut(BaseModel):
    property: str = Field(description="authenticity, integrity, usability or security")
    rule: str = Field(description="A0-A4, I1-I4, U1-U5, S1-S5 (docs/standards.md)")
    name: str
    outcome: str = Field(description="pass, warn, fail or skip")
    detail: str


class RecordCheckOut(BaseModel):
    archive_code: str
    business_type: str
    year: int
    outcome: str
    properties: dict[str, str]
    items: list[CheckItemOut]


class CheckReportOut(BaseModel):
    started_at: dt.datetime
    finished_at: dt.datetime | None
    actor: str
    occasion: str
    deep: bool
    selection: dict[str, Any]
    outcome: str
    records_checked: int
    record_outcomes: dict[str, int]
    not_found: list[str] = Field(description="codes given that name no record you may see")
    archive: list[CheckItemOut]
    records: list[RecordCheckOut]


class QuarterIndicatorsOut(BaseModel):
    quarter: str = Field(description="e.g. 2026Q3, by when records were entered (UTC)")
    entered: int
    archived: int
    mean_hours_to_archive: float | None = Field(description="timeliness: entered → archived")
    p90_hours_to_archive: float | None
    incomplete_fields: int = Field(description="live records missing a required field")
    incomplete_pages: int = Field(description="archived records with a page not read")
    completeness: float | None = Field(description="share of entered records complete")
    sampled: int | None = Field(description="items of the quarter's sampling audit")
    defective: int | None
    findings: int | None
    accuracy: float | None = Field(description="findings per item sampled")
    error_rate: float | None = Field(description="defective items over items sampled")


class IndicatorsOut(BaseModel):
    as_of: dt.datetime
    quarters: list[QuarterIndicatorsOut]
    trends: dict[str, float | None] = Field(description="latest quarter minus the one before")
    by_type: list[dict[str, Any]]
    by_year: list[dict[str, Any]]
    by_class: list[dict[str, Any]]
    status_changes: list[dict[str, Any]]
