"""The tables of corrections to key fields and of status-change decisions (issue #7):
change requests, the former codes a renamed record keeps as aliases, and the approval chain
a 学籍变更 (转学/休学/复学…) decision record carries.

Only ``catalog`` sees these classes (``catalog/changes.py``, ``catalog/decisions.py``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, utcnow

__all__ = [
    "ChangeRequest",
    "ChangeState",
    "DecisionOutcome",
    "RecordAlias",
    "RecordDecision",
]


class ChangeState(StrEnum):
    """Where a change request stands."""

    open = "open"  # waiting for a director
    approved = "approved"  # applied to the record
    rejected = "rejected"  # a director refused it
    stale = "stale"  # the record's key fields changed after it was filed: it can no longer apply


class DecisionOutcome(StrEnum):
    """What a status-change decision (学籍变更决定) decided on its application."""

    approved = "approved"
    rejected = "rejected"


class ChangeRequest(Base):
    """A request to change a record's key fields, for a director to approve or reject.

    ``base`` holds the record's key fields as they stood when the request was filed: approving
    a request whose record no longer reads so is refused (the request goes ``stale``).
    """

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    code_at_filing: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    filed_by: Mapped[str] = mapped_column(String(64))
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    result_code: Mapped[str | None] = mapped_column(String(64))  # the code once approved


class RecordAlias(Base):
    """A code a record was known by before a key change renamed it: it still resolves to the
    record, is never handed out again, and keeps its serial counted as held."""

    __tablename__ = "record_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_code: Mapped[str] = mapped_column(String(64), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    business_type_id: Mapped[int] = mapped_column(ForeignKey("business_types.id"))
    serial: Mapped[int] = mapped_column(Integer)
    change_request_id: Mapped[int | None] = mapped_column(ForeignKey("change_requests.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RecordDecision(Base):
    """The approval chain of a status-change decision record (学籍变更/转学/休学/复学): the
    application it decides (another record, or pages of the same one), who approved it,
    when, and what was decided."""

    __tablename__ = "record_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), unique=True)
    # None: the application is in the decision record itself (``application_pages``).
    application_record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    application_pages: Mapped[str | None] = mapped_column(String(32))  # e.g. "1-2" or "1,3"
    approver: Mapped[str] = mapped_column(String(100))
    approver_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    decision: Mapped[str] = mapped_column(String(16))
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
