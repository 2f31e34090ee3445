"""Running queued jobs: claim one, keep its lease alive while the handler runs, then complete
or fail it; and the loop a worker process spends its life in.

The queue itself (what a claim, a lease and a retry mean) is ``catalog/jobs.py``; this module
only drives it. Nothing here catches an error and forgets it: a handler's error becomes the
job's failed attempt, and an interruption (Ctrl-C, a stopping process) hands the job back.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

from catalog.db import Database
from catalog.jobs import (
    JobContext,
    JobInfo,
    complete,
    fail,
    get_job,
    handler_for,
    heartbeat,
    registered_kinds,
    release,
)
from catalog.jobs import claim as claim_job
from dangan.errors import ConflictError, DanganError, StoreUnavailableError

__all__ = ["StopSignal", "run_one", "run_worker"]

log = logging.getLogger(__name__)


class _Heartbeat:
    """A thread that extends a lease every third of its length until stopped.

    When the lease turns out to be someone else's it sets ``lost`` and stops: the handler sees
    it through :meth:`JobContext.ensure_lease`, and the result is thrown away.
    """

    def __init__(
        self, db: Database, job_id: int, worker_id: str, lease_seconds: float, lost: threading.Event
    ) -> None:
        self._args = (db, job_id, worker_id, lease_seconds)
        self._lost = lost
        self._done = threading.Event()
        self._interval = max(lease_seconds / 3.0, 0.05)
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-job-{job_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        db, job_id, worker_id, lease_seconds = self._args
        while not self._done.wait(self._interval):
            try:
                heartbeat(db, job_id, worker_id, lease_seconds)
            except ConflictError:
                log.warning(
                    "lost the lease of a running job",
                    extra={"event": "job.lease_lost", "job_id": job_id},
                )
                self._lost.set()
                return
            except DanganError:
                # The database is away for a moment: keep trying while the lease lasts.
                log.warning(
                    "could not extend a lease",
                    exc_info=True,
                    extra={"event": "job.heartbeat_failed", "job_id": job_id},
                )


def run_one(
    db: Database,
    worker_id: str,
    services: Any = None,
    *,
    lease_seconds: float,
    kinds: Collection[str] | None = None,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> JobInfo | None:
    """Claim one job, run its handler and record the outcome.

    :param services: handed to handlers as ``ctx.services``.
    :param kinds: which kinds to take; default: every kind registered in this process.
    :param now: the time of the claim and of a failure (tests pass it; leases then start there).
    :returns: the job as it stands afterwards, or ``None`` when nothing was runnable.
    :raises KeyboardInterrupt: (and other non-``Exception`` interruptions) after handing the
        job back with :func:`catalog.jobs.release`.
    """
    job = claim_job(
        db,
        worker_id,
        lease_seconds=lease_seconds,
        kinds=registered_kinds() if kinds is None else kinds,
        now=now,
    )
    if job is None:
        return None
    started = time.monotonic()
    extra = {"job_id": job.id, "event": "job.start"}
    log.info("running job", extra=extra)
    ctx = JobContext(db=db, worker_id=worker_id, job=job, services=services)
    try:
        with _Heartbeat(db, job.id, worker_id, lease_seconds, ctx.lease_lost):
            handler = handler_for(job.kind)
            handler.fn(ctx, handler.parse(job.payload))
            ctx.ensure_lease()
    except Exception as exc:  # noqa: BLE001 - the attempt's failure: logged and recorded below
        if isinstance(exc, ConflictError) and ctx.lease_lost.is_set():
            return _lease_lost(db, job)
        return _failed(db, job, worker_id, exc, _is_permanent(job, exc), now=now, rng=rng)
    except BaseException:
        _hand_back(db, job, worker_id)
        raise
    try:
        done = complete(db, job.id, worker_id)
    except ConflictError:
        return _lease_lost(db, job)
    log.info(
        "job done",
        extra={
            "event": "job.done",
            "job_id": job.id,
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return done


def _is_permanent(job: JobInfo, exc: Exception) -> bool:
    try:
        return handler_for(job.kind).is_permanent(exc)
    except DanganError:
        return True  # no handler for this kind: running it again cannot help


def _failed(
    db: Database,
    job: JobInfo,
    worker_id: str,
    exc: Exception,
    permanent: bool,
    *,
    now: dt.datetime | None,
    rng: random.Random | None,
) -> JobInfo:
    log.warning(
        "job attempt failed",
        exc_info=not isinstance(exc, DanganError),
        extra={"event": "job.failed", "job_id": job.id},
    )
    try:
        return fail(db, job.id, worker_id, exc, now=now, rng=rng, permanent=permanent)
    except ConflictError:
        return _lease_lost(db, job)


def _lease_lost(db: Database, job: JobInfo) -> JobInfo:
    log.warning(
        "the lease was lost; the result of this attempt is dropped",
        extra={"event": "job.lease_lost", "job_id": job.id},
    )
    with db.read() as session:
        return get_job(session, job.id)


def _hand_back(db: Database, job: JobInfo, worker_id: str) -> None:
    try:
        release(db, job.id, worker_id)
    except DanganError:
        # Lost already, or the database is away: the lease runs out and the job is claimed
        # again, which is the crash path every job survives anyway.
        log.warning(
            "could not hand an interrupted job back",
            exc_info=True,
            extra={"event": "job.release_failed", "job_id": job.id},
        )


def _tick(tick: Callable[[], object]) -> None:
    try:
        tick()
    except DanganError:
        # The catalog away for a moment, or a schedule that cannot be queued: the worker's jobs
        # go on, and the next poll ticks again.
        log.warning("scheduler tick failed", exc_info=True, extra={"event": "worker.tick_failed"})


class StopSignal(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` one: set it to stop a worker."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def run_worker(
    db: Database,
    worker_id: str,
    stop: StopSignal,
    services: Any = None,
    *,
    lease_seconds: float,
    poll_seconds: float,
    kinds: Collection[str] | None = None,
    once: bool = False,
    tick: Callable[[], object] | None = None,
) -> int:
    """Run jobs until ``stop`` is set, waiting ``poll_seconds`` whenever the queue is idle.

    The job in hand is always finished before ``stop`` is looked at. While the database cannot
    be reached the worker waits and tries again (a worker is a daemon; it outlives an outage).

    :param once: return as soon as nothing is runnable instead of waiting for more.
    :param tick: called at most once a poll, between jobs (the scheduler enqueues what is due);
        a dangan error it raises is logged and the next poll tries again.
    :returns: how many jobs this worker ran (done, retried or dead).
    :raises StoreUnavailableError: only with ``once``.
    """
    ran = 0
    last_tick: float | None = None
    while not stop.is_set():
        if tick is not None and (last_tick is None or time.monotonic() - last_tick >= poll_seconds):
            last_tick = time.monotonic()
            _tick(tick)
        try:
            job = run_one(db, worker_id, services, lease_seconds=lease_seconds, kinds=kinds)
        except StoreUnavailableError:
            if once:
                raise
            log.warning(
                "the catalog cannot be reached; waiting", extra={"event": "worker.db_unavailable"}
            )
            stop.wait(poll_seconds)
            continue
        if job is not None:
            ran += 1
            continue
        if once:
            break
        stop.wait(poll_seconds)
    return ran
