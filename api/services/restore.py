"""Disaster recovery: rebuild the catalog and the index from the two stores and the keyring.

``restore_from_vault`` loads the newest catalog backup that opens (``backup``), brings it up
to date from the records' sidecars (``api.services.recovery``: records created or changed
after the snapshot; records disposed of after it, from their tombstones), records a
``catalog.restore`` event and rebuilds the search index from the encrypted OCR text. The
audit events written between the snapshot and the disaster are not in any store and are lost;
the trail goes on from the snapshot's head, with one ``record.recover`` event per record
brought back from its sidecar or its tombstone.

What it must never do: overwrite a catalog that holds anything unless told to (``force``),
clear one before a snapshot has been decrypted and checked, or leave the snapshot's plaintext
outside a private temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.services.pipeline import OCR_RASTERIZE
from api.services.recovery import SidecarDoc, SidecarObject, TombstoneDoc, read_sidecars
from api.services.runtime import Runtime
from api.services.search import rebuild_index
from api.services.vault import build_vault
from backup import SnapshotManifest, fetch_snapshot, private_dir, read_manifest, snapshot_ids
from catalog import (
    DisposalFacts,
    NewCopy,
    ObjectRole,
    PageState,
    RecoveredObject,
    RecoveredPage,
    RecoveredRecord,
    RecoveredTombstone,
    SecurityClass,
    chain_head,
    clear_catalog,
    clear_decision,
    get_decision,
    get_record,
    is_catalog_empty,
    known_objects,
    list_users,
    live_sidecar_ids,
    load_catalog,
    open_database,
    record_event,
    recover_disposal,
    recover_record,
    set_decision,
)
from dangan.config import Settings
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    InvalidInputError,
    KeyringError,
    NotFoundError,
    StoreUnavailableError,
)
from ocr.inspect import sniff_media_type
from vault import MAGIC_SEALED, STORES, Vault, WrappedKey, new_hash, read_back

__all__ = ["RestoreReport", "restore_from_vault"]

log = logging.getLogger(__name__)

_RESTORE_ACTOR = "system"
_LENGTH = struct.Struct(">H")


@dataclass
class RestoreReport:
    """What a restore found and did; ``as_dict`` is the ``--json`` form."""

    snapshot: SnapshotManifest
    skipped_snapshots: list[tuple[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    disposed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    sidecar_problems: list[tuple[str, str]] = field(default_factory=list)
    indexed: int = 0
    audit_head_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.sidecar_problems

    def as_dict(self) -> dict[str, Any]:
        m = self.snapshot
        return {
            "snapshot": {
                "id": m.snapshot_id,
                "taken_at": m.taken_at.isoformat(),
                "backend": m.backend,
                "tool": m.tool,
                "schema_revision": m.schema_revision,
                "audit_head": {"id": m.audit_head_id, "hash": m.audit_head_hash},
                "records": m.records,
                "audit_events": m.audit_events,
            },
            "skipped_snapshots": [{"id": i, "reason": r} for i, r in self.skipped_snapshots],
            "records_created": self.created,
            "records_updated": self.updated,
            "records_requeued": self.requeued,
            "records_disposed": self.disposed,
            "records_missing_from_stores": self.missing,
            "sidecar_problems": [{"object_id": i, "reason": r} for i, r in self.sidecar_problems],
            "indexed": self.indexed,
            "audit_head_id": self.audit_head_id,
            "lost": "audit events written after the snapshot and before the restore",
        }


def _open_newest(
    vault: Vault, tmp: Path, report_skip: Callable[[str, str], None]
) -> tuple[SnapshotManifest, Path]:
    """The newest backup whose manifest and data open and check; older ones are tried when a
    newer one is damaged in both stores. A keyring that opens none is no damage: it raises."""
    ids = snapshot_ids(vault)
    if not ids:
        raise NotFoundError("no catalog backup in either store (run `dangan backup` first)")
    for snapshot_id in ids:
        try:
            manifest = read_manifest(vault, snapshot_id)
            path = fetch_snapshot(vault, manifest, tmp / snapshot_id)
        except KeyringError as exc:
            raise KeyringError(
                f"catalog backup {snapshot_id} does not open with this keyring "
                f"({exc.message}); is it the archive's keyring?"
            ) from exc
        except (CorruptDataError, NotFoundError) as exc:
            report_skip(snapshot_id, exc.message)
            with contextlib.suppress(FileNotFoundError):
                (tmp / snapshot_id).unlink()
            continue
        return manifest, path
    raise CorruptDataError("no catalog backup could be read from either store")


def restore_from_vault(
    settings: Settings,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RestoreReport:
    """Rebuild the catalog at ``settings.database_url`` and the index from the vault alone.

    :param force: clear a catalog that holds anything (after the snapshot has been read).
    :param progress: told each step's name, for a progress display.
    :raises ConflictError: the catalog is not empty and ``force`` is false.
    :raises NotFoundError: the stores hold no catalog backup.
    :raises KeyringError: the keyring does not open the backups.
    :raises CorruptDataError: no backup can be read, or the restored trail is not the one the
        manifest names.
    :raises InvalidInputError: the backup is of the other database kind.
    """
    say = progress or (lambda _step: None)
    url = settings.database_url
    if not is_catalog_empty(url) and not force:
        raise ConflictError(
            "the catalog is not empty; restore refuses to overwrite it (use --force to replace it)"
        )
    vault = build_vault(settings)
    skipped: list[tuple[str, str]] = []
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with private_dir() as tmp:
        say("reading the newest catalog backup")
        manifest, path = _open_newest(vault, tmp, lambda i, r: skipped.append((i, r)))
        wanted = "sqlite" if url.startswith("sqlite") else "postgresql"
        if manifest.backend != wanted:
            raise InvalidInputError(
                f"the newest catalog backup is of a {manifest.backend} catalog; "
                f"the configured catalog is {wanted}"
            )
        say("loading the snapshot")
        if force:
            clear_catalog(url)
        load_catalog(url, path, manifest.file_format, pg_bin_dir=settings.backup.pg_bin_dir)
    db = open_database(url, pool_size=settings.database.pool_size)
    try:
        db.migrate()  # a snapshot of an older dangan is brought to this one's schema
        with db.read() as session:
            head = chain_head(session)
    finally:
        db.dispose()
    if (head.id if head else None, head.hash if head else None) != (
        manifest.audit_head_id,
        manifest.audit_head_hash,
    ):
        raise CorruptDataError("the restored audit trail does not end at the manifest's head")
    report = RestoreReport(snapshot=manifest, skipped_snapshots=skipped)
    rt = Runtime(settings)
    try:
        say("bringing records up to date from their sidecars")
        _apply_sidecars(rt, vault, report)
        with rt.db.write() as session:
            event = record_event(
                session,
                actor=_RESTORE_ACTOR,
                action="catalog.restore",
                target=f"snapshot:{manifest.snapshot_id}",
                detail={
                    "snapshot_head_id": manifest.audit_head_id,
                    "taken_at": manifest.taken_at.isoformat(),
                    "created": len(report.created),
                    "updated": len(report.updated),
                    "disposed": len(report.disposed),
                    "missing": len(report.missing),
                    "sidecar_problems": len(report.sidecar_problems),
                    "skipped_snapshots": [i for i, _ in skipped],
                    "lost": "events after the snapshot",
                },
            )
        say("rebuilding the search index")
        report.indexed = rebuild_index(rt, actor=_RESTORE_ACTOR)
        with rt.db.read() as session:
            end = chain_head(session)
        report.audit_head_id = end.id if end else event.id
    finally:
        rt.close()
    log.info(
        "catalog restored",
        extra={
            "event": "catalog_restore",
            "object_id": manifest.snapshot_id,
            "created": len(report.created),
            "updated": len(report.updated),
        },
    )
    return report


# --- the sidecars -----------------------------------------------------------------------------


def _choose(docs: list[SidecarDoc]) -> SidecarDoc:
    """Of several sidecars of one record that the catalog does not know (an old one whose
    deletion failed beside its replacement), the one naming the most objects: the pipeline
    only ever adds objects (OCR text, access copy) to a record's sidecar."""
    return max(docs, key=lambda d: (len(d.objects), d.sidecar_id))


def _apply_sidecars(rt: Runtime, vault: Vault, report: RestoreReport) -> None:
    by_code: dict[str, list[SidecarDoc | TombstoneDoc]] = defaultdict(list)

    def problem(object_id: str, exc: DanganError) -> None:
        report.sidecar_problems.append((object_id, exc.message))

    for doc in read_sidecars(vault, on_error=problem):
        by_code[doc.archive_code].append(doc)
    all_ids = [d.sidecar_id for docs in by_code.values() for d in docs]
    # A code a key change took from a record after the snapshot: its sidecar names it.
    renamed = {
        former
        for docs in by_code.values()
        for d in docs
        if isinstance(d, SidecarDoc)
        for former in d.former_codes
    }
    with rt.db.read() as session:
        known = known_objects(session, all_ids)
        live = live_sidecar_ids(session)
    for code in sorted(live):
        if code not in by_code and code not in renamed:
            report.missing.append(code)  # disposed of after the snapshot, or lost
    decisions: list[SidecarDoc] = []
    for code in sorted(by_code):
        if any(isinstance(d, TombstoneDoc) for d in by_code[code]):
            _apply_tombstone(rt, vault, report, code, by_code[code], known)
            continue
        fresh = [
            d for d in by_code[code] if isinstance(d, SidecarDoc) and d.sidecar_id not in known
        ]
        if not fresh:
            continue  # the catalog knows this record's sidecar: unchanged since the snapshot
        doc = _choose(fresh)
        decisions.append(doc)
        try:
            rec, objects = _recovered(vault, doc)
        except DanganError as exc:
            report.sidecar_problems.append((doc.sidecar_id, exc.message))
            continue
        with rt.db.write() as session:
            outcome = recover_record(
                session, rec, objects, actor=_RESTORE_ACTOR, snapshot=report.snapshot.snapshot_id
            )
            if outcome.needs_pipeline:
                rt.enqueue(
                    session,
                    OCR_RASTERIZE,
                    {"archive_code": code},
                    key=f"ocr:{code}:recovered:{doc.sidecar_id}",
                    actor=_RESTORE_ACTOR,
                )
        if outcome.created:
            report.created.append(code)
        elif outcome.changed:
            report.updated.append(code)
        if outcome.needs_pipeline:
            report.requeued.append(code)
    # Once every record is back: the decisions' links to their applications.
    for doc in decisions:
        _apply_decision(rt, report, doc)


def _apply_decision(rt: Runtime, report: RestoreReport, doc: SidecarDoc) -> None:
    """Make the record's status-change decision link what its sidecar says (only a sidecar
    the catalog did not know: the link is what it was when that sidecar was written)."""
    link = doc.decision
    try:
        with rt.db.write() as session:
            record = get_record(session, doc.archive_code)
            now = get_decision(session, record.id)
            if link is None:
                if now is not None:
                    clear_decision(session, record.archive_code, actor=_RESTORE_ACTOR)
                return
            wanted = {**link.model_dump(mode="json"), "application": link.application}
            if now is not None and now.as_detail() == wanted:
                return
            user = link.approver_user
            if user is not None and user not in {u.name for u in list_users(session)}:
                user = None  # added after the snapshot: keep the name as written
            set_decision(
                session,
                record.archive_code,
                decision=link.decision,
                decision_date=link.decision_date,
                approver=None if user else link.approver,
                approver_user=user,
                application_code=link.application,
                application_pages=link.application_pages,
                actor=_RESTORE_ACTOR,
            )
    except DanganError as exc:
        report.sidecar_problems.append((doc.sidecar_id, f"decision link: {exc.message}"))


def _apply_tombstone(
    rt: Runtime,
    vault: Vault,
    report: RestoreReport,
    code: str,
    docs: list[SidecarDoc | TombstoneDoc],
    known: set[str],
) -> None:
    """A record the stores hold a tombstone of was disposed of: the tombstone wins over the
    snapshot and over any sidecar of the record left in a store (docs/operations.md).

    A tombstone the catalog does not know yet is written into it (``catalog.recover_disposal``:
    the record becomes, or is created as, a disposed tombstone row, its code taken). Then the
    disposal is finished in the stores: the copies of the objects it shredded, and of any old
    sidecar of the record and the objects that sidecar names, are deleted (a disposal cut short
    after its tombstone was written leaves them; a copy kept in a store is a copy that opens).
    """
    tombs = [d for d in docs if isinstance(d, TombstoneDoc)]
    fresh = [t for t in tombs if t.sidecar_id not in known]
    leftovers = [
        oid
        for d in docs
        if isinstance(d, SidecarDoc)
        for oid in (d.sidecar_id, *(o.object_id for o in d.objects))
    ]
    if fresh:
        # Several: the certificate was added (a new tombstone) and the old one's deletion
        # was cut short. The one naming the certificate, then the latest.
        tomb = max(
            fresh,
            key=lambda t: (t.disposal.certificate_id is not None, t.created_at, t.sidecar_id),
        )
        try:
            sidecar = _sidecar_object(vault, tomb)
        except DanganError as exc:
            report.sidecar_problems.append((tomb.sidecar_id, exc.message))
            return
        with rt.db.write() as session:
            outcome = recover_disposal(
                session,
                _recovered_tombstone(tomb),
                sidecar,
                actor=_RESTORE_ACTOR,
                snapshot=report.snapshot.snapshot_id,
            )
        if outcome.created or outcome.newly_disposed:
            report.disposed.append(code)
        elif outcome.changed:
            report.updated.append(code)
        leftovers += outcome.shredded
        leftovers += [t.sidecar_id for t in fresh if t is not tomb]
    for object_id in dict.fromkeys(leftovers):
        try:
            vault.delete_object(object_id)
        except StoreUnavailableError:
            log.warning(
                "copies of a disposed record remain in an unreachable store",
                extra={"event": "restore.copies_left", "object_id": object_id},
            )


def _recovered_tombstone(doc: TombstoneDoc) -> RecoveredTombstone:
    d = doc.disposal
    return RecoveredTombstone(
        archive_code=doc.archive_code,
        year=doc.year,
        business_type=doc.business_type,
        serial=doc.serial,
        security_class=SecurityClass(doc.security_class),
        student_no=doc.student_no,
        paper_location=doc.paper_location,
        created_at=doc.created_at,
        size=doc.size,
        plaintext_sha256=doc.plaintext_sha256,
        page_count=doc.pages,
        facts=DisposalFacts(
            disposed_at=d.disposed_at,
            proposal_id=d.proposal_id,
            proposed_by=d.proposed_by,
            proposed_at=d.proposed_at,
            approved_by=d.approved_by,
            approved_at=d.approved_at,
            certificate_id=d.certificate_id,
            certificate_sha256=d.certificate_sha256,
        ),
    )


def _copies(vault: Vault, obj: SidecarObject) -> tuple[NewCopy, ...]:
    """Each store's copy as the sidecar knew it, if the store has one of that size (the
    fixity cycle checks the hashes later: reading every original here would take hours)."""
    found: list[NewCopy] = []
    for store in STORES:
        known = obj.copies.get(store) or next(iter(obj.copies.values()), None)
        ok = False
        if known is not None:
            with contextlib.suppress(NotFoundError, StoreUnavailableError):
                ok = vault.stores[store].stat(obj.object_id).size == known.size
        found.append(
            NewCopy(store, ok, known.size if known else 0, known.ciphertext_sha256 if known else "")
        )
    return tuple(found)


def _sealed_key(vault: Vault, object_id: str) -> WrappedKey:
    """The wrapped key a sealed object carries in front (docs/vault-format.md, "Sealed
    objects"), from the first copy that has a well-formed one bound to this object."""
    for store in STORES:
        head = bytearray()
        with (
            contextlib.suppress(NotFoundError, StoreUnavailableError),
            vault.stores[store].open(object_id) as stream,
        ):
            for chunk in stream:
                head.extend(chunk)
                if len(head) >= len(MAGIC_SEALED) + _LENGTH.size + 512:
                    break
        start = len(MAGIC_SEALED) + _LENGTH.size
        if len(head) < start or bytes(head[: len(MAGIC_SEALED)]) != MAGIC_SEALED:
            continue
        (length,) = _LENGTH.unpack_from(head, len(MAGIC_SEALED))
        try:
            key = WrappedKey.from_bytes(bytes(head[start : start + length]))
        except CorruptDataError:
            continue
        if key.object_id == object_id:
            return key
    raise CorruptDataError(f"object {object_id}: no copy carries its wrapped key")


def _sidecar_object(vault: Vault, doc: SidecarDoc | TombstoneDoc) -> RecoveredObject:
    key = _sealed_key(vault, doc.sidecar_id)
    with vault.read_sealed(doc.sidecar_id) as reader:
        body = b"".join(reader)  # a sidecar is a small JSON document
    # The digest the read has just checked the sealed trailer with: its suite's.
    algorithm = reader.suite.digest if reader.suite else "sha256"
    digest, size = new_hash(algorithm), len(body)
    digest.update(body)
    copies: list[NewCopy] = []
    for store in STORES:
        try:
            stored = read_back(vault.stores[store], doc.sidecar_id, algorithm)
        except (NotFoundError, StoreUnavailableError):
            copies.append(NewCopy(store, False))
            continue
        copies.append(NewCopy(store, True, stored.size, stored.sha256))
    return RecoveredObject(
        object_id=doc.sidecar_id,
        role=ObjectRole.sidecar,
        key_id=key.key_id,
        wrapped_key=key.to_bytes(),
        size=size,
        plaintext_sha256=digest.hexdigest(),
        copies=tuple(copies),
        digest_algorithm=algorithm,
    )


def _pages(vault: Vault, obj: SidecarObject) -> tuple[RecoveredPage, ...]:
    with vault.read(
        obj.object_id,
        obj.data_key(),
        plaintext_sha256=obj.plaintext_sha256,
        algorithm=obj.digest_algorithm,
    ) as reader:
        body = b"".join(reader)
    try:
        pages = json.loads(body)["pages"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise CorruptDataError(f"object {obj.object_id}: not a record's OCR text") from None
    found: list[RecoveredPage] = []
    for number, page in enumerate(pages, start=1):
        if not isinstance(page, dict):
            found.append(RecoveredPage(number=number, state=PageState.failed, needs_review=True))
            continue
        found.append(
            RecoveredPage(
                number=number,
                state=PageState.done,
                width=page.get("width"),
                height=page.get("height"),
                rotation=int(page.get("rotation") or 0),
                skew=page.get("skew"),
                confidence=page.get("confidence"),
                engine=page.get("engine"),
                needs_review=bool(page.get("needs_review")),
            )
        )
    return tuple(found)


def _content_type(vault: Vault, obj: SidecarObject) -> str | None:
    with vault.read(obj.object_id, obj.data_key()) as reader:
        head = next(reader, b"")
    try:
        return sniff_media_type(head[:4096])
    except InvalidInputError:
        return None


def _recovered(vault: Vault, doc: SidecarDoc) -> tuple[RecoveredRecord, list[RecoveredObject]]:
    by_role = {o.role: o for o in doc.objects}
    original = by_role.get(ObjectRole.original.value)
    text = by_role.get(ObjectRole.ocr_text.value)
    objects = [
        RecoveredObject(
            object_id=o.object_id,
            role=ObjectRole(o.role),
            key_id=o.key_id or o.data_key().key_id,
            wrapped_key=o.data_key().to_bytes(),
            size=o.size,
            plaintext_sha256=o.plaintext_sha256,
            copies=_copies(vault, o),
            digest_algorithm=o.digest_algorithm,
        )
        for o in doc.objects
    ]
    objects.append(_sidecar_object(vault, doc))
    rec = RecoveredRecord(
        archive_code=doc.archive_code,
        year=doc.year,
        business_type=doc.business_type,
        serial=doc.serial,
        title=doc.title,
        student_no=doc.student_no,
        student_name=doc.student_name,
        student_class=doc.student_class,
        security_class=SecurityClass(doc.security_class),
        paper_location=doc.paper_location,
        created_at=doc.created_at,
        content_type=_content_type(vault, original) if original else None,
        size=original.size if original else None,
        plaintext_sha256=original.plaintext_sha256 if original else None,
        pages=_pages(vault, text) if text else None,
        tags=doc.tags,
        notes=doc.notes,
        former_codes=doc.former_codes,
    )
    return rec, objects
