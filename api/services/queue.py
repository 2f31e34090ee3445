"""The job queue as one person may see it: jobs, each naming its record only when the person
may see that record.

A job about a record hidden from the person (a contract's OCR, say) is left out altogether, so
the queue never hints that such a record exists; a job about a record whose metadata the person
may not read (an admin's view) is shown without its archive code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.services.access import require_action
from api.services.runtime import Runtime
from catalog import (
    Action,
    JobInfo,
    JobState,
    RecordInfo,
    UserInfo,
    get_object,
    get_record,
    get_record_by_id,
    is_allowed,
    list_jobs,
    visible_classes,
)
from dangan.errors import NotFoundError

__all__ = ["JobView", "jobs_for"]


@dataclass(frozen=True)
class JobView:
    job: JobInfo
    archive_code: str | None


def _record_of(session: Any, job: JobInfo) -> RecordInfo | None:
    payload = job.payload
    try:
        if isinstance(payload.get("archive_code"), str):
            return get_record(session, payload["archive_code"])
        if isinstance(payload.get("object_id"), str):
            obj = get_object(session, payload["object_id"])
            if obj.record_id is not None:
                return get_record_by_id(session, obj.record_id)
    except NotFoundError:
        return None
    return None


def jobs_for(
    rt: Runtime, user: UserInfo, *, state: JobState | None = None, limit: int = 100
) -> list[JobView]:
    """The newest jobs ``user`` may see, newest first.

    :raises PermissionDeniedError: ``user`` may not read jobs (audited).
    """
    require_action(rt, user, Action.job_read)
    visible = visible_classes(user)
    views: list[JobView] = []
    with rt.db.read() as session:
        for job in list_jobs(session, state=state, limit=limit):
            record = _record_of(session, job)
            if record is None:
                views.append(JobView(job, None))
                continue
            if record.security_class not in visible:
                continue
            shown = is_allowed(user, Action.record_read_metadata, record.security_class)
            views.append(JobView(job, record.archive_code if shown else None))
    return views
