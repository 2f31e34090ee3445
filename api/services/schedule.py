"""The periodic jobs, declared in this one place: name, job kind, interval, payload, priority.

The workers enqueue each when it is due (:func:`tick`, called by every worker between jobs;
``catalog/schedules.py`` makes sure a slot runs once however many tick), and the queue runs
them like any job. A schedule whose kind has no handler in a worker is not enqueued by it, so
a part that is not installed leaves its schedule waiting (``dangan jobs schedule`` shows
``no handler``) rather than piling up jobs nobody runs.
"""

from __future__ import annotations

import datetime as dt

from api.services.access import require_action
from api.services.fixity_cycle import FIXITY_CYCLE, FIXITY_PRIORITY
from api.services.fourprop import CHECK_ARCHIVE, CHECK_PRIORITY
from api.services.replication import REPLICATION_INTERVAL, REPLICATION_PRIORITY, REPLICATION_RUN
from api.services.runtime import Runtime
from api.services.sampling import REMIND_PRIORITY, SAMPLING_REMIND
from catalog import (
    Action,
    JobInfo,
    ScheduleSpec,
    ScheduleState,
    UserInfo,
    registered_kinds,
    schedule_states,
    tick_schedules,
)
from dangan.config import Settings

__all__ = [
    "BACKUP_CATALOG",
    "RETENTION_SCAN",
    "declared_schedules",
    "schedule_for",
    "states",
    "tick",
]

# Kinds whose handlers live in retention/ and backup/ (registered when those are imported).
RETENTION_SCAN = "retention.scan"
BACKUP_CATALOG = "backup.catalog"
DAY = dt.timedelta(days=1)


def declared_schedules(settings: Settings) -> list[ScheduleSpec]:
    """Every periodic job, in the order the views list them."""
    return [
        ScheduleSpec(
            "fixity",
            FIXITY_CYCLE,
            dt.timedelta(minutes=settings.fixity.interval_minutes),
            priority=FIXITY_PRIORITY,
            description="check a share of the copies, oldest-checked first; repair",
        ),
        ScheduleSpec(
            "replication",
            REPLICATION_RUN,
            REPLICATION_INTERVAL,
            priority=REPLICATION_PRIORITY,
            description="write copies a store missed from the good one",
        ),
        ScheduleSpec(
            "retention",
            RETENTION_SCAN,
            DAY,
            priority=300,
            description="find records due for disposition; check holds and deadlines",
        ),
        ScheduleSpec(
            "four-property",
            CHECK_ARCHIVE,
            dt.timedelta(days=settings.check.interval_days),
            priority=CHECK_PRIORITY,
            description="the four-property check of every record and the archive; keep its report",
        ),
        ScheduleSpec(
            "sampling-reminders",
            SAMPLING_REMIND,
            DAY,
            priority=REMIND_PRIORITY,
            description="remind owners of sampling findings due within 2 days or overdue",
        ),
        ScheduleSpec(
            "catalog-backup",
            BACKUP_CATALOG,
            DAY,
            priority=300,
            description="snapshot the catalog into both stores",
        ),
    ]


def tick(rt: Runtime, *, now: dt.datetime | None = None) -> list[JobInfo]:
    """Enqueue what is due among the schedules this process can run."""
    return tick_schedules(
        rt.db,
        declared_schedules(rt.settings),
        runnable=registered_kinds(),
        max_attempts=rt.settings.worker.max_attempts,
        now=now,
    )


def states(rt: Runtime, *, now: dt.datetime | None = None) -> list[ScheduleState]:
    """Each schedule's last run, outcome and next run."""
    with rt.db.read() as session:
        return schedule_states(
            session, declared_schedules(rt.settings), runnable=registered_kinds(), now=now
        )


def schedule_for(
    rt: Runtime, user: UserInfo, *, now: dt.datetime | None = None
) -> list[ScheduleState]:
    """:func:`states` for a person (``job.read``); it names no record.

    :raises PermissionDeniedError: ``user`` may not read jobs (audited).
    """
    require_action(rt, user, Action.job_read)
    return states(rt, now=now)
