"""``dangan serve`` on the embedded default: it answers, runs queued jobs, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from catalog import AUDIT_VERIFY, JobState, enqueue, get_job, open_database
from tests.services import free_ports, wait_for

DANGAN = str(Path(sys.executable).with_name("dangan"))


def test_serve_answers_runs_jobs_and_stops(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    env["DANGAN_WORKER__PROCESSES"] = "1"
    env["DANGAN_WORKER__POLL_SECONDS"] = "0.2"
    data = tmp_path / "data"
    pw = tmp_path / "pw"
    pw.write_text("correct-horse-battery\n")
    base = [DANGAN, "--data-dir", str(data)]
    subprocess.run(
        [*base, "init", "--admin", "root", "--password-file", str(pw)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )

    (port,) = free_ports(1)
    server = subprocess.Popen(
        [*base, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/health"

        def health() -> int:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status)

        assert (
            wait_for(
                health,
                timeout=60,
                what="dangan serve to answer",
                alive=lambda: server.poll() is None,
            )
            == 200
        )

        db = open_database(f"sqlite:///{data / 'catalog.sqlite'}")
        with db.write() as s:
            job = enqueue(s, AUDIT_VERIFY, {}, idempotency_key="serve-test", actor="system")

        def done() -> None:
            with db.read() as s:
                assert get_job(s, job.id).state is JobState.done

        wait_for(
            done, timeout=60, what="the server's worker to run the job", errors=(AssertionError,)
        )
        db.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (as a server should).
    assert server.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out
    assert "correct-horse-battery" not in out
