"""What the API benches share: a real ``dangan serve`` on the embedded default, a signed-in
token, and the server's memory sampled from ``/proc`` while they run.

Not a bench itself; ``bench/api_upload.py`` and ``bench/api_load.py`` import it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parents[1]
DANGAN = str(Path(sys.executable).with_name("dangan"))
PASSWORD = "bench-horse-battery-staple"  # noqa: S105 - a throwaway data directory's
ADMIN = "root"
MIB = 1 << 20


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``dangan serve`` in a fresh data directory, started by ``with`` and stopped after.

    :param env: extra ``DANGAN_*`` settings (every other ``DANGAN_*`` of the caller is dropped).
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="dangan-bench-"))
        self.data = self.tmp / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
        self.env.update(env or {})
        # The server's temporary directory (where intake receives uploads) on the same disk as
        # the data, never a RAM disk: its pages would not show in the process's RSS.
        (self.tmp / "tmp").mkdir()
        self.env["TMPDIR"] = str(self.tmp / "tmp")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.tmp / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def __enter__(self) -> Server:
        pw = self.tmp / "pw"
        pw.write_text(PASSWORD + "\n")
        base = [DANGAN, "--data-dir", str(self.data)]
        subprocess.run(  # noqa: S603 - our own dangan, fixed arguments
            [*base, "init", "--admin", ADMIN, "--password-file", str(pw)],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own dangan, fixed arguments
                [*base, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dangan serve stopped:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("dangan serve did not answer within 120 s")
            time.sleep(0.2)
        self.token = self.sign_in(ADMIN, PASSWORD)
        return self

    def add_user(self, name: str, role: str) -> str:
        """Add a user with ``role`` (as the admin) and return a token signed in as them."""
        httpx.post(
            f"{self.url}/api/v1/users",
            json={"name": name, "role": role, "password": PASSWORD},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        ).raise_for_status()
        return self.sign_in(name, PASSWORD)

    def sign_in(self, name: str, password: str) -> str:
        resp = httpx.post(
            f"{self.url}/api/v1/auth/token",
            data={"username": name, "password": password},
            timeout=30,
        )
        resp.raise_for_status()
        token: str = resp.json()["access_token"]
        return token

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server is not started")
        return self.process.pid

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from ``/proc/PID/task/*/children``."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
    return found


class RssSampler(threading.Thread):
    """Samples the resident memory of a process and its children every ``interval`` seconds.

    ``peak_mib`` is the larger of the highest sampled sum over the process tree and the
    kernel's own high-water mark of the process itself (``VmHWM``, which catches a peak
    between two samples). The high-water mark is reset when sampling starts (``clear_refs``),
    so what the server did before (starting, hashing a password at sign-in) is not counted.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.start_kib = _status_kib(pid, "VmRSS")
        self.interval = interval
        self.peak_tree_kib = 0
        self.samples = 0
        self.processes = 1
        self._done = threading.Event()

    def start(self) -> None:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to VmRSS
        super().start()

    def run(self) -> None:
        while not self._done.is_set():
            pids = _tree(self.pid)
            self.processes = max(self.processes, len(pids))
            total = sum(_status_kib(p, "VmRSS") for p in pids)
            self.peak_tree_kib = max(self.peak_tree_kib, total)
            self.samples += 1
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    @property
    def hwm_kib(self) -> int:
        return _status_kib(self.pid, "VmHWM")

    @property
    def peak_mib(self) -> float:
        return max(self.peak_tree_kib, self.hwm_kib) / 1024
