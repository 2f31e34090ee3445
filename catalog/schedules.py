"""Periodic jobs: enqueue each schedule's run once per due slot, and show what they did.

Which schedules exist is declared by the entry point (``api/services/schedule.py``) as a list
of :class:`ScheduleSpec`; this module only runs that list against the queue. Time is cut into
slots of each schedule's interval (counted from :data:`EPOCH`); a schedule is due once its
current slot is later than the last one it enqueued. The run goes into the durable queue like
any job, so the worker that claims it, its retries and its audit event are the queue's.

Never twice at once, however many workers tick together: each slot's job has the idempotency
key ``schedule:<name>:<slot>`` (a second enqueue returns the first job), the schedule's row is
locked while it is updated (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), and a slot
is skipped while a job of the schedule's kind is still queued or running (a slow fixity walk,
a backup being retried). What this module must never do: run a job itself, or hold anything
of a record's content (payloads are ids and small counts).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.db import Database
from catalog.jobs import JobInfo, enqueue
from catalog.models import Job, JobState, utcnow
from catalog.schedule_models import Schedule

__all__ = [
    "EPOCH",
    "SCHEDULER_ACTOR",
    "ScheduleSpec",
    "ScheduleState",
    "report_schedule_run",
    "schedule_states",
    "slot_of",
    "tick_schedules",
]

log = logging.getLogger(__name__)

#: Slots are counted from here, so a daily schedule's slots start at 00:00 UTC.
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
SCHEDULER_ACTOR = "scheduler"
_ACTIVE = (JobState.queued.value, JobState.running.value)


@dataclass(frozen=True)
class ScheduleSpec:
    """One periodic job: its name, the job kind it enqueues, how often, with what payload.

    :ivar priority: the queue's priority (lower runs first; intake's jobs have 100), so a
        periodic walk never starves intake.
    """

    name: str
    kind: str
    interval: dt.timedelta
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 100
    description: str = ""

    def __post_init__(self) -> None:
        if self.interval < dt.timedelta(minutes=1):
            raise ValueError(f"schedule {self.name}: an interval of at least a minute")


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule did last and when it runs next, for ``dangan jobs schedule`` and the
    dashboard. ``outcome`` is the state of the newest job of its kind (``never`` before the
    first), ``runnable`` whether a handler for its kind is known to the process asking."""

    name: str
    kind: str
    interval: dt.timedelta
    description: str
    runnable: bool
    last_run_at: dt.datetime | None
    last_job_id: int | None
    outcome: str
    last_error: str | None
    finished_at: dt.datetime | None
    next_run_at: dt.datetime
    summary: Mapping[str, Any] | None


def slot_of(spec: ScheduleSpec, now: dt.datetime) -> dt.datetime:
    """The start of the slot ``now`` falls in."""
    return EPOCH + spec.interval * ((now - EPOCH) // spec.interval)


def _is_due(last_slot_at: dt.datetime | None, spec: ScheduleSpec, now: dt.datetime) -> bool:
    return last_slot_at is None or slot_of(spec, now) > last_slot_at


def _ensure_row(session: Session, spec: ScheduleSpec, now: dt.datetime) -> Schedule:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Schedule)
        .values(name=spec.name, kind=spec.kind, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    stmt = select(Schedule).where(Schedule.name == spec.name)
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _is_busy(session: Session, kind: str) -> bool:
    busy = session.scalar(
        select(func.count()).where(Job.kind == kind, Job.state.in_(_ACTIVE)).limit(1)
    )
    return bool(busy)


def tick_schedules(
    db: Database,
    specs: Sequence[ScheduleSpec],
    *,
    runnable: Collection[str] | None = None,
    max_attempts: int | None = None,
    now: dt.datetime | None = None,
) -> list[JobInfo]:
    """Enqueue every due schedule's run: cheap when nothing is due (one read).

    :param runnable: the kinds this worker has handlers for; a schedule of another kind is not
        enqueued (its owner's worker does it), so a kind nobody runs never piles up.
    :param max_attempts: the retry budget of the jobs (``worker.max_attempts``).
    :returns: the jobs enqueued by this call (none when another worker got there first).
    """
    now = now or utcnow()
    wanted = [s for s in specs if runnable is None or s.kind in runnable]
    if not wanted:
        return []
    with db.read() as session:
        last = {
            name: at for name, at in session.execute(select(Schedule.name, Schedule.last_slot_at))
        }
    due = [s for s in wanted if _is_due(last.get(s.name), s, now)]
    if not due:
        return []
    queued: list[JobInfo] = []
    with db.write() as session:
        for spec in due:
            row = _ensure_row(session, spec, now)
            slot = slot_of(spec, now)
            if not _is_due(row.last_slot_at, spec, now):
                continue  # another worker took this slot meanwhile
            row.kind = spec.kind
            row.last_slot_at = slot
            row.next_run_at = slot + spec.interval
            row.updated_at = now
            if _is_busy(session, spec.kind):
                log.info(
                    "scheduled run skipped: the last one is still going",
                    extra={"event": "schedule.skip", "schedule": spec.name},
                )
                continue
            job = enqueue(
                session,
                spec.kind,
                spec.payload,
                idempotency_key=f"schedule:{spec.name}:{slot.isoformat()}",
                actor=SCHEDULER_ACTOR,
                max_attempts=max_attempts,
                priority=spec.priority,
            )
            row.last_job_id = job.id
            queued.append(job)
            log.info(
                "scheduled run queued",
                extra={"event": "schedule.enqueue", "schedule": spec.name, "job_id": job.id},
            )
    return queued


def report_schedule_run(session: Session, kind: str, summary: Mapping[str, Any]) -> None:
    """Keep what a run of ``kind`` found (small counts) for the schedule's view."""
    session.execute(
        update(Schedule)
        .where(Schedule.kind == kind)
        .values(last_summary=dict(summary), updated_at=utcnow())
    )


def schedule_states(
    session: Session,
    specs: Sequence[ScheduleSpec],
    *,
    runnable: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> list[ScheduleState]:
    """Each declared schedule with its last run (the newest job of its kind) and next run."""
    now = now or utcnow()
    rows = {r.name: r for r in session.scalars(select(Schedule))}
    states = []
    for spec in specs:
        row = rows.get(spec.name)
        job = session.scalars(
            select(Job).where(Job.kind == spec.kind).order_by(Job.id.desc()).limit(1)
        ).first()
        next_run = row.next_run_at if row is not None and row.next_run_at else None
        states.append(
            ScheduleState(
                name=spec.name,
                kind=spec.kind,
                interval=spec.interval,
                description=spec.description,
                runnable=runnable is None or spec.kind in runnable,
                last_run_at=job.created_at if job else None,
                last_job_id=job.id if job else None,
                outcome=JobState(job.state).value if job else "never",
                last_error=job.last_error if job else None,
                finished_at=job.finished_at if job else None,
                next_run_at=next_run if next_run is not None and next_run > now else now,
                summary=dict(row.last_summary) if row is not None and row.last_summary else None,
            )
        )
    return states
