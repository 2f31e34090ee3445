"""The retention tables: schedules' triggers, students' graduation years, legal holds,
disposition proposals and destruction certificates (``docs/retention.md``).

A business type's retention period stays where it always was (``business_types.retention``);
this module adds what it is counted from. Only ``catalog`` sees these classes.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, utcnow

__all__ = [
    "DestructionCertificate",
    "DispositionProposal",
    "HoldScope",
    "LegalHold",
    "ProposalState",
    "RetentionSchedule",
    "RetentionTrigger",
    "StudentGraduation",
]


class RetentionTrigger(StrEnum):
    """What a retention period is counted from."""

    record_date = "record_date"  # the record's year (the 年份 of its archive code)
    graduation = "graduation"  # the year the student graduated


class HoldScope(StrEnum):
    """What a legal hold covers."""

    record = "record"
    student = "student"
    business_type = "type"
    years = "years"


class ProposalState(StrEnum):
    open = "open"  # waiting for a director
    approved = "approved"  # approved; its disposal is being carried out
    disposed = "disposed"  # content destroyed; named by a certificate
    rejected = "rejected"  # a director decided to keep the record
    withdrawn = "withdrawn"  # a legal hold came first


class RetentionSchedule(Base):
    """A business type's trigger, when it differs from the office's default for that type."""

    __tablename__ = "retention_schedules"

    business_type_id: Mapped[int] = mapped_column(ForeignKey("business_types.id"), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StudentGraduation(Base):
    """The year a student graduated (毕业年份): the start of periods counted from graduation."""

    __tablename__ = "student_graduations"

    student_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    graduation_year: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LegalHold(Base):
    """A legal hold: while unreleased, no record it covers is proposed or disposed."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    student_no: Mapped[str | None] = mapped_column(String(32))
    business_type_id: Mapped[int | None] = mapped_column(ForeignKey("business_types.id"))
    year_from: Mapped[int | None] = mapped_column(Integer)
    year_to: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    release_reason: Mapped[str | None] = mapped_column(String(500))


class DispositionProposal(Base):
    """A record proposed for disposal, and what a director decided.

    ``open_record_id`` is the record's id while the proposal is open and NULL after: its
    unique constraint is what keeps a record to at most one open proposal, on both databases.
    """

    __tablename__ = "disposition_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    open_record_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    retention: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))
    trigger_year: Mapped[int] = mapped_column(Integer)
    due_year: Mapped[int] = mapped_column(Integer)  # the first year it may be disposed of
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    disposed_at: Mapped[dt.datetime | None] = mapped_column()
    certificate_id: Mapped[str | None] = mapped_column(
        ForeignKey("destruction_certificates.id"), index=True
    )


class DestructionCertificate(Base):
    """A signed destruction certificate (销毁证明), kept as issued: its signed JSON."""

    __tablename__ = "destruction_certificates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issued_at: Mapped[dt.datetime] = mapped_column()
    issued_by: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
