"""Consistent snapshots of the catalog database, and loading one into an empty database.

SQLite: the ``sqlite3`` online backup API copies the live database page by page into a new
file, consistent as of one moment while writers go on. PostgreSQL: ``pg_dump`` in custom
format, run on a snapshot exported by a ``REPEATABLE READ`` transaction of ours, so that the
audit-trail head and schema revision read in that transaction are exactly the dump's.
``pg_restore`` loads one back (in a single transaction).

The snapshot file is the catalog in plaintext: callers hand a path inside a private temporary
directory they wipe (``backup.catalog_backup``). This module never logs a URL or a password:
libpq gets the password through ``PGPASSWORD`` in the child's environment, never its argv.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url

from catalog.audit import ChainHead
from catalog.db import Database, open_database
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DependencyMissingError,
    InvalidInputError,
    StoreUnavailableError,
)

__all__ = [
    "SnapshotFacts",
    "SnapshotFormat",
    "backend_of",
    "clear_catalog",
    "dump_catalog",
    "find_pg_tool",
    "is_catalog_empty",
    "load_catalog",
]

SnapshotFormat = Literal["sqlite", "pg_dump-custom"]
# dangan's own tables: a database with other tables is not dangan's to clear.
_OWN_ROWS = ("audit_events", "records", "users")
_PG_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class SnapshotFacts:
    """What a snapshot holds, read in the same consistent view as the dump itself."""

    backend: Literal["sqlite", "postgresql"]
    format: SnapshotFormat
    tool: str  # e.g. "sqlite 3.40.1" or "pg_dump (PostgreSQL) 15.8"
    schema_revision: str | None
    audit_head: ChainHead | None
    records: int
    audit_events: int


def backend_of(url: str) -> Literal["sqlite", "postgresql"]:
    name = make_url(url).get_backend_name()
    if name == "sqlite":
        return "sqlite"
    if name in ("postgresql", "postgres"):
        return "postgresql"
    raise InvalidInputError(f"catalog backups support SQLite and PostgreSQL, not {name}")


def find_pg_tool(name: str, bin_dir: Path | None = None) -> Path:
    """Where ``pg_dump`` or ``pg_restore`` is: ``bin_dir`` if given, else ``PATH``, else the
    newest ``/usr/lib/postgresql/*/bin`` (Debian keeps the versioned tools off ``PATH``).

    :raises DependencyMissingError: not found.
    """
    if bin_dir is not None:
        tool = bin_dir / name
        if tool.is_file() and os.access(tool, os.X_OK):
            return tool
        raise DependencyMissingError(f"{name} is not in {bin_dir} (backup.pg_bin_dir)")
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)

    def major(path: str) -> int:
        version = Path(path).parent.parent.name
        return int(version) if version.isdigit() else 0

    for found in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major, reverse=True):
        return Path(found)
    raise DependencyMissingError(
        f"{name} not found (install postgresql-client, or set backup.pg_bin_dir)"
    )


def _tool_version(tool: Path) -> str:
    done = _run([str(tool), "--version"], env=None, timeout=60)
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else tool.name


def _run(
    argv: list[str], *, env: dict[str, str] | None, timeout: int
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - a fixed tool with arguments we built
            argv, capture_output=True, text=True, check=True, env=env, timeout=timeout
        )
    except FileNotFoundError as exc:
        raise DependencyMissingError(f"{argv[0]} cannot be run") from exc
    except subprocess.TimeoutExpired as exc:
        raise StoreUnavailableError(f"{Path(argv[0]).name} took longer than {timeout} s") from exc
    except subprocess.CalledProcessError as exc:
        # The tool's own last line says what went wrong; it carries no password (libpq
        # never prints one) but may name the host and database, which an operator needs.
        last = (exc.stderr or "").strip().splitlines()
        reason = last[-1] if last else f"exit {exc.returncode}"
        raise StoreUnavailableError(f"{Path(argv[0]).name} failed: {reason}") from exc


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries it."""

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    for key, value in url.query.items():
        parts[key] = value if isinstance(value, str) else value[-1]
    conninfo = " ".join(f"{k}={quote(str(v))}" for k, v in parts.items() if v not in (None, ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def _facts_from(
    conn: Connection | sqlite3.Connection,
) -> tuple[str | None, ChainHead | None, int, int]:
    def one(sql: str) -> tuple[object, ...] | None:
        if isinstance(conn, sqlite3.Connection):
            row = conn.execute(sql).fetchone()
            return None if row is None else tuple(row)
        found = conn.execute(text(sql)).first()
        return None if found is None else tuple(found)

    revision_row = one("SELECT version_num FROM alembic_version")
    head_row = one("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
    records_row = one("SELECT count(*) FROM records")
    events_row = one("SELECT count(*) FROM audit_events")
    revision = None if revision_row is None else str(revision_row[0])
    head = None if head_row is None else ChainHead(int(str(head_row[0])), str(head_row[1]))
    records = int(str(records_row[0])) if records_row else 0
    events = int(str(events_row[0])) if events_row else 0
    return revision, head, records, events


def dump_catalog(db: Database, dest: Path, *, pg_bin_dir: Path | None = None) -> SnapshotFacts:
    """Write a consistent snapshot of the catalog to ``dest`` (a new file, mode 0600).

    :raises StoreUnavailableError: the database or the dump tool failed.
    :raises DependencyMissingError: ``pg_dump`` is not installed.
    """
    url = db.engine.url
    if db.dialect == "sqlite":
        return _dump_sqlite(Path(str(url.database)), dest)
    if db.dialect == "postgresql":
        return _dump_pg(db, dest, find_pg_tool("pg_dump", pg_bin_dir))
    raise InvalidInputError(f"catalog backups support SQLite and PostgreSQL, not {db.dialect}")


def _dump_sqlite(source: Path, dest: Path) -> SnapshotFacts:
    if not source.is_file():
        raise StoreUnavailableError("the catalog database cannot be reached")
    dest.touch(mode=0o600, exist_ok=False)
    src = sqlite3.connect(source, timeout=30)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)
            # One self-contained file: no -wal beside it when it is opened again.
            out.execute("PRAGMA journal_mode=DELETE")
            revision, head, records, events = _facts_from(out)
            (check,) = out.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise CorruptDataError(f"the catalog snapshot failed its check: {check}")
        finally:
            out.close()
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"the SQLite backup failed: {exc}") from exc
    finally:
        src.close()
    return SnapshotFacts(
        backend="sqlite",
        format="sqlite",
        tool=f"sqlite {sqlite3.sqlite_version}",
        schema_revision=revision,
        audit_head=head,
        records=records,
        audit_events=events,
    )


def _dump_pg(db: Database, dest: Path, pg_dump: Path) -> SnapshotFacts:
    conninfo, env = _libpq(db.engine.url)
    tool = _tool_version(pg_dump)
    dest.touch(mode=0o600, exist_ok=False)
    engine = db.engine.execution_options(isolation_level="REPEATABLE READ")
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET TRANSACTION READ ONLY"))
        snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
        revision, head, records, events = _facts_from(conn)
        # The exported snapshot lives as long as this transaction: dump while it is open.
        _run(
            [
                str(pg_dump),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={dest}",
                f"--dbname={conninfo}",
            ],
            env=env,
            timeout=_PG_TIMEOUT_S,
        )
    return SnapshotFacts(
        backend="postgresql",
        format="pg_dump-custom",
        tool=tool,
        schema_revision=revision,
        audit_head=head,
        records=records,
        audit_events=events,
    )


def is_catalog_empty(url: str) -> bool:
    """Whether the catalog at ``url`` holds nothing worth keeping: no SQLite file, or a
    database without tables, or only dangan's tables with no user, record or audit event.

    :raises StoreUnavailableError: the database cannot be reached.
    """
    if backend_of(url) == "sqlite":
        path = Path(str(make_url(url).database))
        if not path.exists():
            return True
    db = open_database(url, pool_size=1)
    try:
        tables = set(db.table_names())
        if not tables:
            return True
        if not set(_OWN_ROWS) <= tables:
            return False
        with db.read() as session:
            return all(
                session.execute(text(f"SELECT 1 FROM {t} LIMIT 1")).first() is None  # noqa: S608 - fixed names
                for t in _OWN_ROWS
            )
    finally:
        db.dispose()


def clear_catalog(url: str) -> None:
    """Remove everything from the catalog at ``url`` before a restore: the SQLite file (and
    its -wal and -shm), or every object in a PostgreSQL database's ``public`` schema.

    :raises StoreUnavailableError: the database cannot be reached.
    """
    if backend_of(url) == "sqlite":
        path = Path(str(make_url(url).database))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    db = open_database(url, pool_size=1)
    try:
        with db.write() as session:
            session.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            session.execute(text("CREATE SCHEMA public"))
    finally:
        db.dispose()


def load_catalog(
    url: str, source: Path, fmt: SnapshotFormat, *, pg_bin_dir: Path | None = None
) -> None:
    """Load a snapshot file into the (empty) catalog at ``url``.

    :raises ConflictError: the catalog is not empty (clear it first).
    :raises InvalidInputError: the snapshot is of the other database kind.
    :raises StoreUnavailableError: the database or ``pg_restore`` failed.
    """
    backend = backend_of(url)
    wanted: SnapshotFormat = "sqlite" if backend == "sqlite" else "pg_dump-custom"
    if fmt != wanted:
        raise InvalidInputError(
            f"the snapshot is a {fmt} file; the configured catalog is {backend}"
        )
    if not is_catalog_empty(url):
        raise ConflictError("the catalog is not empty")
    if backend == "sqlite":
        _load_sqlite(Path(str(make_url(url).database)), source)
        return
    clear_catalog(url)  # an empty schema may still hold dangan's tables without rows
    conninfo, env = _libpq(make_url(url))
    pg_restore = find_pg_tool("pg_restore", pg_bin_dir)
    _run(
        [
            str(pg_restore),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(source),
        ],
        env=env,
        timeout=_PG_TIMEOUT_S,
    )


def _load_sqlite(dest: Path, source: Path) -> None:
    if not dest.parent.is_dir():
        raise StoreUnavailableError("the catalog's directory does not exist")
    clear_catalog(f"sqlite:///{dest}")
    part = dest.with_name(f".{dest.name}.restore")
    part.unlink(missing_ok=True)
    part.touch(mode=0o600)
    try:
        src = sqlite3.connect(source)
        try:
            out = sqlite3.connect(part)
            try:
                src.backup(out)
                (check,) = out.execute("PRAGMA quick_check").fetchone()
                if check != "ok":
                    raise CorruptDataError(f"the catalog snapshot failed its check: {check}")
            finally:
                out.close()
        finally:
            src.close()
        os.replace(part, dest)
    except sqlite3.Error as exc:
        raise CorruptDataError(
            f"the catalog snapshot is not a readable SQLite file: {exc}"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
