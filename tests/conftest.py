"""Fixtures every test may use; the services themselves live in ``tests/services.py``.

- ``settings``: a :class:`dangan.config.Settings` on a temporary data directory, no env leaking in.
- ``database`` (``[sqlite]`` and ``[postgresql]``), ``sqlite_database``, ``pg_database``: a fresh,
  migrated :class:`catalog.Database` per test.
- ``pg_server`` (session): a throw-away PostgreSQL cluster; ``.create_database()`` gives a URL.
- ``s3_server`` (session): SeaweedFS S3 on loopback; ``.client()``, ``.stop()``, ``.start()``.
- ``s3_bucket``: a fresh, empty bucket on ``s3_server``.

Tests that use PostgreSQL or S3 get the ``pg`` / ``s3`` marker automatically. A missing service
skips its tests, or fails them when ``DANGAN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from api.services import Runtime, initialize
from catalog import Database, open_database
from dangan.config import Settings, load_settings
from tests.services import PostgresServer, S3Server, ServiceMissingError

# Read once, before any test's monkeypatch can clear DANGAN_* variables.
REQUIRE_SERVICES = os.environ.get("DANGAN_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}

_PG_FIXTURES = {"pg_server", "pg_database"}
_S3_FIXTURES = {"s3_server", "s3_server_b", "s3_bucket"}


def _service_missing(exc: ServiceMissingError) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {exc}", pytrace=False)
    pytest.skip(str(exc))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Before `-m` deselects: tag every test by the services its fixtures start.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _PG_FIXTURES:
            item.add_marker(pytest.mark.pg)
        if names & _S3_FIXTURES:
            item.add_marker(pytest.mark.s3)


# --- settings --------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``DANGAN_*`` variable of the developer's shell or CI reaches the code under test."""
    for name in list(os.environ):
        if name.startswith("DANGAN_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def settings(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except ServiceMissingError as exc:
        _service_missing(exc)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[Database]:
    url = pg_server.create_database()
    db = open_database(url)
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()
        pg_server.drop_database(url)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    try:
        db.migrate()
        yield db
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database(request: pytest.FixtureRequest) -> Database:
    """The catalog on each backend: the test runs once per ``[sqlite]`` / ``[postgresql]``."""
    name = "sqlite_database" if request.param == "sqlite" else "pg_database"
    db: Database = request.getfixturevalue(name)
    return db


# --- S3 --------------------------------------------------------------------------------------


_s3_servers: list[S3Server] = []


def _s3_session() -> Iterator[S3Server]:
    try:
        server = S3Server()
    except ServiceMissingError as exc:
        _service_missing(exc)
    try:
        server.start()
        _s3_servers.append(server)
        yield server
    finally:
        if server in _s3_servers:
            _s3_servers.remove(server)
        server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    yield from _s3_session()


@pytest.fixture(scope="session")
def s3_server_b() -> Iterator[S3Server]:
    """A second, independent S3 server: the other store of the dual-backup rule."""
    yield from _s3_session()


@pytest.fixture(autouse=True)
def _s3_server_back_up() -> Iterator[None]:
    """A test that stopped the S3 server leaves it running for the next one."""
    yield
    for server in _s3_servers:
        server.start()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket; removed with its contents afterwards."""
    name = s3_server.make_bucket()
    yield name
    s3_server.start()
    s3_server.remove_bucket(name)


# --- a whole runtime -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def runtime_each_backend(
    request: pytest.FixtureRequest, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Runtime]:
    """An initialised runtime (fs stores under ``tmp_path``) on each catalog backend."""
    pg: PostgresServer | None = None
    url = None
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_server")
        url = pg.create_database()
        clean_env.setenv("DANGAN_DATABASE__URL", url)
    runtime = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(runtime, admin="root", password="correct-horse-battery")
    yield runtime
    runtime.close()
    if pg is not None and url is not None:
        pg.drop_database(url)
