"""Catalog backups in the vault: an encrypted snapshot in both stores, found by name alone.

A backup is two objects (``docs/vault-format.md``, "Catalog snapshots"):

- the *data*: the snapshot file (SQLite database or ``pg_dump`` custom-format archive) as a
  plain vault object, encrypted with its own data key;
- the *manifest*: a sealed object (it carries its own wrapped key, so the stores and the
  keyring alone open it) holding what the snapshot is (time, database kind, tool, schema
  revision, the audit trail's head at the snapshot, sizes and SHA-256s) and the data's
  wrapped key.

Their ids are 64 hex digits, ``cb00`` (manifest) or ``cb01`` (data) ‖ the UTC time as 20
decimal digits (``YYYYMMDDhhmmssffffff``) ‖ the same 40 random hex digits, so listing a store
finds and orders the backups without reading them, and pruning needs no key. Record objects
have 32-digit ids and never look like these.

The snapshot's plaintext exists only in a private temporary directory (mode 0700) that is
wiped in ``finally``, as long as the dump and the encryption take. Nothing is logged but ids,
sizes and times.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from catalog import Database, SnapshotFacts, dump_catalog
from dangan.errors import CorruptDataError, DanganError, NotFoundError, StoreUnavailableError
from vault import CHUNK, STORES, Vault, WrappedKey

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

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "dangan-catalog-snapshot"
MANIFEST_VERSION = 1
_MANIFEST_TAG, _DATA_TAG = "cb00", "cb01"
_SNAPSHOT_ID = re.compile(r"cb00(\d{20})[0-9a-f]{40}")


class SnapshotData(BaseModel):
    """The data object: its id, wrapped key and fixity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    object_id: str
    key_id: str
    wrapped_key: str  # base64 of WrappedKey.to_bytes(); not secret without the keyring
    size: int  # plaintext bytes (the snapshot file)
    plaintext_sha256: str
    ciphertext_size: int
    ciphertext_sha256: str
    stores: list[str]  # the stores the copy was written to and verified in
    # The digest of both hashes (the data object's suite's); absent in older manifests.
    digest_algorithm: Literal["sha256", "sm3"] = "sha256"

    def data_key(self) -> WrappedKey:
        return WrappedKey.from_base64(self.wrapped_key, self.object_id)


class SnapshotManifest(BaseModel):
    """What a catalog backup is. ``snapshot_id`` is the manifest's object id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["dangan-catalog-snapshot"]
    version: Literal[1]
    snapshot_id: str
    taken_at: dt.datetime
    backend: Literal["sqlite", "postgresql"]
    file_format: Literal["sqlite", "pg_dump-custom"]
    tool: str
    dangan_version: str
    schema_revision: str | None
    audit_head_id: int | None
    audit_head_hash: str | None
    records: int
    audit_events: int
    data: SnapshotData


@contextlib.contextmanager
def private_dir() -> Iterator[Path]:
    """A fresh directory only this user can enter, removed with everything in it afterwards."""
    path = Path(tempfile.mkdtemp(prefix="dangan-backup-"))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _new_ids(now: dt.datetime) -> tuple[str, str]:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    tail = secrets.token_hex(20)
    return f"{_MANIFEST_TAG}{stamp}{tail}", f"{_DATA_TAG}{stamp}{tail}"


def _data_id(snapshot_id: str) -> str:
    return _DATA_TAG + snapshot_id[len(_MANIFEST_TAG) :]


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(CHUNK):
            yield piece


def snapshot_ids(vault: Vault) -> list[str]:
    """Every backup's id found in either store, newest first (names only: keyless).

    :raises StoreUnavailableError: neither store can be listed.
    """
    found: set[str] = set()
    reached = 0
    problems: list[str] = []
    for name in STORES:
        try:
            found.update(i for i in vault.stores[name].list() if _SNAPSHOT_ID.fullmatch(i))
        except StoreUnavailableError as exc:
            problems.append(f"{name}: {exc.message}")
            continue
        reached += 1
    if not reached:
        raise StoreUnavailableError(f"no store could be listed ({'; '.join(problems)})")
    return sorted(found, reverse=True)


def take_snapshot(
    db: Database,
    vault: Vault,
    *,
    dangan_version: str,
    pg_bin_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> SnapshotManifest:
    """Snapshot the catalog, encrypt it into both stores and write its manifest.

    The plaintext file lives in a private temporary directory wiped before this returns.
    If the manifest cannot be written, the data object is removed again.

    :raises StoreUnavailableError: the database, the dump tool or both stores failed.
    :raises DependencyMissingError: ``pg_dump`` is not installed.
    :raises KeyringError: no usable keyring.
    """
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    manifest_id, data_id = _new_ids(at)
    with private_dir() as tmp:
        path = tmp / "catalog.snapshot"
        facts: SnapshotFacts = dump_catalog(db, path, pg_bin_dir=pg_bin_dir)
        written = vault.write(data_id, _file_chunks(path))
        path.unlink()
    manifest = SnapshotManifest(
        format=MANIFEST_FORMAT,
        version=MANIFEST_VERSION,
        snapshot_id=manifest_id,
        taken_at=at,
        backend=facts.backend,
        file_format=facts.format,
        tool=facts.tool,
        dangan_version=dangan_version,
        schema_revision=facts.schema_revision,
        audit_head_id=facts.audit_head.id if facts.audit_head else None,
        audit_head_hash=facts.audit_head.hash if facts.audit_head else None,
        records=facts.records,
        audit_events=facts.audit_events,
        data=SnapshotData(
            object_id=data_id,
            key_id=written.wrapped_key.key_id,
            wrapped_key=base64.b64encode(written.wrapped_key.to_bytes()).decode("ascii"),
            size=written.plaintext_size,
            plaintext_sha256=written.plaintext_sha256,
            ciphertext_size=written.ciphertext_size,
            ciphertext_sha256=written.ciphertext_sha256,
            stores=[n for n, c in written.copies.items() if c.ok],
            digest_algorithm=written.algorithm,
        ),
    )
    body = manifest.model_dump_json().encode("utf-8")
    try:
        vault.write_sealed(manifest_id, [body])
    except BaseException:
        with contextlib.suppress(DanganError):
            vault.delete_object(data_id)
        raise
    log.info(
        "catalog snapshot written",
        extra={
            "event": "catalog_backup",
            "object_id": manifest_id,
            "size": written.plaintext_size,
            "stores_ok": len(manifest.data.stores),
        },
    )
    return manifest


def read_manifest(vault: Vault, snapshot_id: str) -> SnapshotManifest:
    """Open a backup's manifest (from either copy).

    :raises NotFoundError: neither store has it.
    :raises KeyringError: its key is not in the keyring (another keyring, or a retired key).
    :raises CorruptDataError: no copy opens, or it is not a catalog snapshot's manifest.
    :raises StoreUnavailableError: no store holding it could be reached.
    """
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise NotFoundError(f"{snapshot_id} is not a catalog backup's id")
    with vault.read_sealed(snapshot_id) as reader:
        body = b"".join(reader)
    try:
        manifest = SnapshotManifest.model_validate(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        raise CorruptDataError(f"object {snapshot_id}: not a catalog backup manifest") from None
    if manifest.snapshot_id != snapshot_id or manifest.data.object_id != _data_id(snapshot_id):
        raise CorruptDataError(f"object {snapshot_id}: the manifest names another backup")
    return manifest


def fetch_snapshot(vault: Vault, manifest: SnapshotManifest, dest: Path) -> Path:
    """Decrypt a backup's snapshot file into ``dest`` (mode 0600), checked against the
    manifest's sizes and hashes; a bad copy is read around. Put ``dest`` in
    :func:`private_dir`: it is the catalog in plaintext.

    :raises CorruptDataError: no copy checks out.
    :raises NotFoundError: neither store has the data object.
    :raises KeyringError: its key is not in the keyring.
    """
    data = manifest.data
    reader = vault.read(
        data.object_id,
        data.data_key(),
        plaintext_sha256=data.plaintext_sha256,
        ciphertext_sha256=data.ciphertext_sha256,
        algorithm=data.digest_algorithm,
    )
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    with os.fdopen(fd, "wb") as out, reader:
        for piece in reader:
            out.write(piece)
            size += len(piece)
    if size != data.size:
        raise CorruptDataError(f"object {data.object_id}: size differs from the manifest's")
    return dest


def prune_snapshots(vault: Vault, keep: int) -> list[str]:
    """Delete every backup but the newest ``keep`` (both objects, both stores); keyless.

    :returns: the ids of the backups deleted.
    :raises StoreUnavailableError: a store could not be reached for a deletion (the backups
        not yet deleted stay; the next run deletes them).
    """
    if keep < 1:
        raise ValueError("keep at least one backup")
    doomed = snapshot_ids(vault)[keep:]
    for snapshot_id in doomed:
        # The data first: a manifest without data is an obvious leftover; data without a
        # manifest is an object nobody can name.
        vault.delete_object(_data_id(snapshot_id))
        vault.delete_object(snapshot_id)
        log.info(
            "catalog snapshot pruned",
            extra={"event": "catalog_backup_pruned", "object_id": snapshot_id},
        )
    return doomed
