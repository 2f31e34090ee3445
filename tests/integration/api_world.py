"""A small real archive behind the HTTP API, for the API's tests.

One :class:`World` per test module: a Runtime on a temporary data directory (SQLite, two real
``fs`` stores, a real keyring), one user per role, and two single-page scans from the corpus,
an internal record and a contract (合同) record, run through the real queue (OCR included)
until both are ``archived``. The archive is built once per session and copied for each world.
Tests speak to it through FastAPI's ``TestClient``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Runtime, ingest, initialize
from api.services.auth import LoginThrottle
from catalog import NewRecord, RecordStatus, Role, create_user, get_record, run_one
from dangan.config import load_settings
from tests.corpus import scan

PASSWORD = "correct-horse-battery"
INTERNAL_SCAN = "IMG_2199.png"  # 学籍变更, one page, 万沐
CONTRACT_SCAN = "scan_3217.jpg"  # 合同, one page
ROLES = tuple(Role)


@dataclass
class World:
    rt: Runtime
    client: TestClient
    internal: str  # archive codes
    contract: str
    tokens: dict[Role, str] = field(default_factory=dict)

    def headers(self, role: Role | None) -> dict[str, str]:
        if role is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def user_name(role: Role) -> str:
    return f"{role.value}1"


def run_queue(rt: Runtime, *, max_jobs: int = 200) -> None:
    """Run queued jobs in this process until none is runnable."""
    for _ in range(max_jobs):
        if run_one(rt.db, "test", rt, lease_seconds=120) is None:
            return
    raise AssertionError("the queue did not drain")


def token_for(client: TestClient, name: str, password: str = PASSWORD) -> str:
    resp = client.post("/api/v1/auth/token", data={"username": name, "password": password})
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def _runtime(data: Path) -> Runtime:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DANGAN_"):
                mp.delenv(name)
        return Runtime(load_settings(data_dir=data))


# The archive is built once per test session (OCR is the slow part) and each world gets a
# copy of its data directory: catalog, both stores, index, keyring. Worlds never share state.
_TEMPLATE: tuple[Path, str, str] | None = None


def _template() -> tuple[Path, str, str]:
    global _TEMPLATE
    if _TEMPLATE is not None:
        return _TEMPLATE
    internal_scan, contract_scan = scan(INTERNAL_SCAN), scan(CONTRACT_SCAN)
    root = Path(tempfile.mkdtemp(prefix="dangan-world-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    rt = _runtime(root / "data")
    try:
        initialize(rt, admin=user_name(Role.admin), password=PASSWORD)
        with rt.db.write() as session:
            for role in ROLES:
                if role is not Role.admin:
                    create_user(
                        session, name=user_name(role), role=role, password=PASSWORD, actor="test"
                    )
        internal = ingest(
            rt,
            internal_scan,
            NewRecord(business_type="学籍变更", year=2023, student_name="万沐"),
            actor="test",
        )
        contract = ingest(
            rt, contract_scan, NewRecord(business_type="合同", year=2023), actor="test"
        )
        run_queue(rt)
        with rt.db.read() as session:
            for code in (internal.archive_code, contract.archive_code):
                assert get_record(session, code).status is RecordStatus.archived
    finally:
        rt.close()
    _TEMPLATE = (root / "data", internal.archive_code, contract.archive_code)
    return _TEMPLATE


@contextmanager
def world(tmp: Path, *, throttle: LoginThrottle | None = None) -> Iterator[World]:
    template, internal, contract = _template()
    shutil.copytree(template, tmp / "data")
    rt = _runtime(tmp / "data")
    try:
        app = create_app(rt, login_throttle=throttle)
        with TestClient(app) as client:
            w = World(rt, client, internal, contract)
            for role in ROLES:
                w.tokens[role] = token_for(client, user_name(role))
            yield w
    finally:
        rt.close()


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in_browser(w: World, role: Role, *, lang: str = "en") -> TestClient:
    """A browser of its own (its own cookie jar) signed in to the pages as the role's user."""
    client = TestClient(w.client.app, cookies={"dangan_lang": lang})
    form = client.get("/login")
    assert form.status_code == 200
    found = _CSRF_INPUT.search(form.text)
    assert found is not None
    signed_in = client.post(
        "/login",
        data={
            "username": user_name(role),
            "password": PASSWORD,
            "csrf_token": found.group(1),
            "next": "/records",
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/records"
    return client
