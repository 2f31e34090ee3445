"""The catalog's database: engine, sessions, and schema migrations.

SQLite (embedded default) and PostgreSQL (production) behave alike from the outside:
- a write transaction on SQLite starts with ``BEGIN IMMEDIATE``, so concurrent writers queue
  on the database lock instead of failing half-way (read-modify-write such as the audit chain
  and code counters stay serial); read-only sessions start a plain deferred transaction;
- driver errors that mean "cannot reach the database" become ``StoreUnavailableError``.
Never log the URL: it may carry a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from catalog.audit import AUDIT_DIGESTS
from dangan.errors import StoreUnavailableError

__all__ = ["Database", "open_database"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """An engine and its session factory. Create one per process with :func:`open_database`.

    :param audit_digest: the digest new audit events are hashed with (``sha256`` or ``sm3``);
        events already written keep their own (``catalog.audit``).
    :raises ValueError: an unknown digest.
    """

    def __init__(self, engine: Engine, *, audit_digest: str = "sha256") -> None:
        if audit_digest not in AUDIT_DIGESTS:
            raise ValueError(f"unknown audit digest {audit_digest!r}")
        self.engine = engine
        self.audit_digest = audit_digest
        self._sessions = sessionmaker(
            engine, expire_on_commit=False, info={"audit_digest": audit_digest}
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction: committed on success, rolled back on error."""
        with _unavailable_as_error(), self._sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only (never takes the SQLite write lock)."""
        with (
            _unavailable_as_error(),
            self._sessions(bind=self.engine.execution_options(dangan_readonly=True)) as session,
            session.begin(),
        ):
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        with _unavailable_as_error(), self.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with _unavailable_as_error(), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def table_names(self) -> list[str]:
        with _unavailable_as_error():
            return inspect(self.engine).get_table_names()

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("catalog") / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


@contextlib.contextmanager
def _unavailable_as_error() -> Iterator[None]:
    try:
        yield
    except (OperationalError, PoolTimeoutError) as exc:
        if _is_connect_failure(exc):
            raise StoreUnavailableError("the catalog database cannot be reached") from exc
        raise


def _is_connect_failure(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "unable to open database",
            "connection timeout",
            "server closed the connection",
            "no such host",
            "name or service not known",
            "queuepool limit",
            "the database system is",
        )
    )


def open_database(
    url: str, *, pool_size: int = 5, echo: bool = False, audit_digest: str = "sha256"
) -> Database:
    """Open (not create) the catalog database at ``url``.

    :param url: a SQLAlchemy URL; ``postgresql://`` uses psycopg 3.
    :param audit_digest: the digest new audit events are hashed with (:class:`Database`).
    :raises StoreUnavailableError: when the SQLite file's directory does not exist.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        db_file = parsed.database
        if db_file and db_file != ":memory:" and not Path(db_file).parent.is_dir():
            raise StoreUnavailableError("the catalog's directory does not exist")
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return Database(engine, audit_digest=audit_digest)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so that BEGIN is ours to issue.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("dangan_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
