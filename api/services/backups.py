"""Catalog backups as a service: ``dangan backup`` and the ``backup.catalog`` job.

Each backup snapshots the catalog, encrypts it into both stores (``backup.catalog_backup``),
deletes the backups older than the newest ``backup.keep`` and leaves one ``catalog.backup``
event. That event comes after the snapshot, so the snapshot itself never holds it: a restore
starts from the trail as it was at the snapshot (the manifest names its head).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from api.services.runtime import Runtime, job_runtime, worker_actor
from backup import SnapshotManifest, prune_snapshots, snapshot_ids, take_snapshot
from catalog import JobContext, record_event, register
from dangan import __version__
from dangan.errors import StoreUnavailableError

__all__ = ["BACKUP_CATALOG", "BackupPayload", "BackupReport", "list_backups", "run_backup"]

log = logging.getLogger(__name__)

BACKUP_CATALOG = "backup.catalog"


class BackupPayload(BaseModel):
    """The job needs nothing: the scheduler may add its own bookkeeping, which is ignored."""

    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class BackupReport:
    manifest: SnapshotManifest
    pruned: tuple[str, ...]
    prune_error: str | None  # the backups could not all be pruned (a store down): next time

    def as_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "snapshot_id": m.snapshot_id,
            "taken_at": m.taken_at.isoformat(),
            "backend": m.backend,
            "file_format": m.file_format,
            "tool": m.tool,
            "schema_revision": m.schema_revision,
            "audit_head": {"id": m.audit_head_id, "hash": m.audit_head_hash},
            "records": m.records,
            "audit_events": m.audit_events,
            "size": m.data.size,
            "sha256": m.data.plaintext_sha256,
            "stored_size": m.data.ciphertext_size,
            "stores": m.data.stores,
            "pruned": list(self.pruned),
            "prune_error": self.prune_error,
        }


def run_backup(rt: Runtime, *, actor: str) -> BackupReport:
    """Back the catalog up into both stores, keep the newest ``backup.keep``, audit it.

    :raises StoreUnavailableError: the database, ``pg_dump`` or both stores failed.
    :raises DependencyMissingError: ``pg_dump`` is not installed.
    :raises KeyringError: the keyring cannot be loaded.
    """
    db = rt.require_initialised()
    cfg = rt.settings.backup
    manifest = take_snapshot(db, rt.vault, dangan_version=__version__, pg_bin_dir=cfg.pg_bin_dir)
    pruned: list[str] = []
    prune_error = None
    try:
        pruned = prune_snapshots(rt.vault, cfg.keep)
    except StoreUnavailableError as exc:
        prune_error = exc.message
        log.warning(
            "old catalog backups not pruned",
            extra={"event": "catalog_backup_prune_failed", "reason": exc.message},
        )
    report = BackupReport(manifest, tuple(pruned), prune_error)
    with db.write() as session:
        record_event(
            session,
            actor=actor,
            action="catalog.backup",
            target=f"snapshot:{manifest.snapshot_id}",
            detail={
                "audit_head_id": manifest.audit_head_id,
                "records": manifest.records,
                "size": manifest.data.size,
                "sha256": manifest.data.plaintext_sha256,
                "stores": manifest.data.stores,
                "pruned": pruned,
            },
        )
    return report


def list_backups(rt: Runtime) -> list[str]:
    """The ids of the backups in the stores, newest first (names only, keyless)."""
    return snapshot_ids(rt.vault)


@register(BACKUP_CATALOG, BackupPayload)
def backup_catalog(ctx: JobContext[Any], payload: BackupPayload) -> None:
    """Take a catalog backup (the scheduler queues this; a retry takes a fresh one)."""
    run_backup(job_runtime(ctx, "backup"), actor=worker_actor(ctx))
