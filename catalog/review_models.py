"""The intake review's table: where each record stands on its way to being accepted (归档).

A record passes the gates its business type needs, in this order: 材料初审 (``intake_check``)
and 信息录入 (``data_entry``) by the clerk who entered it, 系统校验 (``system_check``) by the
system, and 复核 (``final_review``) by a supervisor or director (docs/review.md). This is
beside :class:`~catalog.models.RecordStatus`, never instead of it: ``archived`` still means
two verified copies, and a record can be archived and not yet accepted.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, utcnow

__all__ = ["CLERK_GATES", "RecordReview", "ReviewGate", "ReviewState"]


class ReviewGate(StrEnum):
    """The gates, in the order a record meets them."""

    intake_check = "intake_check"  # 材料初审: the materials are complete and legible
    data_entry = "data_entry"  # 信息录入: the catalog fields are entered
    system_check = "system_check"  # 系统校验: the automatic checks
    final_review = "final_review"  # 复核: a supervisor's or director's review


CLERK_GATES = frozenset({ReviewGate.intake_check, ReviewGate.data_entry})


class ReviewState(StrEnum):
    open = "open"  # waiting at ``gate``
    returned = "returned"  # sent back to its clerk from ``gate``, with a reason
    accepted = "accepted"  # every gate passed: the record is accepted (归档)


class RecordReview(Base):
    """One record's review: the gates it needs, the one it is at, and the last decision."""

    __tablename__ = "record_reviews"

    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), primary_key=True)
    # The gates this record needs, comma-separated in gate order; fixed when it is entered.
    gates: Mapped[str] = mapped_column(String(100))
    # Open: the gate waiting; returned: the gate that sent it back; accepted: none.
    gate: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    reason: Mapped[str | None] = mapped_column(String(500))
    # The last system check's findings: rules, outcomes and figures, never record text.
    findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
