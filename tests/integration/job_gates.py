"""A test-only job kind, ``test.gate``, that holds a worker inside a running job until the test
opens a gate (a file), so a test can kill or stop a worker at a known point.

Run as ``python -m tests.integration.job_gates URL LEASE_SECONDS`` (from the repository root,
with ``DANGAN_TEST_GATES`` set) it is a worker process that runs ``test.gate`` jobs until it is
killed or told to stop with SIGTERM.

Files in ``$DANGAN_TEST_GATES`` for a payload ``{"gate": "g"}``:
``g.started.<pid>`` when a worker enters the job, ``g.open`` (made by the test) lets it go on,
``g.ran.<pid>`` when it has finished.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel

from catalog import JobContext, open_database, register, run_worker

GATE = "test.gate"
WAIT_SECONDS = 120.0


class GatePayload(BaseModel):
    gate: str


def gates_dir() -> Path:
    return Path(os.environ["DANGAN_TEST_GATES"])


@register(GATE, GatePayload)
def pass_gate(ctx: JobContext[Any], payload: GatePayload) -> None:
    here = gates_dir()
    (here / f"{payload.gate}.started.{os.getpid()}").touch()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (here / f"{payload.gate}.open").exists():
        ctx.ensure_lease()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {payload.gate} was never opened")
        time.sleep(0.02)
    (here / f"{payload.gate}.ran.{os.getpid()}").touch()


def main(url: str, lease_seconds: float) -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    db = open_database(url)
    try:
        run_worker(
            db,
            f"gate-{os.getpid()}",
            stop,
            lease_seconds=lease_seconds,
            poll_seconds=0.02,
            kinds=[GATE],
        )
    finally:
        db.dispose()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
