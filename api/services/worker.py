"""``dangan worker``: processes that run the catalog's job queue.

Each worker is a process of its own (spawned, not forked: no inherited connections or locks)
that opens its own catalog and runs :func:`catalog.run_worker`. Stopping is graceful: the
stop signal lets every worker finish the job in hand; one that does not finish within a lease
is killed, and its job is claimed again when the lease runs out, as after any crash.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import wait
from types import FrameType
from typing import Protocol

from api.errors import exit_for_error
from api.services.runtime import Runtime
from api.services.schedule import tick
from catalog import run_worker
from dangan.config import Settings
from dangan.errors import ExitCode

__all__ = ["resolve_processes", "run_workers", "stop_on_signals", "worker_id"]

log = logging.getLogger(__name__)

_CHECK_SECONDS = 0.5  # how often the parent looks at its stop event while children run


def resolve_processes(processes: int) -> int:
    """``0`` means one worker per core."""
    return processes if processes > 0 else (os.cpu_count() or 1)


def worker_id() -> str:
    """This process's name in leases and in the audit trail: host and pid."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


class _Settable(Protocol):
    def set(self) -> None: ...


def set_from_signal_handler(event: _Settable) -> None:
    """Set ``event`` from a signal handler without deadlocking.

    A handler runs in the main thread between two bytecodes, possibly while that thread holds
    the event's own lock (inside ``wait()``); a ``multiprocessing`` event's lock is shared with
    the other processes too. Setting it here could wait for a lock that only this very thread
    would release, so another thread sets it as soon as the lock is free.
    """
    threading.Thread(target=event.set, name="dangan-stop", daemon=True).start()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``stop.set()`` while inside (main thread only)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        set_from_signal_handler(stop)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_workers(
    runtime: Runtime, processes: int, stop_event: threading.Event, *, once: bool = False
) -> int:
    """Run ``processes`` worker processes (``0``: one per core) until ``stop_event`` is set,
    or, with ``once``, until each has found nothing left to run.

    :returns: an exit code: 0 when every worker ended cleanly, else the first failure's.
    """
    settings = runtime.settings
    count = resolve_processes(processes)
    ctx = multiprocessing.get_context("spawn")
    children_stop = ctx.Event()
    level = logging.getLogger().getEffectiveLevel()
    children = [
        ctx.Process(
            target=_worker_main,
            args=(settings, children_stop, once, level),
            name=f"dangan-worker-{n}",
        )
        for n in range(count)
    ]
    for child in children:
        child.start()
    log.info("workers started", extra={"event": "worker.start", "processes": count})
    try:
        while not stop_event.is_set():
            alive = [c for c in children if c.is_alive()]
            # With `once` the workers leave as they run out of work; otherwise a worker that
            # leaves early has failed, and the others stop so that a supervisor restarts all.
            if not alive or (not once and len(alive) < count):
                break
            wait([c.sentinel for c in alive], timeout=_CHECK_SECONDS)
    finally:
        children_stop.set()
        _join(children, grace=float(settings.worker.lease_seconds))
    codes = [c.exitcode for c in children]
    failed = [code for code in codes if code != 0]
    if not failed:
        return 0
    first = failed[0]
    # A negative code is the signal that ended the child: an operational failure.
    return first if first is not None and first > 0 else int(ExitCode.operational)


def _join(children: Sequence[multiprocessing.process.BaseProcess], *, grace: float) -> None:
    """Wait for the children to finish their jobs; kill the ones that take longer than a lease
    (their jobs are claimed again when it runs out)."""
    for child in children:
        child.join(grace)
    for child in children:
        if child.is_alive():
            log.warning(
                "a worker did not stop in time; killing it",
                extra={"event": "worker.kill", "pid": child.pid},
            )
            child.kill()
            child.join()


def _worker_main(
    settings: Settings, stop: multiprocessing.synchronize.Event, once: bool, level: int
) -> None:
    """One worker process: its own catalog connection, its own loop."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s %(message)s")

    def handle(signum: int, frame: FrameType | None) -> None:
        set_from_signal_handler(stop)  # finish the job in hand, then leave

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    runtime = Runtime(settings)
    try:
        db = runtime.require_initialised()
        cfg = settings.worker
        run_worker(
            db,
            worker_id(),
            stop,
            runtime,
            lease_seconds=cfg.lease_seconds,
            poll_seconds=cfg.poll_seconds,
            once=once,
            # A one-shot run drains what is queued; only a standing worker starts periodic jobs.
            tick=None if once else lambda: tick(runtime),
        )
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        exit_for_error(exc, debug=level <= logging.DEBUG)
    finally:
        runtime.close()
    sys.exit(0)
