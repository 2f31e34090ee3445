"""``dangan serve`` for the browser tests: a fresh data directory, one user per role, a few
corpus scans ingested through the CLI and archived before any page is opened.

Knows nothing of pytest (``tests/browser/conftest.py`` makes the fixtures), like
``tests/services.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.corpus import CORPUS
from tests.services import ServiceMissingError, _die_with_parent, free_ports, wait_for

__all__ = [
    "CHROMIUM",
    "CONTRACT_SCAN",
    "CONTRACT_WORDS",
    "NAME_SCAN",
    "ROLES",
    "UPLOAD_SCANS",
    "LiveServer",
    "Seed",
    "find_chromium",
    "live_server",
    "read_manifest",
]

CHROMIUM = Path("/usr/bin/chromium")
DANGAN = str(Path(sys.executable).with_name("dangan"))
ROLES = ("clerk", "supervisor", "director", "auditor", "admin")

# OCR on one worker process over a couple of shared cores: a page takes seconds.
ARCHIVE_TIMEOUT = 240.0

# The scans the search scenarios need (corpus file names; every other field comes from the
# corpus manifest):
#  - a student's record whose name the OCR reads: the auditor searches that name;
#  - a contract (业务类型 合同 is contract-class): hidden from the auditor, seen by a director.
NAME_SCAN = "IMG_3214.png"
CONTRACT_SCAN = "scan_3217.jpg"
# Words only that contract holds (query q024 of the corpus).
CONTRACT_WORDS = "博源信息系统有限公司"

# What the upload scenario sends through /upload: three small scans of one student (崔丽东),
# none of them a seed (the vault refuses content it holds already).
UPLOAD_SCANS = ("IMG_8032.png", "IMG_9754.png", "IMG_4489.png")


def find_chromium() -> Path:
    """Debian's Chromium (``apt-get install chromium``; ``make system-test`` installs it).

    Playwright's own browser download needs the network; the system binary does not.
    """
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    raise ServiceMissingError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")


def read_manifest() -> dict[str, dict[str, Any]]:
    """The corpus manifest's entries by file name."""
    with (CORPUS / "manifest.jsonl").open(encoding="utf-8") as lines:
        return {entry["file"]: entry for entry in map(json.loads, lines)}


@dataclass(frozen=True)
class Seed:
    """A record ingested before the tests, with the manifest's ground truth."""

    file: str
    archive_code: str
    business_type: str
    student_name: str | None


@dataclass
class LiveServer:
    """A running ``dangan serve``; each role's user is named after the role."""

    base_url: str
    data_dir: Path
    logfile: Path
    passwords: dict[str, str]
    name_record: Seed
    contract: Seed
    manifest: dict[str, dict[str, Any]] = field(repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output (it logs no secrets, names or queries)."""
        return self.logfile.read_text(encoding="utf-8", errors="replace")[-chars:]

    def login(self, page: Page, user: str) -> None:
        """Sign in through the /login form and wait for the page it leads to."""
        page.goto(self.url("/login"))
        form = page.locator("#login-form")
        form.locator("input[name=username]").fill(user)
        form.locator("input[name=password]").fill(self.passwords[user])
        with page.expect_navigation():
            form.locator("button[type=submit]").click()

    def token(self, user: str) -> str:
        """An API access token for ``user`` (the OAuth2 password flow)."""
        body = urllib.parse.urlencode({"username": user, "password": self.passwords[user]})
        request = urllib.request.Request(  # noqa: S310 (our own loopback server)
            self.url("/api/v1/auth/token"), data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback)
            return str(json.load(resp)["access_token"])

    def record(self, code: str, token: str) -> dict[str, Any]:
        """GET /api/v1/records/CODE: the record's detail as the token's user sees it."""
        request = urllib.request.Request(  # noqa: S310 (our own loopback server)
            self.url("/api/v1/records/" + urllib.parse.quote(code)),
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback)
            detail: dict[str, Any] = json.load(resp)
        return detail

    def wait_archived(self, codes: list[str], timeout: float = ARCHIVE_TIMEOUT) -> None:
        """Return once every record is ``archived`` (stored twice, read and indexed)."""
        token = self.token("director")  # a director sees every record, contracts too

        def archived() -> None:
            for code in codes:
                status = self.record(code, token)["record"]["status"]
                assert status == "archived", f"{code} is {status}"

        wait_for(archived, timeout=timeout, what="records to be archived", errors=(AssertionError,))


def _dangan(data: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [DANGAN, "--data-dir", str(data), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dangan {args[0]} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def _ingest(data: Path, env: dict[str, str], entry: dict[str, Any]) -> Seed:
    args = ["ingest", str(CORPUS / entry["file"])]
    args += ["--type", entry["business_type"], "--year", str(entry["year"])]
    args += ["--title", entry["title"], "--paper-location", entry["paper_location"]]
    if entry["student_name"]:
        args += ["--student-name", entry["student_name"], "--student-no", entry["student_no"]]
    return Seed(
        file=entry["file"],
        archive_code=_dangan(data, env, *args).strip(),
        business_type=entry["business_type"],
        student_name=entry["student_name"],
    )


def _wait_healthy(url: str, server: subprocess.Popen[str]) -> None:
    def health() -> None:
        with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as resp:  # noqa: S310
            assert resp.status == 200

    wait_for(
        health,
        timeout=60,
        what="dangan serve to answer",
        errors=(OSError, AssertionError),
        alive=lambda: server.poll() is None,
    )


@contextlib.contextmanager
def live_server(manifest: dict[str, dict[str, Any]]) -> Iterator[LiveServer]:
    """Start ``dangan serve`` (worker embedded) on a free port; SIGTERM it at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="dangan-browser-"))
    data = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    env["DANGAN_WORKER__PROCESSES"] = "1"
    env["DANGAN_WORKER__POLL_SECONDS"] = "0.2"
    try:
        passwords = {role: f"{role}-correct-horse-battery" for role in ROLES}
        files = {role: tmp / f"{role}.pw" for role in ROLES}
        for role, password in passwords.items():
            files[role].write_text(password + "\n", encoding="utf-8")
        _dangan(data, env, "init", "--admin", "admin", "--password-file", str(files["admin"]))
        for role in ROLES:
            if role != "admin":
                _dangan(data, env, "user", "add", role, "--role", role,
                        "--password-file", str(files[role]))  # fmt: skip
        # Ingested before the server starts; its worker takes them up at once.
        name_record = _ingest(data, env, manifest[NAME_SCAN])
        contract = _ingest(data, env, manifest[CONTRACT_SCAN])

        (port,) = free_ports(1)
        logfile = tmp / "serve.log"
        with logfile.open("w", encoding="utf-8") as log:
            server = subprocess.Popen(
                [DANGAN, "--data-dir", str(data), "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                preexec_fn=_die_with_parent,  # a killed test run leaves no server behind
            )
        live = LiveServer(
            base_url=f"http://127.0.0.1:{port}",
            data_dir=data,
            logfile=logfile,
            passwords=passwords,
            name_record=name_record,
            contract=contract,
            manifest=manifest,
        )
        try:
            try:
                _wait_healthy(live.base_url, server)
                live.wait_archived([name_record.archive_code, contract.archive_code])
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n--- dangan serve log ---\n{live.log_tail()}") from exc
            yield live
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
