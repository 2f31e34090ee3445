"""Disaster recovery from the vault alone: the two stores and the keyring, no catalog.

Every record's sidecar is a sealed vault object (it carries its own wrapped data key) holding
the record's catalog fields and, for each of its other objects (the original), the object id,
wrapped data key, sizes and hashes; a disposed record's is its tombstone, which names no
object. :func:`read_sidecars` finds and opens every sidecar in the
stores; :func:`recover_original` decrypts an original with the wrapped key its sidecar carries
and checks it against the sidecar's hashes. Rebuilding the whole catalog from these belongs to
the backup tooling; this module proves the stores and the keyring suffice.

Nothing here logs a key, a title or a name; the documents it yields hold record fields, so
callers treat them as they treat catalog rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from api.services.sidecars import SIDECAR_FORMAT, TOMBSTONE_KIND
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    NotFoundError,
    StoreUnavailableError,
)
from vault import STORES, Vault, WrappedKey, is_sealed

__all__ = [
    "SidecarCopy",
    "SidecarDecision",
    "SidecarDoc",
    "SidecarObject",
    "TombstoneDisposal",
    "TombstoneDoc",
    "read_sidecars",
    "recover_original",
]


class SidecarCopy(BaseModel):
    """One copy of an object as the catalog knew it when the sidecar was written."""

    model_config = ConfigDict(frozen=True)

    size: int
    ciphertext_sha256: str


class SidecarObject(BaseModel):
    """One of the record's objects (the original), with what it takes to open and check it."""

    model_config = ConfigDict(frozen=True)

    object_id: str
    role: str
    key_id: str | None
    wrapped_key: str  # base64 of WrappedKey.to_bytes(); not secret without the keyring
    size: int
    plaintext_sha256: str
    copies: dict[str, SidecarCopy]
    # The digest of plaintext_sha256 and of the copies' hashes; a sidecar written before it
    # could be anything else has none (docs/vault-format.md, "Sidecars").
    digest_algorithm: Literal["sha256", "sm3"] = "sha256"

    def data_key(self) -> WrappedKey:
        """The object's wrapped data key.

        :raises CorruptDataError: it is malformed or names another object.
        """
        return WrappedKey.from_base64(self.wrapped_key, self.object_id)


class SidecarDecision(BaseModel):
    """A status-change decision's link to its application (``catalog.DecisionInfo``)."""

    model_config = ConfigDict(frozen=True)

    application: str | None  # the application's code; None: pages of the decision record
    application_pages: str | None = None
    approver: str
    approver_user: str | None = None
    decision_date: dt.date
    decision: Literal["approved", "rejected"]


class SidecarDoc(BaseModel):
    """A record's sidecar, as found in the stores (``api.services.sidecars.sidecar_document``)."""

    model_config = ConfigDict(frozen=True)

    sidecar_id: str  # the sealed object it was read from
    format: Literal["dangan-sidecar"]
    version: Literal[2]
    archive_code: str
    year: int
    business_type: str
    serial: int
    title: str
    student_no: str | None
    student_name: str | None
    student_class: str | None = None  # absent from sidecars written before it was a field
    security_class: str
    paper_location: str | None
    created_at: dt.datetime
    objects: list[SidecarObject]
    # Absent from sidecars of records without them (and from those written before them).
    tags: tuple[str, ...] = ()
    notes: str | None = None
    former_codes: tuple[str, ...] = ()
    decision: SidecarDecision | None = None

    @property
    def original(self) -> SidecarObject | None:
        return next((o for o in self.objects if o.role == "original"), None)


class TombstoneDisposal(BaseModel):
    """The disposal a tombstone records; ``None`` where the catalog did not know it (a
    disposal ordered without a proposal; the certificate, until it was issued)."""

    model_config = ConfigDict(frozen=True)

    disposed_at: dt.datetime | None
    proposal_id: int | None
    proposed_by: str | None
    proposed_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    certificate_id: str | None
    certificate_sha256: str | None


class TombstoneDoc(BaseModel):
    """A disposed record's tombstone sidecar (``api.services.sidecars.tombstone_document``):
    what its catalog row keeps, and its disposal. It names no object and holds no key."""

    model_config = ConfigDict(frozen=True)

    sidecar_id: str  # the sealed object it was read from
    format: Literal["dangan-sidecar"]
    version: Literal[2]
    kind: Literal["tombstone"]
    archive_code: str
    year: int
    business_type: str
    serial: int
    security_class: str
    student_no: str | None
    paper_location: str | None
    created_at: dt.datetime
    size: int | None
    plaintext_sha256: str | None
    pages: int
    status: Literal["disposed"]
    disposal: TombstoneDisposal


def _object_ids(vault: Vault) -> list[str]:
    """Every object id in either store, sorted; a store out of reach is skipped (the primary
    normally lists everything, the replica covers what it missed)."""
    found: set[str] = set()
    reached = 0
    problems: list[str] = []
    for name in STORES:
        try:
            found.update(vault.stores[name].list())
        except StoreUnavailableError as exc:
            problems.append(f"{name}: {exc.message}")
            continue
        reached += 1
    if not reached:
        raise StoreUnavailableError(f"no store could be listed ({'; '.join(problems)})")
    return sorted(found)


def _is_sealed(vault: Vault, object_id: str) -> bool:
    """Whether any copy that can be read starts as a sealed object does.

    Both copies are looked at: one damaged byte in a copy's magic must not make a sidecar
    look like a plain object and vanish from recovery; :meth:`Vault.read_sealed` then fails
    over from the damaged copy (or reports it when both are bad).
    """
    for name in STORES:
        with contextlib.suppress(NotFoundError, StoreUnavailableError):
            if is_sealed(vault.stores[name], object_id):
                return True
    return False


def _parse(object_id: str, body: bytes) -> SidecarDoc | TombstoneDoc | None:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptDataError(f"object {object_id}: a sealed object that is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        return None  # sealed, but not a sidecar
    model = TombstoneDoc if doc.get("kind") == TOMBSTONE_KIND else SidecarDoc
    try:
        return model.model_validate({**doc, "sidecar_id": object_id})
    except ValidationError:
        raise CorruptDataError(f"object {object_id}: a malformed sidecar") from None


def read_sidecars(
    vault: Vault, *, on_error: Callable[[str, DanganError], None] | None = None
) -> Iterator[SidecarDoc | TombstoneDoc]:
    """Find every sidecar in the stores and yield it parsed; plain objects are skipped.

    A disposed record's sidecar is its tombstone (:class:`TombstoneDoc`): it says that the
    record was disposed of, and names nothing to recover.

    :param on_error: called with the object id and the error for a sidecar that cannot be
        read (both copies bad, a retired key), and the walk goes on; without it, it raises.
    :raises StoreUnavailableError: neither store can be listed.
    :raises KeyringError: a sidecar's key is not in the keyring (unless ``on_error``).
    :raises CorruptDataError: a sidecar cannot be read from either copy (unless ``on_error``).
    """
    for object_id in _object_ids(vault):
        try:
            if not _is_sealed(vault, object_id):
                continue
            with vault.read_sealed(object_id) as reader:
                body = b"".join(reader)
            doc = _parse(object_id, body)
        except DanganError as exc:
            if on_error is None:
                raise
            on_error(object_id, exc)
            continue
        if doc is not None:
            yield doc


def recover_original(vault: Vault, sidecar: SidecarDoc | TombstoneDoc, dest: Path) -> Path:
    """Decrypt the record's original into ``dest`` with the wrapped key its sidecar carries.

    Each copy is checked against the sidecar's ciphertext hash and the plaintext against its
    SHA-256 and size; ``dest`` appears (atomically) only when everything checks.

    :raises ConflictError: the sidecar is a tombstone: the record was disposed of and its
        content destroyed; there is nothing to recover.
    :raises NotFoundError: the sidecar names no original, or neither store has it.
    :raises CorruptDataError: no copy checks out.
    :raises KeyringError: the key that wrapped it is not in the keyring.
    """
    if isinstance(sidecar, TombstoneDoc):
        raise ConflictError(
            f"record {sidecar.archive_code} was disposed of (tombstone {sidecar.sidecar_id}): "
            "its content was destroyed, there is nothing to recover"
        )
    original = sidecar.original
    if original is None:
        raise NotFoundError(f"sidecar {sidecar.sidecar_id} names no original")
    copy = original.copies.get("primary") or original.copies.get("replica")
    reader = vault.read(
        original.object_id,
        original.data_key(),
        plaintext_sha256=original.plaintext_sha256,
        ciphertext_sha256=None if copy is None else copy.ciphertext_sha256,
        algorithm=original.digest_algorithm,
    )
    dest = dest.absolute()
    # mkstemp: mode 0600, an unpredictable name, never an existing file or a symlink's target
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out, reader:
            for piece in reader:
                out.write(piece)
                size += len(piece)
            out.flush()
            os.fsync(out.fileno())
        if size != original.size:
            raise CorruptDataError(f"object {original.object_id}: size differs from the sidecar's")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
