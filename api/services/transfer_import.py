"""Open transfer packages, the import half: a bag from ``dangan export`` taken into this archive
(docs/transfer.md).

All or nothing. The bag is checked whole first (:func:`api.services.bags.check_bag`: every
SHA-256 and SM3 digest), then every record in it (its metadata, its business type and
retention here, its archive code still free here, the importer's right to create a record of
its class), before anything is written; then each record's original, OCR text and access PDF
are stored through the vault (two encrypted copies, as intake stores an upload), and one
catalog transaction creates every record with the code, dates and pages the bag gives it. If
that fails, every object written is deleted again: no record, no object, no copy is left.

The OCR text is taken from the bag, never read again, so the text matches the export's exactly;
each record is indexed at once and an ``index.record`` job (and a ``vault.sidecar`` job) is
queued in the same transaction, so a failure after the commit is made good by the worker.
Nothing here logs titles, names or text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from api.services.bags import BagFacts, check_bag
from api.services.jobs import VAULT_SIDECAR, queue_replication, write_sidecar, written
from api.services.pipeline import INDEX_RECORD, OCR_TEXT_FORMAT, OCR_TEXT_VERSION
from api.services.runtime import Runtime
from api.services.transfer_package import PlannedRecord, read_package
from catalog import (
    Action,
    ImportedObject,
    ImportedPage,
    ImportedRecord,
    ObjectRole,
    RecordInfo,
    UserInfo,
    audit_denied,
    get_business_type,
    get_record,
    import_record,
    record_event,
    require,
)
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from indexer import IndexDoc
from vault import CHUNK, WriteResult, new_object_id

__all__ = ["ImportReport", "import_bag"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    bag: Path
    export_id: str
    records: tuple[str, ...]  # the archive codes created, in the bag's order
    pages: int
    indexed: int  # indexed at once; the rest wait for the worker's index.record jobs


# --- checking it against this archive -------------------------------------------------------


def _check_here(rt: Runtime, planned: list[PlannedRecord], user: UserInfo) -> None:
    """Refuse before writing anything: a class the importer may not create, a type unknown
    here or kept for another period, a code taken here (all such codes named at once)."""
    for item in planned:
        try:
            require(user, Action.record_create, security_class=item.doc.security_class)
        except PermissionDeniedError as exc:
            with rt.db.write() as session:
                audit_denied(session, user, Action.record_create, None, error=exc)
            raise
    taken: list[str] = []
    with rt.db.read() as session:
        for item in planned:
            doc = item.doc
            try:
                btype = get_business_type(session, doc.business_type)
            except NotFoundError:
                raise InvalidInputError(
                    f"business type {doc.business_type} is unknown here: add it first "
                    f"(dangan type add {doc.business_type} --retention {doc.retention})"
                ) from None
            if not btype.active:
                raise InvalidInputError(f"business type {doc.business_type} is inactive here")
            if btype.retention.value != doc.retention:
                raise ConflictError(
                    f"business type {doc.business_type} is kept {btype.retention.value} here; "
                    f"the bag keeps it {doc.retention}"
                )
            try:
                get_record(session, doc.archive_code)
            except NotFoundError:
                continue
            taken.append(doc.archive_code)
    if taken:
        raise ConflictError(
            f"archive codes taken in this archive: {', '.join(taken)}; nothing was imported"
        )


# --- storing it -----------------------------------------------------------------------------


def _chunks(path: Path, digest: Any = None) -> Iterator[bytes]:
    """The file in :data:`vault.CHUNK` pieces, hashed on the way into ``digest`` if given."""
    with path.open("rb") as fh:
        while piece := fh.read(CHUNK):
            if digest is not None:
                digest.update(piece)
            yield piece


def _ocr_body(item: PlannedRecord) -> bytes:
    """The record's OCR text in dangan's own format (``api.services.pipeline``), with the
    bag's text for every page; word boxes do not travel (the access PDF keeps its text layer)."""
    pages: list[dict[str, Any] | None] = []
    for page, text in zip(item.doc.pages, item.texts, strict=True):
        if text is None:
            pages.append(None)
            continue
        pages.append(
            {
                "text": text,
                "words": [],
                "confidence": page.confidence or 0.0,
                "rotation": page.rotation,
                "skew": page.skew or 0.0,
                "width": page.width or 0,
                "height": page.height or 0,
                "engine": page.engine or "none",
                "needs_review": page.needs_review,
            }
        )
    doc = {
        "format": OCR_TEXT_FORMAT,
        "version": OCR_TEXT_VERSION,
        "archive_code": item.doc.archive_code,
        "pages": pages,
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _store(
    rt: Runtime, item: PlannedRecord, written_ids: list[str]
) -> tuple[list[ImportedObject], list[WriteResult]]:
    """Write the record's objects to both stores; ``written_ids`` collects them for cleanup.

    A file is hashed (SHA-256) as it streams into the vault and must still be the one its
    metadata names: the vault's own digest may be SM3, so it is not the one compared.
    """
    doc = item.doc
    parts: list[tuple[ObjectRole, Path | bytes, str | None]] = [
        (ObjectRole.original, item.directory / doc.original.file, doc.original.sha256)
    ]
    if any(t is not None for t in item.texts):
        parts.append((ObjectRole.ocr_text, _ocr_body(item), None))
    if doc.access_copy is not None:
        parts.append(
            (ObjectRole.access_copy, item.directory / doc.access_copy.file, doc.access_copy.sha256)
        )
    objects: list[ImportedObject] = []
    results: list[WriteResult] = []
    for role, source, sha256 in parts:
        object_id = new_object_id()
        digest = hashlib.sha256()
        chunks = _chunks(source, digest) if isinstance(source, Path) else [source]
        result = rt.vault.write(object_id, chunks)
        written_ids.append(object_id)
        if sha256 is not None and not hmac.compare_digest(digest.hexdigest(), sha256):
            raise CorruptDataError(f"record {doc.archive_code}: a file changed while it was stored")
        objects.append(ImportedObject(object_id, role, written(result)))
        results.append(result)
    return objects, results


def _imported(item: PlannedRecord) -> ImportedRecord:
    doc = item.doc
    return ImportedRecord(
        archive_code=doc.archive_code,
        year=doc.year,
        business_type=doc.business_type,
        title=doc.title,
        student_no=doc.student_no,
        student_name=doc.student_name,
        student_class=doc.student_class,
        security_class=doc.security_class,
        paper_location=doc.paper_location,
        created_at=doc.created_at,
        processed_at=doc.processed_at,
        needs_review=doc.needs_review,
        content_type=doc.original.media_type,
        size=doc.original.size,
        plaintext_sha256=doc.original.sha256,
        upload_name=doc.original.upload_name,
        pages=tuple(
            ImportedPage(
                number=p.number,
                state=p.state,
                width=p.width,
                height=p.height,
                rotation=p.rotation,
                skew=p.skew,
                confidence=p.confidence,
                engine=p.engine,
                needs_review=p.needs_review,
            )
            for p in doc.pages
        ),
    )


def _index_now(rt: Runtime, records: list[tuple[RecordInfo, PlannedRecord]]) -> int:
    """Index the new records from the text in hand; the queued jobs cover a failure here."""
    docs = [
        IndexDoc(
            record_id=r.id,
            archive_code=r.archive_code,
            title=r.title,
            business_type=r.business_type,
            year=r.year,
            security_class=r.security_class.value,
            student_name=r.student_name,
            student_no=r.student_no,
            student_class=r.student_class,
            paper_location=r.paper_location,
            pages=tuple(t or "" for t in item.texts),
        )
        for r, item in records
    ]
    try:
        return rt.index.add(docs)
    except DanganError as exc:
        log.warning(
            "imported records left to the index.record jobs",
            extra={"event": "transfer.index_deferred", "error": exc.code},
        )
        return 0


def import_bag(rt: Runtime, bag: Path, user: UserInfo) -> ImportReport:
    """Take a transfer package into this archive, every record with the code it had.

    :raises InvalidInputError: not a bag, not a dangan package, a business type unknown here.
    :raises CorruptDataError: the bag does not validate (a digest, a missing or extra file).
    :raises PermissionDeniedError: ``user`` may not create records of a class in it (audited).
    :raises ConflictError: an archive code in the bag is taken here, or a type is kept for
        another period here.
    :raises StoreUnavailableError: the stores refused the content (nothing is left behind).
    """
    bag = bag.absolute()
    facts: BagFacts = check_bag(bag)
    package, planned = read_package(bag / "data")
    _check_here(rt, planned, user)
    written_ids: list[str] = []
    try:
        stored = [(item, *_store(rt, item, written_ids)) for item in planned]
        with rt.db.write() as session:
            created: list[tuple[RecordInfo, PlannedRecord]] = []
            for item, objects, results in stored:
                # The record keeps its original's digest in this vault's algorithm, as
                # intake does (the bag's SHA-256 was checked as it was stored).
                original = next(o for o in objects if o.role is ObjectRole.original)
                record = import_record(
                    session,
                    replace(
                        _imported(item),
                        plaintext_sha256=original.written["plaintext_sha256"],
                    ),
                    objects,
                    actor=user.name,
                    actor_id=user.id,
                    bag=package.export_id,
                )
                created.append((record, item))
                for obj, result in zip(objects, results, strict=True):
                    queue_replication(rt, session, obj.object_id, result, actor=user.name)
                code = record.archive_code
                rt.enqueue(
                    session,
                    VAULT_SIDECAR,
                    {"archive_code": code},
                    key=f"sidecar:{code}",
                    actor=user.name,
                )
                rt.enqueue(
                    session,
                    INDEX_RECORD,
                    {"archive_code": code},
                    key=f"index:{code}:import",
                    actor=user.name,
                )
            record_event(
                session,
                actor=user.name,
                action="transfer.import",
                target=f"import:{package.export_id}",
                detail={
                    "bag": bag.name,
                    "export_id": package.export_id,
                    "source_organization": facts.info.get("Source-Organization"),
                    "records": len(created),
                    "objects": len(written_ids),
                    "payload_oxum": f"{facts.payload_bytes}.{facts.payload_files}",
                    "tagmanifest_sha256": facts.tagmanifest_sha256,
                },
            )
    except BaseException:
        for object_id in written_ids:
            try:
                rt.vault.delete_object(object_id)
            except DanganError:
                log.warning(
                    "a copy of an object whose import failed is left in a store",
                    extra={"event": "transfer.orphan", "object_id": object_id},
                )
        raise
    for record, _item in created:
        try:
            write_sidecar(rt, record.archive_code, actor=user.name)
        except DanganError as exc:  # the queued vault.sidecar job writes it later
            log.warning(
                "sidecar left to its job",
                extra={"event": "transfer.sidecar_deferred", "error": exc.code},
            )
    indexed = _index_now(rt, created)
    log.info(
        "records imported",
        extra={"event": "transfer.import", "records": len(created), "export_id": package.export_id},
    )
    return ImportReport(
        bag=bag,
        export_id=package.export_id,
        records=tuple(r.archive_code for r, _ in created),
        pages=sum(len(i.doc.pages) for _, i in created),
        indexed=indexed,
    )
