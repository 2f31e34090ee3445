"""The durable job queue: enqueue with an idempotency key, claim with a lease, heartbeat,
retry with backoff, dead-letter. The only place the queue lives.

A job's life::

    enqueue ──▶ queued ──claim──▶ running ──complete──▶ done      (audit: job.done)
                  ▲                  │ │
                  └──fail (backoff)──┘ └──fail, last attempt──▶ dead  (audit: job.dead)
                  ▲                                               │
                  └──────────── retry_dead (an operator) ◀────────┘  (audit: job.requeue)

A worker that dies leaves its job ``running`` with a lease that runs out; :func:`claim` takes
such a job again, so a job runs *at least* once and its handler must be idempotent (look
before acting; results are upserts keyed by ids). Claiming is safe under concurrent workers:
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write transaction
(``BEGIN IMMEDIATE``) holds the database lock from the select to the update.

Never store content in a job: a payload is a small JSON dict of ids, and an error is kept as
one short line (see :func:`describe_error`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.db import Database
from catalog.models import Job, JobState, utcnow
from dangan.errors import ConflictError, DanganError, InvalidInputError, NotFoundError

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "Handler",
    "JobContext",
    "JobInfo",
    "backoff_delay",
    "claim",
    "complete",
    "describe_error",
    "enqueue",
    "fail",
    "get_job",
    "handler_for",
    "heartbeat",
    "job_counts",
    "list_jobs",
    "register",
    "registered_kinds",
    "release",
    "retry_dead",
]

log = logging.getLogger(__name__)

# Retry n waits min(cap, base * 2**(n-1)) seconds, less up to a quarter at random (jitter),
# so workers that failed together do not retry together: 15 s, 30 s, 1 min, 2 min ... 1 h.
BACKOFF_BASE_SECONDS = 15.0
BACKOFF_CAP_SECONDS = 3600.0
BACKOFF_JITTER = 0.25
# As ``worker.max_attempts`` defaults to; callers that hold the settings pass theirs.
DEFAULT_MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 300
MAX_PAYLOAD_CHARS = 2000
_jitter_rng = random.Random()  # noqa: S311 - jitter spreads retries; it guards no secret


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    run_after: dt.datetime
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def target(self) -> str:
        """How the audit trail names this job."""
        return f"job:{self.id}"


def _info(job: Job) -> JobInfo:
    return JobInfo(
        id=job.id,
        kind=job.kind,
        payload=dict(job.payload),
        idempotency_key=job.idempotency_key,
        state=JobState(job.state),
        priority=job.priority,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        run_after=job.run_after,
        lease_owner=job.lease_owner,
        lease_expires_at=job.lease_expires_at,
        last_error=job.last_error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def _worker_actor(worker_id: str) -> str:
    return f"worker:{worker_id}"[:64]


def describe_error(error: BaseException | str) -> str:
    """The one line kept as a job's ``last_error``: the error's type and a safe message.

    Only dangan's own errors carry messages that are safe to keep (they never hold record
    text); any other exception is named by its type alone, its text goes to the worker's log.
    """
    if isinstance(error, str):
        text = error
    elif isinstance(error, DanganError):
        text = f"{type(error).__name__}: {error.message}"
    else:
        text = f"{type(error).__name__} (details in the worker log)"
    line = " ".join(text.split())
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 1] + "…"
    return line


def backoff_delay(attempts: int, rng: random.Random | None = None) -> dt.timedelta:
    """How long a job waits after its ``attempts``-th failed attempt (1 = the first).

    ``min(cap, base * 2**(attempts-1))`` scaled by a random factor in [0.75, 1]: never more
    than the cap, never less than three quarters of the schedule.

    :param rng: the source of jitter; pass a seeded ``random.Random`` for a repeatable schedule.
    """
    raw = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(attempts - 1, 0))
    factor = (rng or _jitter_rng).uniform(1.0 - BACKOFF_JITTER, 1.0)
    return dt.timedelta(seconds=raw * factor)


S = TypeVar("S")
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class JobContext(Generic[S]):
    """What a handler is given besides its payload.

    :ivar services: what the entry point hands every handler (``api`` passes its runtime:
        settings, vault); the queue never looks inside.
    :ivar lease_lost: set when a heartbeat finds the lease taken by another worker.
    """

    db: Database
    worker_id: str
    job: JobInfo
    services: S
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def ensure_lease(self) -> None:
        """Long handlers call this between steps: another worker may have taken the job.

        :raises ConflictError: the lease was lost; stop without finishing.
        """
        if self.lease_lost.is_set():
            raise ConflictError(f"job {self.job.id} is no longer leased to this worker")


HandlerFn = Callable[[JobContext[Any], P], None]


@dataclass(frozen=True)
class Handler:
    """A registered kind: its payload model, its function, and the errors that are final."""

    kind: str
    payload_model: type[BaseModel]
    fn: Callable[[JobContext[Any], Any], None]
    permanent: tuple[type[Exception], ...] = ()

    def parse(self, payload: Mapping[str, Any]) -> BaseModel:
        """:raises InvalidInputError: the payload does not fit the model (a permanent error)."""
        try:
            return self.payload_model.model_validate(payload)
        except ValidationError as exc:
            # Field names and the rule broken, never the values given.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise InvalidInputError(f"invalid {self.kind} payload: {problems}") from None

    def is_permanent(self, error: Exception) -> bool:
        """Bad input never gets better by trying again; a handler may name more such errors."""
        return isinstance(error, (InvalidInputError, *self.permanent))


_HANDLERS: dict[str, Handler] = {}


def register(
    kind: str, payload_model: type[P], *, permanent: tuple[type[Exception], ...] = ()
) -> Callable[[HandlerFn[P]], HandlerFn[P]]:
    """Register the decorated function as the handler of ``kind``.

    The function gets a :class:`JobContext` and the payload validated into ``payload_model``;
    it returns nothing and raises to fail the attempt. It must be small, idempotent and
    resumable (STYLE.md, "Jobs").

    :param kind: a stable dotted name stored in the queue, e.g. ``audit.verify``.
    :param permanent: errors that make the job dead at once instead of retried
        (``InvalidInputError``, an invalid payload included, always does).
    :raises ValueError: another function is registered under ``kind`` already.
    """

    def decorate(fn: HandlerFn[P]) -> HandlerFn[P]:
        old = _HANDLERS.get(kind)
        if old is not None and _name_of(old.fn) != _name_of(fn):
            raise ValueError(f"job kind {kind!r} is registered twice: {_name_of(old.fn)}")
        _HANDLERS[kind] = Handler(kind, payload_model, fn, permanent)
        return fn

    return decorate


def _name_of(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def handler_for(kind: str) -> Handler:
    """:raises NotFoundError: no handler for ``kind`` is registered in this process."""
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise NotFoundError(f"no handler for job kind {kind!r}") from None


def registered_kinds() -> frozenset[str]:
    """The kinds this process can run (its handler modules imported)."""
    return frozenset(_HANDLERS)


def _payload_dict(payload: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    doc = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
    try:
        text = json.dumps(doc, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidInputError("a job payload must be plain JSON (ids, not objects)") from None
    if len(text) > MAX_PAYLOAD_CHARS:
        raise InvalidInputError("a job payload holds ids, never content; this one is too large")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def enqueue(
    session: Session,
    kind: str,
    payload: Mapping[str, Any] | BaseModel,
    *,
    idempotency_key: str,
    actor: str,
    max_attempts: int | None = None,
    run_after: dt.datetime | None = None,
    priority: int = 100,
) -> JobInfo:
    """Queue a job inside the caller's transaction, so it exists only if the change that needs
    it is committed. A second call with the same key returns the job queued first.

    :param payload: ids only; validated against the handler's model when ``kind`` is registered
        in this process.
    :param idempotency_key: what makes two requests the same job, e.g. ``ocr:record:42``.
    :param max_attempts: attempts before the job is dead (default :data:`DEFAULT_MAX_ATTEMPTS`;
        services pass ``settings.worker.max_attempts``).
    :param priority: lower runs first (default 100).
    :raises ConflictError: the key is taken by a job of another kind or payload.
    :raises InvalidInputError: the payload is not JSON, too large, or invalid for its handler.
    """
    if max_attempts is not None and max_attempts < 1:
        raise InvalidInputError("a job needs at least one attempt")
    doc = _payload_dict(payload)
    handler = _HANDLERS.get(kind)
    if handler is not None:
        handler.parse(doc)
    now = utcnow()
    values = {
        "kind": kind,
        "payload": doc,
        "idempotency_key": idempotency_key,
        "state": JobState.queued.value,
        "priority": priority,
        "attempts": 0,
        "max_attempts": max_attempts or DEFAULT_MAX_ATTEMPTS,
        "run_after": run_after or now,
        "created_at": now,
    }
    # The same statement on both: a concurrent enqueue of the same key waits for ours and then
    # does nothing (PostgreSQL), or waits on the database lock (SQLite).
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Job)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Job.id)
    )
    inserted = session.execute(stmt).first() is not None
    job = session.scalars(
        select(Job)
        .where(Job.idempotency_key == idempotency_key)
        .execution_options(populate_existing=True)
    ).one()
    if not inserted:
        if job.kind != kind or job.payload != doc:
            raise ConflictError(
                f"idempotency key {idempotency_key!r} belongs to job {job.id} of another "
                "kind or payload"
            )
        return _info(job)
    # The payload stays on the job row: it may name a record (an archive code) that the
    # trail's readers must not learn of, and the trail is read more widely than the queue.
    record_event(
        session, actor=actor, action="job.enqueue", target=f"job:{job.id}", detail={"kind": kind}
    )
    return _info(job)


def _runnable(now: dt.datetime) -> Any:
    return or_(
        and_(Job.state == JobState.queued.value, Job.run_after <= now),
        and_(Job.state == JobState.running.value, Job.lease_expires_at <= now),
    )


def claim(
    db: Database,
    worker_id: str,
    *,
    lease_seconds: float,
    kinds: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> JobInfo | None:
    """Lease the next runnable job to ``worker_id``, or return ``None`` when there is none.

    Runnable: queued and due, or running with an expired lease (its worker died). Lowest
    ``priority`` first, then oldest. The lease lasts ``lease_seconds`` from ``now`` and is kept
    alive by :func:`heartbeat`. A job whose lease ran out on its last attempt is not run again:
    it goes dead.

    :param kinds: only these kinds (the ones this worker has handlers for); ``None`` = any.
    """
    now = now or utcnow()
    if kinds is not None and not kinds:
        return None
    with db.write() as session:
        while True:
            stmt = select(Job).where(_runnable(now)).order_by(Job.priority, Job.id).limit(1)
            if kinds is not None:
                stmt = stmt.where(Job.kind.in_(sorted(kinds)))
            if db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job = session.scalars(stmt).first()
            if job is None:
                return None
            if job.state == JobState.running.value:
                lost = f"worker {job.lease_owner} was lost (its lease expired)"
                if job.attempts >= job.max_attempts:
                    _bury(session, job, describe_error(lost), now)
                    continue
                job.last_error = describe_error(lost)
                log.warning(
                    "job lease expired; claiming it again",
                    extra={"event": "job.lease_expired", "job_id": job.id},
                )
            job.state = JobState.running.value
            job.lease_owner = worker_id
            job.lease_expires_at = now + dt.timedelta(seconds=lease_seconds)
            job.attempts += 1
            session.flush()
            return _info(job)


def _owned(session: Session, job_id: int, worker_id: str) -> Job:
    stmt = select(Job).where(Job.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    job = session.scalars(stmt).first()
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    if job.state != JobState.running.value or job.lease_owner != worker_id:
        raise ConflictError(f"job {job_id} is no longer leased to worker {worker_id}")
    return job


def heartbeat(
    db: Database,
    job_id: int,
    worker_id: str,
    lease_seconds: float,
    *,
    now: dt.datetime | None = None,
) -> dt.datetime:
    """Extend a lease to ``now + lease_seconds`` and return the new expiry.

    :raises ConflictError: the job is no longer this worker's (its lease expired and another
        worker claimed it, or it finished): stop working on it.
    """
    now = now or utcnow()
    with db.write() as session:
        job = _owned(session, job_id, worker_id)
        job.lease_expires_at = now + dt.timedelta(seconds=lease_seconds)
        return job.lease_expires_at


def complete(
    db: Database, job_id: int, worker_id: str, *, now: dt.datetime | None = None
) -> JobInfo:
    """Mark a job done and audit it (``job.done``).

    :raises ConflictError: the lease was lost; another worker runs the job again.
    """
    now = now or utcnow()
    with db.write() as session:
        job = _owned(session, job_id, worker_id)
        job.state = JobState.done.value
        job.lease_owner = None
        job.lease_expires_at = None
        job.finished_at = now
        record_event(
            session,
            actor=_worker_actor(worker_id),
            action="job.done",
            target=f"job:{job.id}",
            detail={"kind": job.kind, "attempts": job.attempts},
            now=now,
        )
        log.info("job done", extra={"event": "job.done", "job_id": job.id})
        return _info(job)


def _bury(session: Session, job: Job, error: str, now: dt.datetime, actor: str = "system") -> None:
    job.state = JobState.dead.value
    job.lease_owner = None
    job.lease_expires_at = None
    job.last_error = error
    job.finished_at = now
    record_event(
        session,
        actor=actor,
        action="job.dead",
        target=f"job:{job.id}",
        outcome="error",
        detail={"kind": job.kind, "attempts": job.attempts, "error": error},
        now=now,
    )
    log.warning("job is dead", extra={"event": "job.dead", "job_id": job.id})


def fail(
    db: Database,
    job_id: int,
    worker_id: str,
    error: BaseException | str,
    *,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
    permanent: bool = False,
) -> JobInfo:
    """Record a failed attempt: queue the job again after :func:`backoff_delay`, or, after its
    last attempt (or at once when ``permanent``), make it dead and audit it (``job.dead``).
    Retries are not audited; the job row keeps the attempt count and the last error.

    :param error: kept as one line (:func:`describe_error`).
    :raises ConflictError: the lease was lost; the other worker's attempt counts instead.
    """
    now = now or utcnow()
    text = describe_error(error)
    with db.write() as session:
        job = _owned(session, job_id, worker_id)
        if permanent or job.attempts >= job.max_attempts:
            _bury(session, job, text, now, actor=_worker_actor(worker_id))
        else:
            job.state = JobState.queued.value
            job.lease_owner = None
            job.lease_expires_at = None
            job.last_error = text
            job.run_after = now + backoff_delay(job.attempts, rng)
            log.info("job will be retried", extra={"event": "job.retry", "job_id": job.id})
        return _info(job)


def release(db: Database, job_id: int, worker_id: str) -> JobInfo:
    """Hand a job back unfinished (the worker is stopping): queued again at once, and the
    interrupted attempt does not count.

    :raises ConflictError: the lease was lost already.
    """
    with db.write() as session:
        job = _owned(session, job_id, worker_id)
        job.state = JobState.queued.value
        job.lease_owner = None
        job.lease_expires_at = None
        job.attempts = max(job.attempts - 1, 0)
        return _info(job)


def get_job(session: Session, job_id: int) -> JobInfo:
    """:raises NotFoundError: no such job."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return _info(job)


def list_jobs(
    session: Session,
    *,
    state: JobState | str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[JobInfo]:
    """Jobs, newest first, for the operator's views."""
    stmt = select(Job)
    if state is not None:
        stmt = stmt.where(Job.state == JobState(state).value)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return [_info(j) for j in session.scalars(stmt.order_by(Job.id.desc()).limit(limit))]


def job_counts(session: Session) -> dict[JobState, int]:
    """How many jobs are in each state (every state present, zero included)."""
    counts = dict.fromkeys(JobState, 0)
    for state, n in session.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[JobState(state)] = n
    return counts


def retry_dead(
    session: Session, job_id: int, *, actor: str, now: dt.datetime | None = None
) -> JobInfo:
    """Queue a dead job again with a fresh set of attempts (an operator's decision, audited as
    ``job.requeue``). The last error is kept until the next attempt replaces it.

    :raises NotFoundError: no such job.
    :raises ConflictError: the job is not dead.
    """
    now = now or utcnow()
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    if job.state != JobState.dead.value:
        raise ConflictError(f"job {job_id} is {job.state}, not dead; only dead jobs are retried")
    previous = job.attempts
    job.state = JobState.queued.value
    job.attempts = 0
    job.run_after = now
    job.finished_at = None
    record_event(
        session,
        actor=actor,
        action="job.requeue",
        target=f"job:{job.id}",
        detail={"kind": job.kind, "attempts": previous},
        now=now,
    )
    return _info(job)
