"""What an entry point builds once: the settings, the catalog database and the vault, each
opened lazily."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from api.services.vault import (
    KeyringStamp,
    build_vault,
    keyring_stamp,
    load_configured_keyring,
)
from catalog import Database, JobContext, JobInfo, enqueue, open_database
from dangan.config import Settings
from dangan.errors import StoreUnavailableError
from indexer import SearchIndex
from vault import Vault

__all__ = ["Runtime", "job_runtime", "worker_actor"]


@dataclass
class Runtime:
    settings: Settings
    _db: Database | None = field(default=None, init=False, repr=False)
    _vault: Vault | None = field(default=None, init=False, repr=False)
    _keyring_stamp: KeyringStamp = field(default=None, init=False, repr=False)
    _index: SearchIndex | None = field(default=None, init=False, repr=False)

    @property
    def db(self) -> Database:
        """The catalog, opened on first use. :raises StoreUnavailableError: not initialised."""
        if self._db is None:
            self._db = open_database(
                self.settings.database_url,
                pool_size=self.settings.database.pool_size,
                audit_digest=self.settings.crypto.digest,
            )
        return self._db

    @property
    def vault(self) -> Vault:
        """Both stores and the keyring, built on first use; the keyring is reloaded whenever
        the keyring file has changed since it was loaded (see :meth:`fresh_vault`).

        :raises KeyringError: the keyring is missing, too open or malformed.
        """
        return self.fresh_vault()

    def fresh_vault(self) -> Vault:
        """The vault, its keyring reloaded first if another process saved the keyring file.

        A long-running process (``dangan serve``, ``dangan worker``) keeps one vault; without
        this it would go on wrapping new data keys under a key that ``dangan keys rotate`` and
        ``keys retire`` in another process have since removed, and those records would be
        unreadable after a restart. Every vault write goes through here (``rt.vault``); the
        check is one ``stat`` of the keyring file (inode, size, mtime).

        :raises KeyringError: the keyring is missing, too open or malformed.
        """
        if self._vault is None:
            stamp = keyring_stamp(self.settings)  # before loading: a later save is noticed
            self._vault = build_vault(self.settings)
            self._keyring_stamp = stamp
            return self._vault
        stamp = keyring_stamp(self.settings)
        if stamp != self._keyring_stamp:
            self._vault.keyring = load_configured_keyring(self.settings)
            self._keyring_stamp = stamp
        return self._vault

    @property
    def index(self) -> SearchIndex:
        """The search index under ``index_dir``, opened (or created empty) on first use."""
        if self._index is None:
            self._index = SearchIndex.open(self.settings.index_dir)
        return self._index

    def require_initialised(self) -> Database:
        embedded = self.settings.database.url is None
        if embedded and not (self.settings.data_dir / "catalog.sqlite").exists():
            raise StoreUnavailableError(
                f"no dangan catalog at {self.settings.data_dir}; run `dangan init` first"
            )
        db = self.db
        if "audit_events" not in db.table_names():
            raise StoreUnavailableError(
                f"no dangan catalog at {self.settings.data_dir}; run `dangan init` first"
            )
        return db

    def enqueue(
        self,
        session: Any,
        kind: str,
        payload: Mapping[str, Any] | BaseModel,
        *,
        key: str,
        actor: str,
        priority: int = 100,
    ) -> JobInfo:
        """Queue a job in the caller's transaction with the configured retry budget.

        Services enqueue through here so that ``worker.max_attempts`` applies to every job.

        :param priority: lower runs first (``catalog.enqueue``'s default, 100).
        """
        return enqueue(
            session,
            kind,
            payload,
            idempotency_key=key,
            actor=actor,
            max_attempts=self.settings.worker.max_attempts,
            priority=priority,
        )

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None


def job_runtime(ctx: JobContext[Any], jobs: str) -> Runtime:
    """The :class:`Runtime` a worker runs ``jobs`` (``"vault"``, ``"pipeline"``, ...) with.

    :raises TypeError: the worker was started with other services.
    """
    if not isinstance(ctx.services, Runtime):
        raise TypeError(f"{jobs} jobs need the api Runtime as the worker's services")
    return ctx.services


def worker_actor(ctx: JobContext[Any]) -> str:
    """The audit actor for what a worker does (the column holds 64 characters)."""
    return f"worker:{ctx.worker_id}"[:64]
