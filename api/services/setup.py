"""``dangan init``: the data directory, the catalog, the keyring and the first admin.

Running it again does no harm: what exists is kept and reported as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from api.services.runtime import Runtime
from api.services.vault import ensure_store
from catalog import Role, create_user, list_users, seed_business_types
from dangan.errors import ConflictError

__all__ = ["InitReport", "initialize"]

SYSTEM_ACTOR = "system"


@dataclass
class InitReport:
    """What ``init`` found or made, place by place, for the CLI to tell."""

    created: list[tuple[str, str]] = field(default_factory=list)
    existing: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, where: str | Path, *, made: bool) -> None:
        (self.created if made else self.existing).append((what, str(where)))


def _make_dir(path: Path) -> bool:
    """Create ``path`` and any missing parents as private directories (mode 0700)."""
    made = not path.exists()
    for missing in reversed([p for p in (path, *path.parents) if not p.exists()]):
        missing.mkdir(mode=0o700)
    return made


def initialize(rt: Runtime, *, admin: str, password: str) -> InitReport:
    """Create whatever is missing. The admin is created only in a catalog that has no admin."""
    s = rt.settings
    report = InitReport()
    report.add("data directory", s.data_dir, made=_make_dir(s.data_dir))
    for name, store in (("primary", s.vault.primary), ("replica", s.vault.replica)):
        if store.kind == "fs" and store.path is not None:
            report.add(f"vault {name} store", store.path, made=_make_dir(store.path))
        else:
            made = ensure_store(store)
            report.add(f"vault {name} store", f"s3 {store.endpoint}/{store.bucket}", made=made)
    report.add("search index", s.index_dir, made=_make_dir(s.index_dir))

    if s.database.url is None:
        # The catalog holds students' names: readable by the service's user alone. SQLite
        # gives its -wal and -shm files the database file's mode.
        catalog_file = s.data_dir / "catalog.sqlite"
        os.close(os.open(catalog_file, os.O_CREAT | os.O_WRONLY, 0o600))
    db = rt.db
    fresh = "alembic_version" not in db.table_names()
    db.migrate()
    where = "PostgreSQL" if db.dialect == "postgresql" else s.data_dir / "catalog.sqlite"
    report.add(f"catalog (schema {db.current_revision()})", where, made=fresh)

    report.add("keyring", s.vault.keyring_path or "DANGAN_KEYRING", made=_ensure_keyring(rt))

    with db.write() as session:
        seed_business_types(session, actor=SYSTEM_ACTOR)
        admins = list_users(session, role=Role.admin)
        if admins:
            report.add("admin", ", ".join(u.name for u in admins), made=False)
        else:
            try:
                create_user(
                    session, name=admin, role=Role.admin, password=password, actor=SYSTEM_ACTOR
                )
            except ConflictError:
                raise ConflictError(
                    f"user {admin!r} exists but is not an admin; choose another --admin name"
                ) from None
            report.add("admin", admin, made=True)
    return report


def _ensure_keyring(rt: Runtime) -> bool:
    """Create the keyring file (mode 0600) unless one is configured or present."""
    s = rt.settings
    if s.keyring is not None:
        return False
    path = s.vault.keyring_path
    if path is None or path.exists():
        return False
    from vault import create_keyring_file

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_keyring_file(path)
    os.chmod(path, 0o600)
    return True
