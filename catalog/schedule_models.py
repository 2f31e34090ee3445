"""The scheduler's table: one row per periodic job, what it last enqueued and when it runs next.

Which schedules exist (kind, interval, payload) is declared in code, not here: this table only
remembers their runs, so a schedule removed from the code leaves a row nobody ticks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, utcnow

__all__ = ["Schedule"]


class Schedule(Base):
    """One periodic job's runs: the due slot last enqueued, its job, the next due time."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    last_slot_at: Mapped[dt.datetime | None] = mapped_column()
    last_job_id: Mapped[int | None] = mapped_column(Integer)
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    # What the last run reported (counts only, never record text), e.g. a fixity cycle's tally.
    last_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
