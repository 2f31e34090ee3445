"""The job queue on SQLite and PostgreSQL: idempotent enqueue, ordered claims, leases that
expire and are taken over, backoff, dead letters, and many workers running each job once.

Time is passed in (``now``); nothing here sleeps to let time pass.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text, update

from catalog import (
    AUDIT_VERIFY,
    Database,
    JobContext,
    JobInfo,
    JobState,
    backoff_delay,
    claim,
    complete,
    describe_error,
    enqueue,
    fail,
    get_job,
    heartbeat,
    job_counts,
    list_events,
    list_jobs,
    open_database,
    record_event,
    register,
    retry_dead,
    run_one,
    run_worker,
    verify_chain,
)
from catalog.jobs import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS
from catalog.models import Job
from dangan.errors import ConflictError, InvalidInputError, NotFoundError, StoreUnavailableError

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
LEASE = 60.0


# --- handlers used by these tests ------------------------------------------------------------


class Numbered(BaseModel):
    n: int


class Failing(BaseModel):
    n: int
    error: str  # "transient", "input" or "content"
    times: int = 1_000  # fail the first `times` attempts


_runs: Counter[int] = Counter()
_runs_lock = threading.Lock()


@register("test.count", Numbered)
def _count(ctx: JobContext[Any], payload: Numbered) -> None:
    with _runs_lock:
        _runs[ctx.job.id] += 1


@register("test.fail", Failing)
def _fail(ctx: JobContext[Any], payload: Failing) -> None:
    if ctx.job.attempts > payload.times:
        return
    if payload.error == "input":
        raise InvalidInputError("page 3 is not an image")
    if payload.error == "content":
        raise ValueError("学生 张三 的成绩单")  # text a handler must never let into the queue
    raise StoreUnavailableError("the replica store cannot be reached")


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a seeded, repeatable backoff schedule


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    _runs.clear()


def _enqueue(db: Database, n: int, kind: str = "test.count", **kw: Any) -> JobInfo:
    payload = kw.pop("payload", {"n": n})
    kw.setdefault("run_after", T0)  # due at the tests' own clock
    with db.write() as s:
        return enqueue(s, kind, payload, idempotency_key=f"{kind}:{n}", actor="alice", **kw)


def _job(db: Database, job_id: int) -> JobInfo:
    with db.read() as s:
        return get_job(s, job_id)


def _events(db: Database, job: JobInfo) -> list[str]:
    with db.read() as s:
        return [e.action for e in list_events(s, target=job.target, limit=1000)]


def _chain_ok(db: Database) -> bool:
    with db.read() as s:
        return verify_chain(s).ok


# --- enqueue ---------------------------------------------------------------------------------


def test_enqueue_is_idempotent_by_key(database: Database) -> None:
    first = _enqueue(database, 1)
    again = _enqueue(database, 1)
    assert again.id == first.id
    assert again.state is JobState.queued
    with database.read() as s:
        assert len(list_jobs(s)) == 1
    assert _events(database, first) == ["job.enqueue"]

    with pytest.raises(ConflictError, match="another kind or payload"), database.write() as s:
        enqueue(s, "test.count", {"n": 2}, idempotency_key="test.count:1", actor="alice")


def test_enqueue_belongs_to_the_callers_transaction(database: Database) -> None:
    def change_that_fails() -> None:
        with database.write() as s:
            enqueue(s, "test.count", {"n": 1}, idempotency_key="k", actor="alice")
            raise RuntimeError("the change that needed the job failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with database.read() as s:
        assert list_jobs(s) == []
        assert list_events(s) == []
    assert _enqueue(database, 1).id >= 1


def test_enqueue_refuses_content_and_bad_payloads(database: Database) -> None:
    with pytest.raises(InvalidInputError, match="n: Field required"), database.write() as s:
        enqueue(s, "test.count", {"m": 1}, idempotency_key="a", actor="alice")
    with pytest.raises(InvalidInputError, match="ids, never content"), database.write() as s:
        enqueue(s, "test.count", {"n": 1, "text": "字" * 5000}, idempotency_key="b", actor="x")
    with pytest.raises(InvalidInputError, match="plain JSON"), database.write() as s:
        enqueue(s, "test.count", {"n": object()}, idempotency_key="c", actor="alice")
    # A pydantic model is accepted as the payload too.
    with database.write() as s:
        job = enqueue(s, "test.count", Numbered(n=4), idempotency_key="d", actor="alice")
    assert job.payload == {"n": 4}


def test_enqueue_is_idempotent_under_concurrency(database: Database) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    ids: list[int] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        db = open_database(url)
        try:
            barrier.wait()
            with db.write() as s:
                ids.append(enqueue(s, "test.count", {"n": 9}, idempotency_key="same", actor="a").id)
        finally:
            db.dispose()

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6
    assert len(set(ids)) == 1
    with database.read() as s:
        assert job_counts(s)[JobState.queued] == 1
        assert [e.action for e in list_events(s)] == ["job.enqueue"]


# --- claiming --------------------------------------------------------------------------------


def test_claims_go_by_priority_then_age_and_respect_run_after(database: Database) -> None:
    a = _enqueue(database, 1)
    b = _enqueue(database, 2, priority=10)
    c = _enqueue(database, 3, priority=10)
    later = _enqueue(database, 4, priority=0, run_after=T0 + dt.timedelta(hours=1))
    order = [claim(database, "w", lease_seconds=LEASE, now=T0) for _ in range(4)]
    assert [j.id if j else None for j in order] == [b.id, c.id, a.id, None]
    got = claim(database, "w", lease_seconds=LEASE, now=T0 + dt.timedelta(hours=1))
    assert got is not None
    assert got.id == later.id
    assert got.state is JobState.running
    assert got.attempts == 1
    assert got.lease_owner == "w"
    assert got.lease_expires_at == T0 + dt.timedelta(hours=1, seconds=LEASE)


def test_claim_takes_only_the_kinds_asked_for(database: Database) -> None:
    counted = _enqueue(database, 1)
    assert claim(database, "w", lease_seconds=LEASE, kinds=["test.fail"], now=T0) is None
    assert claim(database, "w", lease_seconds=LEASE, kinds=[], now=T0) is None
    got = claim(database, "w", lease_seconds=LEASE, kinds=["test.count"], now=T0)
    assert got is not None
    assert got.id == counted.id


def test_an_expired_lease_is_claimed_by_another_worker(database: Database) -> None:
    job = _enqueue(database, 1)
    first = claim(database, "crashed", lease_seconds=LEASE, now=T0)
    assert first is not None
    assert first.id == job.id
    just_before = T0 + dt.timedelta(seconds=LEASE - 1)
    assert claim(database, "other", lease_seconds=LEASE, now=just_before) is None

    after = T0 + dt.timedelta(seconds=LEASE)
    second = claim(database, "other", lease_seconds=LEASE, now=after)
    assert second is not None
    assert second.id == job.id
    assert second.lease_owner == "other"
    assert second.attempts == 2
    assert second.last_error is not None
    assert "worker crashed was lost" in second.last_error

    # The worker that lost the lease finds out on its next heartbeat, and cannot finish.
    with pytest.raises(ConflictError, match="no longer leased"):
        heartbeat(database, job.id, "crashed", LEASE, now=after)
    with pytest.raises(ConflictError):
        complete(database, job.id, "crashed")
    with pytest.raises(ConflictError):
        fail(database, job.id, "crashed", "too late")
    done = complete(database, job.id, "other")
    assert done.state is JobState.done
    assert _events(database, job) == ["job.enqueue", "job.done"]


def test_heartbeat_extends_the_owners_lease(database: Database) -> None:
    job = _enqueue(database, 1)
    claim(database, "w", lease_seconds=LEASE, now=T0)
    later = T0 + dt.timedelta(seconds=LEASE - 1)
    assert heartbeat(database, job.id, "w", LEASE, now=later) == later + dt.timedelta(seconds=LEASE)
    # Past the first lease, no one can take it: the heartbeat moved it.
    assert claim(database, "x", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=LEASE)) is None
    with pytest.raises(ConflictError):
        heartbeat(database, job.id, "somebody-else", LEASE, now=later)
    with pytest.raises(NotFoundError):
        heartbeat(database, 9999, "w", LEASE)


def test_a_lease_lost_on_the_last_attempt_makes_the_job_dead(database: Database) -> None:
    job = _enqueue(database, 1, max_attempts=1)
    claim(database, "crashed", lease_seconds=LEASE, now=T0)
    assert claim(database, "w", lease_seconds=LEASE, now=T0 + dt.timedelta(hours=1)) is None
    dead = _job(database, job.id)
    assert dead.state is JobState.dead
    assert dead.last_error is not None
    assert "worker crashed was lost" in dead.last_error
    assert _events(database, job) == ["job.enqueue", "job.dead"]


# --- failing ---------------------------------------------------------------------------------


def test_backoff_doubles_with_seeded_jitter_up_to_the_cap() -> None:
    delays = [backoff_delay(n, _rng(7)).total_seconds() for n in range(1, 12)]
    replay = [backoff_delay(n, _rng(7)).total_seconds() for n in range(1, 12)]
    assert delays == replay
    for n, delay in enumerate(delays, start=1):
        raw = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (n - 1))
        assert 0.75 * raw <= delay <= raw
    jitter = _rng(7).uniform(0.75, 1.0)
    assert delays[0] == pytest.approx(BACKOFF_BASE_SECONDS * jitter)
    assert delays[-1] <= BACKOFF_CAP_SECONDS
    assert len({backoff_delay(3, _rng(seed)) for seed in range(20)}) > 1


def test_failures_back_off_then_the_job_dies_with_its_last_error(database: Database) -> None:
    job = _enqueue(database, 1, max_attempts=3)
    now = T0
    for attempt in (1, 2):
        got = claim(database, "w", lease_seconds=LEASE, now=now)
        assert got is not None
        assert got.attempts == attempt
        error = OSError(f"disk hiccup {attempt}")
        after = fail(database, job.id, "w", error, now=now, rng=_rng(attempt))
        assert after.state is JobState.queued
        assert after.run_after == now + backoff_delay(attempt, _rng(attempt))
        assert after.lease_owner is None
        # Not runnable before its time.
        too_soon = after.run_after - dt.timedelta(seconds=1)
        assert claim(database, "w", lease_seconds=LEASE, now=too_soon) is None
        now = after.run_after
    got = claim(database, "w", lease_seconds=LEASE, now=now)
    assert got is not None
    assert got.attempts == 3
    dead = fail(database, job.id, "w", StoreUnavailableError("the replica is down"), now=now)
    assert dead.state is JobState.dead
    assert dead.last_error == "StoreUnavailableError: the replica is down"
    assert dead.finished_at == now
    assert claim(database, "w", lease_seconds=LEASE, now=now + dt.timedelta(days=1)) is None
    assert _events(database, job) == ["job.enqueue", "job.dead"]
    with database.read() as s:
        (event,) = list_events(s, action="job.dead")
    assert event.outcome == "error"
    assert event.detail == {
        "kind": "test.count",
        "attempts": 3,
        "error": "StoreUnavailableError: the replica is down",
    }
    assert _chain_ok(database)


def test_errors_are_kept_as_one_short_safe_line() -> None:
    assert (
        describe_error(ValueError("学生 张三\n的成绩")) == "ValueError (details in the worker log)"
    )
    assert describe_error(InvalidInputError("bad\n  page")) == "InvalidInputError: bad page"
    long = describe_error(InvalidInputError("x" * 1000))
    assert len(long) == 300
    assert long.endswith("…")


def test_retry_dead_requeues_with_fresh_attempts(database: Database) -> None:
    job = _enqueue(database, 1, max_attempts=1)
    claim(database, "w", lease_seconds=LEASE, now=T0)
    fail(database, job.id, "w", "boom", now=T0)
    with database.write() as s:
        again = retry_dead(s, job.id, actor="admin", now=T0 + dt.timedelta(hours=1))
    assert again.state is JobState.queued
    assert again.attempts == 0
    assert again.last_error == "boom"
    assert again.finished_at is None
    assert _events(database, job) == ["job.enqueue", "job.dead", "job.requeue"]
    with pytest.raises(ConflictError, match="not dead"), database.write() as s:
        retry_dead(s, job.id, actor="admin")
    with pytest.raises(NotFoundError), database.write() as s:
        retry_dead(s, 12345, actor="admin")
    got = claim(database, "w", lease_seconds=LEASE, now=T0 + dt.timedelta(hours=1))
    assert got is not None
    assert got.attempts == 1


def test_list_and_count_jobs(database: Database) -> None:
    for n in range(3):
        _enqueue(database, n)
    _enqueue(database, 9, kind="test.fail", payload={"n": 9, "error": "input"})
    claim(database, "w", lease_seconds=LEASE, now=T0)
    with database.read() as s:
        counts = job_counts(s)
        assert counts == {
            JobState.queued: 3,
            JobState.running: 1,
            JobState.done: 0,
            JobState.dead: 0,
        }
        assert [j.idempotency_key for j in list_jobs(s, limit=2)] == ["test.fail:9", "test.count:2"]
        assert [j.id for j in list_jobs(s, state="running")] == [1]
        assert len(list_jobs(s, kind="test.fail")) == 1


# --- running ---------------------------------------------------------------------------------


def test_run_one_runs_a_handler_and_audits_it_once(database: Database) -> None:
    job = _enqueue(database, 1)
    assert run_one(database, "w", lease_seconds=LEASE, kinds=["test.count"]) is not None
    assert run_one(database, "w", lease_seconds=LEASE, kinds=["test.count"]) is None
    done = _job(database, job.id)
    assert done.state is JobState.done
    assert done.attempts == 1
    assert _runs[job.id] == 1
    with database.read() as s:
        (event,) = list_events(s, action="job.done")
    assert event.target == f"job:{job.id}"
    assert event.actor == "worker:w"
    assert event.detail == {"kind": "test.count", "attempts": 1}
    assert _chain_ok(database)


def test_a_transient_error_is_retried_and_then_succeeds(database: Database) -> None:
    job = _enqueue(
        database, 1, kind="test.fail", payload={"n": 1, "error": "transient", "times": 1}
    )
    first = run_one(database, "w", lease_seconds=LEASE, kinds=["test.fail"], now=T0, rng=_rng(3))
    assert first is not None
    assert first.state is JobState.queued
    assert first.last_error == "StoreUnavailableError: the replica store cannot be reached"
    assert first.run_after == T0 + backoff_delay(1, _rng(3))
    second = run_one(database, "w", lease_seconds=LEASE, kinds=["test.fail"], now=first.run_after)
    assert second is not None
    assert second.state is JobState.done
    assert second.attempts == 2
    assert _events(database, job) == ["job.enqueue", "job.done"]


def test_bad_input_is_final_at_once(database: Database) -> None:
    _enqueue(database, 1, kind="test.fail", payload={"n": 1, "error": "input"})
    got = run_one(database, "w", lease_seconds=LEASE, kinds=["test.fail"], now=T0)
    assert got is not None
    assert got.state is JobState.dead
    assert got.attempts == 1
    assert got.last_error == "InvalidInputError: page 3 is not an image"


def test_an_error_holding_content_is_kept_by_its_type_only(database: Database) -> None:
    _enqueue(database, 1, kind="test.fail", payload={"n": 1, "error": "content"}, max_attempts=1)
    got = run_one(database, "w", lease_seconds=LEASE, kinds=["test.fail"], now=T0)
    assert got is not None
    assert got.state is JobState.dead  # its last attempt
    assert got.last_error == "ValueError (details in the worker log)"
    with database.read() as s:
        (event,) = list_events(s, action="job.dead")
    assert "张三" not in str(event.detail)


def test_an_invalid_payload_makes_the_job_dead_at_once(database: Database) -> None:
    job = _enqueue(database, 1)
    with database.write() as s:  # as stored by an older version of the handler
        s.execute(update(Job).where(Job.id == job.id).values(payload={"n": "one"}))
    got = run_one(database, "w", lease_seconds=LEASE, kinds=["test.count"], now=T0)
    assert got is not None
    assert got.state is JobState.dead
    assert got.attempts == 1
    assert got.last_error is not None
    assert got.last_error.startswith("InvalidInputError: invalid test.count payload: n: ")
    assert "one" not in got.last_error  # the rule broken, never the value given
    assert _runs[job.id] == 0


def test_an_interrupted_handler_hands_its_job_back(database: Database) -> None:
    calls: list[int] = []

    @register("test.interrupt", Numbered)
    def interrupt(ctx: JobContext[Any], payload: Numbered) -> None:
        calls.append(ctx.job.attempts)
        raise KeyboardInterrupt

    job = _enqueue(database, 1, kind="test.interrupt")
    with pytest.raises(KeyboardInterrupt):
        run_one(database, "w", lease_seconds=LEASE, kinds=["test.interrupt"])
    back = _job(database, job.id)
    assert back.state is JobState.queued
    assert back.attempts == 0
    assert back.lease_owner is None
    assert calls == [1]


def test_a_worker_that_loses_its_lease_stops_and_drops_its_result(database: Database) -> None:
    taken = threading.Event()
    seen: list[str] = []

    @register("test.slow", Numbered)
    def slow(ctx: JobContext[Any], payload: Numbered) -> None:
        # Another worker takes the job over (as if this one had stalled past its lease) ...
        far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        thief = claim(ctx.db, "thief", lease_seconds=LEASE, now=far)
        assert thief is not None
        taken.set()
        # ... and this one's heartbeat finds out; the handler is told to stop.
        assert ctx.lease_lost.wait(timeout=30), "the heartbeat never noticed"
        try:
            ctx.ensure_lease()
        except ConflictError as exc:
            seen.append(exc.message)
            raise

    job = _enqueue(database, 1, kind="test.slow")
    got = run_one(database, "w", lease_seconds=0.3, kinds=["test.slow"])
    assert taken.is_set()
    assert seen == [f"job {job.id} is no longer leased to this worker"]
    assert got is not None
    assert got.state is JobState.running
    assert got.lease_owner == "thief"
    assert _events(database, job) == ["job.enqueue"]  # w neither completed nor failed it


def test_audit_verify_records_the_result(database: Database) -> None:
    with database.write() as s:
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:1", actor="system")
    got = run_one(database, "w", lease_seconds=LEASE, kinds=[AUDIT_VERIFY])
    assert got is not None
    assert got.state is JobState.done
    with database.read() as s:
        (event,) = list_events(s, action=AUDIT_VERIFY)
    assert event.outcome == "ok"
    assert event.detail["events"] == 1  # the enqueue event
    assert event.detail["job"] == job.id
    assert _chain_ok(database)


def test_audit_verify_names_the_first_bad_event_and_dies(database: Database) -> None:
    with database.write() as s:
        for i in range(3):
            record_event(s, actor="alice", action="record.create", target=f"record:{i}")
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:2", actor="system")
    with database.engine.begin() as conn:  # behind the application's back
        if database.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 2"))
        if database.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
    got = run_one(database, "w", lease_seconds=LEASE, kinds=[AUDIT_VERIFY])
    assert got is not None
    assert got.state is JobState.dead
    assert got.attempts == 1
    assert got.last_error == (
        "CorruptDataError: audit trail broken: first bad event 2 (1 problems in 4 events)"
    )
    with database.read() as s:
        (event,) = list_events(s, action=AUDIT_VERIFY)
        (dead,) = list_events(s, action="job.dead")
    assert event.outcome == "error"
    assert event.detail["first_bad_event"] == 2
    assert dead.target == f"job:{job.id}"


# --- many workers ----------------------------------------------------------------------------


def test_concurrent_workers_run_each_job_exactly_once(database: Database) -> None:
    jobs, workers = 200, 8
    with database.write() as s:
        ids = [
            enqueue(s, "test.count", {"n": n}, idempotency_key=f"many:{n}", actor="alice").id
            for n in range(jobs)
        ]
    url = database.engine.url.render_as_string(hide_password=False)
    ran: dict[str, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def worker(name: str) -> None:
        db = open_database(url)  # its own engine and connections, as a process would have
        try:
            start.wait()
            ran[name] = run_worker(
                db,
                name,
                threading.Event(),
                lease_seconds=LEASE,
                poll_seconds=0.01,
                kinds=["test.count"],
                once=True,
            )
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            db.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors
    assert sum(ran.values()) == jobs
    assert {i: _runs[i] for i in ids} == dict.fromkeys(ids, 1)
    with database.read() as s:
        assert job_counts(s)[JobState.done] == jobs
        assert all(j.attempts == 1 for j in list_jobs(s, limit=jobs))
        done = list_events(s, action="job.done", limit=10 * jobs)
        assert sorted(int(e.target.split(":")[1]) for e in done if e.target) == sorted(ids)
        assert verify_chain(s).ok


def test_the_enqueue_event_does_not_repeat_the_payload(database: Database) -> None:
    """Payloads may name records (archive codes) hidden from the trail's readers."""
    with database.write() as s:
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:2023-合同-001", actor="system")
    with database.read() as s:
        [event] = [e for e in list_events(s) if e.action == "job.enqueue"]
    assert event.target == f"job:{job.id}"
    assert event.detail == {"kind": AUDIT_VERIFY}
    assert "合同" not in str(event)
