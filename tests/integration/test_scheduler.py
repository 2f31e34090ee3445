"""The scheduler on both catalog backends: a due schedule is enqueued once per slot, not twice
when workers tick together, skipped while its last run is still going, not enqueued by a worker
without its handler; and its last run, outcome and next run are visible."""

from __future__ import annotations

import datetime as dt
import threading

from api.services import Runtime
from api.services.fixity_cycle import FIXITY_CYCLE
from api.services.replication import REPLICATION_RUN
from api.services.schedule import declared_schedules, states, tick
from catalog import JobState, ScheduleSpec, list_jobs, run_one, run_worker, tick_schedules
from tests.queue import drain

NOON = dt.datetime(2026, 11, 23, 12, 0, 30, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _scheduled(rt: Runtime, kind: str) -> list[int]:
    with rt.db.read() as s:
        return [j.id for j in list_jobs(s, kind=kind, limit=1000)]


def test_a_due_schedule_is_enqueued_once_per_slot(runtime_each_backend: Runtime) -> None:
    rt = runtime_each_backend
    first = tick(rt, now=NOON)
    assert FIXITY_CYCLE in {j.kind for j in first}
    assert tick(rt, now=NOON + dt.timedelta(minutes=5)) == []  # same slot: nothing more
    assert len(_scheduled(rt, FIXITY_CYCLE)) == 1
    # The run is still queued when the next slot comes: the slot is skipped, not stacked.
    assert FIXITY_CYCLE not in {j.kind for j in tick(rt, now=NOON + HOUR)}
    assert len(_scheduled(rt, FIXITY_CYCLE)) == 1
    drain(rt, [FIXITY_CYCLE])
    again = tick(rt, now=NOON + 2 * HOUR)
    assert FIXITY_CYCLE in {j.kind for j in again}
    assert len(_scheduled(rt, FIXITY_CYCLE)) == 2


def test_two_workers_ticking_at_once_enqueue_one_job(runtime_each_backend: Runtime) -> None:
    rt = runtime_each_backend
    spec = ScheduleSpec("twice", FIXITY_CYCLE, HOUR)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def tick_once() -> None:
        try:
            barrier.wait()
            tick_schedules(rt.db, [spec], now=NOON)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=tick_once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(_scheduled(rt, FIXITY_CYCLE)) == 1


def test_a_kind_without_a_handler_is_not_enqueued(runtime_each_backend: Runtime) -> None:
    rt = runtime_each_backend
    spec = ScheduleSpec("elsewhere", "nobody.runs.this", HOUR)
    assert tick_schedules(rt.db, [spec], runnable={FIXITY_CYCLE}, now=NOON) == []
    assert _scheduled(rt, "nobody.runs.this") == []
    # Even queued by someone, a worker without the handler leaves it alone (no crash).
    tick_schedules(rt.db, [spec], now=NOON)
    assert run_one(rt.db, "w", rt, lease_seconds=30) is None
    with rt.db.read() as s:
        [job] = list_jobs(s, kind="nobody.runs.this")
    assert job.state is JobState.queued


def test_last_run_outcome_and_next_run_are_visible(runtime_each_backend: Runtime) -> None:
    rt = runtime_each_backend
    before = {s.name: s for s in states(rt, now=NOON)}
    assert set(before) == {s.name for s in declared_schedules(rt.settings)}
    assert before["fixity"].outcome == "never"
    tick(rt, now=NOON)
    drain(rt, [FIXITY_CYCLE])
    after = {s.name: s for s in states(rt, now=NOON)}
    fixity = after["fixity"]
    assert fixity.outcome == JobState.done.value
    assert fixity.last_run_at is not None
    assert fixity.next_run_at == dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
    assert fixity.summary is not None
    assert fixity.summary["checked"] == 0  # an empty archive: nothing to check


def test_a_standing_worker_ticks_and_runs_what_is_due(runtime_each_backend: Runtime) -> None:
    rt = runtime_each_backend
    stop = threading.Event()

    def tick_then_stop() -> None:
        tick(rt)
        stop.set()  # the worker runs one claim after the tick before it looks again

    ran = run_worker(rt.db, "w", stop, rt, lease_seconds=30, poll_seconds=0.01, tick=tick_then_stop)
    assert ran == 1
    with rt.db.read() as s:
        jobs = list_jobs(s, limit=100)
    done = [j for j in jobs if j.state is JobState.done]
    assert [j.kind for j in done] == [REPLICATION_RUN]  # priority 200 before the cycle's 500
