"""backup: catalog backups into the vault (and, from other modules, replication and repair).

``catalog_backup`` snapshots the catalog, encrypts it into both stores and finds, reads and
prunes the snapshots there by name alone; the restore that rebuilds a catalog from them and
the records' sidecars is ``api.services.restore``.
"""

from backup.catalog_backup import (
    MANIFEST_FORMAT,
    SnapshotData,
    SnapshotManifest,
    fetch_snapshot,
    private_dir,
    prune_snapshots,
    read_manifest,
    snapshot_ids,
    take_snapshot,
)

__all__ = [
    "MANIFEST_FORMAT",
    "SnapshotData",
    "SnapshotManifest",
    "fetch_snapshot",
    "private_dir",
    "prune_snapshots",
    "read_manifest",
    "snapshot_ids",
    "take_snapshot",
]
