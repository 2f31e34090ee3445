"""The quarterly sampling audit's tables: a quarter's draw, its sampled items with their
automatic and manual results, findings, and the evidence that answers and closes them
(``docs/sampling.md``).

Only ``catalog`` sees these classes; the functions in ``catalog/sampling.py`` and
``catalog/findings.py`` return frozen dataclasses. Evidence files live encrypted in the vault
(an object of the record, role ``evidence``); a row here names the object by id only.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, utcnow

__all__ = [
    "FindingSeverity",
    "FindingState",
    "SamplingAudit",
    "SamplingEvidence",
    "SamplingFinding",
    "SamplingItem",
]


class FindingSeverity(StrEnum):
    """How bad a finding is: it orders the report; the deadline is the same 7 days for all."""

    minor = "minor"  # 一般
    major = "major"  # 严重
    critical = "critical"  # 重大


class FindingState(StrEnum):
    open = "open"  # filed; waiting for its owner
    answered = "answered"  # the owner answered with a fix (and evidence); waiting for closure
    closed = "closed"  # closed with evidence by a director or an auditor


class SamplingAudit(Base):
    """One quarter's draw: what fixed the sample (seed, trail head) and its size."""

    __tablename__ = "sampling_audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quarter: Mapped[str] = mapped_column(String(8), unique=True)  # 2026Q3
    seed: Mapped[str] = mapped_column(String(64))
    head_id: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    population: Mapped[int] = mapped_column(Integer)
    sample_size: Mapped[int] = mapped_column(Integer)
    defect_rate: Mapped[float] = mapped_column(Float)  # the rate the rule must show (0.05)
    confidence: Mapped[float] = mapped_column(Float)  # with this confidence (0.95)
    drawn_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    drawn_by: Mapped[str] = mapped_column(String(64))


class SamplingItem(Base):
    """One sampled record: its stratum, its automatic results, and its manual checklist."""

    __tablename__ = "sampling_items"
    __table_args__ = (UniqueConstraint("audit_id", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("sampling_audits.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order of the draw, from 1
    business_type: Mapped[str] = mapped_column(String(32))  # the stratum, as drawn
    clerk: Mapped[str] = mapped_column(String(64))
    auto_outcome: Mapped[str] = mapped_column(String(8))  # pass / warn / fail
    auto_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    manual: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # question → true / false
    manual_note: Mapped[str | None] = mapped_column(Text)
    manual_by: Mapped[str | None] = mapped_column(String(64))
    manual_at: Mapped[dt.datetime | None] = mapped_column()


class SamplingFinding(Base):
    """A problem found in a sampled record: its owner fixes it within the deadline."""

    __tablename__ = "sampling_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("sampling_items.id"), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    reminded_at: Mapped[dt.datetime | None] = mapped_column()


class SamplingEvidence(Base):
    """What answers or closes a finding: a note, a file in the vault, or both."""

    __tablename__ = "sampling_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("sampling_findings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "answer" or "close"
    note: Mapped[str] = mapped_column(Text, default="")
    object_id: Mapped[str | None] = mapped_column(ForeignKey("vault_objects.id"))
    file_name: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
