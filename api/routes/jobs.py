"""``/api/v1/jobs``: the intake queue and job status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, RuntimeDep
from api.schemas import JobOut, JobsPage, ScheduleOut
from api.services.queue import jobs_for
from api.services.schedule import schedule_for
from catalog import JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("")
def list_jobs(
    rt: RuntimeDep,
    user: CurrentUser,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JobsPage:
    """The newest jobs, newest first (``job.read``); jobs about records hidden from you are
    left out, and a record is named only when you may read its metadata."""
    views = jobs_for(rt, user, state=state, limit=limit)
    return JobsPage(jobs=[JobOut.of(v.job, v.archive_code) for v in views])


@router.get("/schedule")
def list_schedule(rt: RuntimeDep, user: CurrentUser) -> list[ScheduleOut]:
    """The periodic jobs (``job.read``): each one's last run, its outcome and its next run."""
    return [ScheduleOut.of(s) for s in schedule_for(rt, user)]
