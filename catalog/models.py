"""The catalog's tables: SQLAlchemy 2.0 typed models.

Only ``catalog`` sees these classes; other packages get the frozen dataclasses that the
catalog's functions return. Every schema change here comes with one Alembic revision in
``catalog/migrations/versions`` (``alembic check`` in the tests guards drift).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEvent",
    "Base",
    "BusinessType",
    "CheckResult",
    "CodeCounter",
    "CopyState",
    "Job",
    "JobState",
    "ObjectRole",
    "Page",
    "Record",
    "RecordStatus",
    "Retention",
    "Role",
    "Schedule",
    "SecurityClass",
    "StoredCopy",
    "User",
    "VaultObject",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use UTC-aware times")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        when: dt.datetime = value
        if when.tzinfo is None:
            return when.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC)


class Role(StrEnum):
    """The office's roles: clerk (专员) enters, supervisor (主管) adjusts, director (总监)
    approves; auditors read and audit; admins manage users and keys, never content."""

    clerk = "clerk"
    supervisor = "supervisor"
    director = "director"
    auditor = "auditor"
    admin = "admin"


class SecurityClass(StrEnum):
    """``contract`` (合同类) records are visible to directors alone."""

    internal = "internal"
    contract = "contract"


class Retention(StrEnum):
    """Retention periods of the office: 永久, 30年, 10年."""

    permanent = "永久"
    years_30 = "30年"
    years_10 = "10年"

    @property
    def years(self) -> int | None:
        return {"永久": None, "30年": 30, "10年": 10}[self.value]


class RecordStatus(StrEnum):
    """A record is *archived* only with two verified copies."""

    pending = "pending"
    under_replicated = "under_replicated"
    processing = "processing"  # both copies are safe; OCR and indexing are still running
    archived = "archived"
    damaged = "damaged"  # a content object has no good copy left: restore it from a backup
    disposed = "disposed"


class Stage(StrEnum):
    """Where a record is in the intake pipeline (``api/services/pipeline.py``)."""

    queued = "queued"  # stored; waiting for its pages to be counted
    ocr = "ocr"  # pages being read
    assembling = "assembling"  # OCR text and the access copy being written
    indexing = "indexing"
    done = "done"


class PageState(StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"  # retried and given up: the page has no text; a person must look


class CopyState(StrEnum):
    ok = "ok"
    bad = "bad"
    missing = "missing"


class CheckResult(StrEnum):
    """What the last fixity check of a copy found (``stored_copies.check_result``)."""

    ok = "ok"
    bad = "bad"
    missing = "missing"
    unreachable = "unreachable"  # the store did not answer; the copy may be fine
    repaired = "repaired"  # bad or missing, then restored from the good copy and read back


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    dead = "dead"


# Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy's hook


# Enums are stored as plain strings: adding a member needs no database migration.


class BusinessType(Base):
    """A business type (业务类型) such as 新生入学: its retention and default security class."""

    __tablename__ = "business_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    retention: Mapped[str] = mapped_column(String(32))
    default_security_class: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CodeCounter(Base):
    """The last serial handed out for one year and business type."""

    __tablename__ = "code_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_type_id: Mapped[int] = mapped_column(ForeignKey("business_types.id"), primary_key=True)
    last_serial: Mapped[int] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Record(Base):
    """One archived document (案卷/文件), named by its archive code (档号)."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("year", "business_type_id", "serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_code: Mapped[str] = mapped_column(String(64), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    business_type_id: Mapped[int] = mapped_column(ForeignKey("business_types.id"))
    serial: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500), default="")
    student_no: Mapped[str | None] = mapped_column(String(32), index=True)
    student_name: Mapped[str | None] = mapped_column(String(64), index=True)
    student_class: Mapped[str | None] = mapped_column(String(64))  # 班级, e.g. 高三(2)班
    security_class: Mapped[str] = mapped_column(String(32), index=True)
    paper_location: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str] | None] = mapped_column(JSON)  # non-key labels; None: no tags
    notes: Mapped[str | None] = mapped_column(Text)  # non-key remarks (备注)
    status: Mapped[str] = mapped_column(String(32), index=True)
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(BigInteger)
    plaintext_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    upload_name: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    processed_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Page(Base):
    """One page of a record; its OCR text lives encrypted in the vault, named here by id."""

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("record_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    ocr_confidence: Mapped[float | None] = mapped_column()
    text_object_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    skew: Mapped[float | None] = mapped_column()
    engine: Mapped[str | None] = mapped_column(String(16))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(String(200))


class Verdict(StrEnum):
    """How one digitization check came out on a page (docs/quality.md)."""

    passed = "pass"
    warn = "warn"  # failed, and the record's business type only warns
    fail = "fail"  # failed, and the record's business type blocks: the record needs review
    unmeasured = "none"  # the file does not say (a born-digital PDF page has no scan dpi)


class PageCheck(Base):
    """One digitization quality finding on one page, with its measured figure."""

    __tablename__ = "page_checks"
    __table_args__ = (UniqueConstraint("page_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    name: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column()
    reading: Mapped[str | None] = mapped_column(String(32))
    threshold: Mapped[str] = mapped_column(String(32))


class ObjectRole(StrEnum):
    """What a vault object is to its record."""

    original = "original"  # the uploaded file
    sidecar = "sidecar"  # the record's catalog fields, for rebuilding
    ocr_page = "ocr_page"  # one page's OCR result, until the record's pages are assembled
    ocr_text = "ocr_text"  # every page's OCR result (JSON), the source of the index
    access_copy = "access_copy"  # a searchable PDF: page images with an invisible text layer
    evidence = "evidence"  # a file answering or closing a sampling audit's finding
    paperwork = "paperwork"  # a break-glass grant's paperwork (no record; catalog/breakglass.py)


class VaultObject(Base):
    """One encrypted object in the vault: its wrapped data key and plaintext fixity.

    Destroying ``wrapped_key`` (crypto-shredding) makes every copy of the object unreadable,
    wherever a copy may linger.
    """

    __tablename__ = "vault_objects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    # The digest of plaintext_sha256 and of its copies' ciphertext_sha256: ``sha256`` or
    # ``sm3``, the object's cipher suite's (docs/vault-format.md, "Cipher suites").
    plaintext_sha256: Mapped[str] = mapped_column(String(64))
    digest_algorithm: Mapped[str] = mapped_column(
        String(16), default="sha256", server_default="sha256"
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[dt.datetime | None] = mapped_column()
    # Set while no copy is good (never served; its record is ``damaged``), cleared on repair.
    damaged_at: Mapped[dt.datetime | None] = mapped_column()


class StoredCopy(Base):
    """One copy of one vault object in one store (``primary`` or ``replica``)."""

    __tablename__ = "stored_copies"
    __table_args__ = (UniqueConstraint("object_id", "store"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"), index=True)
    store: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    ciphertext_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    # The last fixity check, whatever it found (``CheckResult``); the cycle takes the oldest.
    checked_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    check_result: Mapped[str | None] = mapped_column(String(16))
    deep_checked_at: Mapped[dt.datetime | None] = mapped_column()


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit trail (see ``catalog/audit.py``)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(128), index=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What ``hash`` is taken with: ``sha256`` (every event before 0008) or ``sm3``.
    digest_algorithm: Mapped[str] = mapped_column(
        String(16), default="sha256", server_default="sha256"
    )


class Job(Base):
    """A durable job: claimed with a lease, retried with backoff, dead after N attempts."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "state", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


# Tables that live in their own modules, on the same Base (so migrations see them).
from catalog.change_models import (  # noqa: E402, F401 - change requests, aliases, decisions
    ChangeRequest,
    RecordAlias,
    RecordDecision,
)
from catalog.retention_models import DispositionProposal  # noqa: E402, F401 - retention tables
from catalog.review_models import RecordReview  # noqa: E402, F401 - the intake review table
from catalog.sampling_models import SamplingAudit  # noqa: E402, F401 - sampling audit tables
from catalog.schedule_models import Schedule  # noqa: E402 - after Base, which it uses
