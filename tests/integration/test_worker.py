"""Workers as real processes on SQLite and PostgreSQL: ``dangan worker`` runs jobs and stops
cleanly, and a worker killed with SIGKILL in the middle of a job leaves it to another worker,
which finishes it once the lease runs out. Every wait has a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import cli
from catalog import (
    AUDIT_VERIFY,
    Database,
    JobInfo,
    JobState,
    enqueue,
    get_job,
    list_events,
    record_event,
    run_one,
    verify_chain,
)
from tests.integration.job_gates import GATE
from tests.services import wait_for

ROOT = Path(__file__).resolve().parents[2]
DANGAN = Path(sys.executable).parent / "dangan"
DEADLINE = 60.0


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _env(db: Database, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    env |= {"DANGAN_DATA_DIR": str(data_dir), "DANGAN_DATABASE__URL": _url(db), **extra}
    return env


def _job(db: Database, job_id: int) -> JobInfo:
    with db.read() as s:
        return get_job(s, job_id)


def _until(check: Callable[[], bool], what: str) -> None:
    def probe() -> None:
        if not check():
            raise OSError(what)

    wait_for(probe, timeout=DEADLINE, what=what)


def _job_events(db: Database, job: JobInfo) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(e.action, e.actor) for e in list_events(s, target=job.target)]


def test_a_killed_workers_job_is_finished_by_another(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    monkeypatch.setenv("DANGAN_TEST_GATES", str(gates))
    with database.write() as s:
        job = enqueue(s, GATE, {"gate": "g"}, idempotency_key="gate:g", actor="alice")

    crashing = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.job_gates", _url(database), "1.0"],
        cwd=ROOT,
        env={**os.environ, "DANGAN_TEST_GATES": str(gates)},
    )
    try:
        started = gates / f"g.started.{crashing.pid}"
        _until(lambda: started.exists() or crashing.poll() is not None, "worker entered the job")
        assert crashing.poll() is None, "the worker exited before it was killed"
        running = _job(database, job.id)
        assert running.state is JobState.running
        assert running.lease_owner == f"gate-{crashing.pid}"
    finally:
        crashing.send_signal(signal.SIGKILL)
        crashing.wait(timeout=DEADLINE)
    assert crashing.returncode == -signal.SIGKILL

    (gates / "g.open").touch()
    # Another worker polls until the dead worker's lease has run out, then takes the job.
    outcome: list[JobInfo] = []

    def take_over() -> bool:
        got = run_one(database, "rescuer", lease_seconds=30, kinds=[GATE])
        if got is not None:
            outcome.append(got)
        return bool(outcome)

    _until(take_over, "another worker took the job over")
    (finished,) = outcome
    assert finished.id == job.id
    assert finished.state is JobState.done
    assert finished.attempts == 2
    assert finished.lease_owner is None
    assert sorted(p.name for p in gates.iterdir()) == sorted(
        ["g.open", f"g.started.{crashing.pid}", f"g.started.{os.getpid()}", f"g.ran.{os.getpid()}"]
    )
    assert _job_events(database, job) == [("job.enqueue", "alice"), ("job.done", "worker:rescuer")]
    with database.read() as s:
        assert verify_chain(s).ok


def test_worker_once_runs_audit_verify_and_exits_0(database: Database, tmp_path: Path) -> None:
    with database.write() as s:
        record_event(s, actor="alice", action="record.create", target="record:2023-新生入学-001")
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:nightly", actor="system")
    done = subprocess.run(
        [DANGAN, "worker", "--once", "--processes", "2"],
        env=_env(database, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dangan worker: 2 processes" in done.stderr
    assert "queued 0, running 0, done 1, dead 0" in done.stderr
    finished = _job(database, job.id)
    assert finished.state is JobState.done
    assert finished.attempts == 1
    with database.read() as s:
        (verified,) = list_events(s, action=AUDIT_VERIFY)
        assert verify_chain(s).ok
    assert verified.outcome == "ok"
    assert verified.detail["events"] == 2  # the record event and the enqueue
    assert [a for a, _ in _job_events(database, job)] == ["job.enqueue", "job.done"]


def test_worker_stops_cleanly_on_sigterm(database: Database, tmp_path: Path) -> None:
    with database.write() as s:
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:1", actor="system")
    worker = subprocess.Popen(
        [DANGAN, "worker", "--processes", "2"],
        env=_env(database, tmp_path / "data", DANGAN_WORKER__POLL_SECONDS="0.05"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _until(lambda: _job(database, job.id).state is JobState.done, "the job was run")
        # Still running, waiting for more work: a later job is picked up too.
        with database.write() as s:
            later = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:2", actor="system")
        _until(lambda: _job(database, later.id).state is JobState.done, "the later job was run")
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=DEADLINE)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, stderr
    # The two jobs, and whatever the scheduler queued meanwhile (a standing worker ticks).
    done = re.search(r"done (\d+)", stderr)
    assert done is not None, stderr
    assert int(done.group(1)) >= 2


def test_jobs_list_and_retry_a_dead_job(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(database, tmp_path / "data").items():
        if name.startswith("DANGAN_"):
            monkeypatch.setenv(name, value)
    with database.write() as s:
        job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="audit:x", max_attempts=1, actor="a")
    with database.engine.begin() as conn:  # break the chain behind the application's back
        if database.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE id = 1")
    dead = run_one(database, "w", lease_seconds=30, kinds=[AUDIT_VERIFY])
    assert dead is not None
    assert dead.state is JobState.dead

    runner = CliRunner()
    listed = runner.invoke(cli, ["jobs", "list", "--state", "dead"])
    assert listed.exit_code == 0, listed.output
    assert f"{job.id} dead     audit.verify" in listed.stdout
    assert "CorruptDataError: audit trail broken: first bad event 1" in listed.stdout
    assert "dead 1" in listed.stderr

    retried = runner.invoke(cli, ["jobs", "retry", str(job.id)])
    assert retried.exit_code == 0, retried.output
    assert f"job {job.id} (audit.verify) queued again" in retried.stdout
    assert _job(database, job.id).state is JobState.queued
    again = runner.invoke(cli, ["jobs", "retry", str(job.id)])
    assert again.exit_code != 0
    assert isinstance(again.exception, Exception)
    assert "not dead" in str(again.exception)


def _worker_children(pid: int) -> list[int]:
    """The worker processes of a ``dangan worker`` (not multiprocessing's resource tracker)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_dead_worker_process_stops_the_others(database: Database, tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [DANGAN, "worker", "--processes", "2"],
        env=_env(database, tmp_path / "data", DANGAN_WORKER__POLL_SECONDS="0.05"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _until(lambda: len(_worker_children(worker.pid)) == 2, "two workers started")
        first, second = _worker_children(worker.pid)
        os.kill(first, signal.SIGKILL)
        _, stderr = worker.communicate(timeout=DEADLINE)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # A supervisor sees the failure and restarts the whole worker; none is left behind.
    assert worker.returncode == 3, stderr
    assert not Path(f"/proc/{second}").exists()  # stopped and reaped
