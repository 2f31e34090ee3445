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

import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.services.bags import BagFacts, check_bag
from api.services.jobs import VAULT_SIDECAR, queue_replication, write_sidecar, written
from api.services.pipeline import INDEX_RECORD, OCR_TEXT_FORMAT, OCR_TEXT_VERSION
from api.services.runtime import Runtime
from api.services.transfer import MEDIA_EXTENSIONS, ocr_file
from catalog import (
    Action,
    ImportedObject,
    ImportedPage,
    ImportedRecord,
    ObjectRole,
    PageState,
    RecordInfo,
    SecurityClass,
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
from ocr.inspect import sniff_media_type
from vault import CHUNK, WriteResult, new_object_id

__all__ = ["ImportReport", "import_bag"]

log = logging.getLogger(__name__)

_SUPPORTED_VERSION: Final = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _File(_Model):
    file: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class _Original(_File):
    media_type: str
    upload_name: str | None = None


class _Page(_Model):
    number: int = Field(ge=1)
    state: PageState
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    skew: float | None = None
    confidence: float | None = None
    engine: str | None = Field(default=None, max_length=16)
    needs_review: bool = False
    ocr_text: str | None = None


class _RecordDoc(_Model):
    """``metadata.json`` of one record, as ``api.services.transfer`` writes it."""

    format: Literal["dangan-transfer-record"]
    version: int
    archive_code: str = Field(min_length=1, max_length=64)
    year: int
    business_type: str
    title: str = ""
    student_no: str | None = None
    student_name: str | None = None
    student_class: str | None = None
    security_class: SecurityClass
    paper_location: str | None = None
    retention: str
    created_at: dt.datetime
    processed_at: dt.datetime | None = None
    needs_review: bool = False
    original: _Original
    access_copy: _File | None = None
    pages: list[_Page]


class _PackageDoc(_Model):
    format: Literal["dangan-transfer"]
    version: int
    export_id: str = Field(min_length=1, max_length=64)
    records: list[str]


@dataclass(frozen=True)
class ImportReport:
    bag: Path
    export_id: str
    records: tuple[str, ...]  # the archive codes created, in the bag's order
    pages: int
    indexed: int  # indexed at once; the rest wait for the worker's index.record jobs


@dataclass(frozen=True)
class _Planned:
    doc: _RecordDoc
    directory: Path
    texts: list[str | None]  # each page's OCR text, None for a page that had none


# --- reading the bag ------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"the bag has no {what}: not a dangan transfer package") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError(f"{what} is not JSON") from None


def _version_ok(version: int, what: str) -> None:
    if version != _SUPPORTED_VERSION:
        raise InvalidInputError(f"{what} is version {version}; this dangan reads version 1")


def _plan(data: Path) -> tuple[_PackageDoc, list[_Planned]]:
    """Every record of the bag, its metadata and its pages' text, checked for what the bag
    itself can tell (the digests are checked already)."""
    try:
        package = _PackageDoc.model_validate(_read_json(data / "transfer.json", "transfer.json"))
    except ValidationError as exc:
        raise InvalidInputError(f"transfer.json: {_first_error(exc)}") from None
    _version_ok(package.version, "the package")
    listed = set(package.records)
    on_disk = (
        {p.name for p in (data / "records").iterdir()} if (data / "records").is_dir() else set()
    )
    if listed != on_disk or len(listed) != len(package.records):
        raise CorruptDataError("transfer.json and the records' directories do not agree")
    planned: list[_Planned] = []
    for code in package.records:
        directory = data / "records" / code
        where = f"records/{code}/metadata.json"
        try:
            doc = _RecordDoc.model_validate(_read_json(directory / "metadata.json", where))
        except ValidationError as exc:
            raise InvalidInputError(f"{where}: {_first_error(exc)}") from None
        _version_ok(doc.version, where)
        if doc.archive_code != code:
            raise CorruptDataError(f"{where} names another archive code")
        if [p.number for p in doc.pages] != list(range(1, len(doc.pages) + 1)):
            raise InvalidInputError(f"{where}: the pages are not numbered 1, 2, 3, ...")
        _check_file(directory, doc.original, where)
        if MEDIA_EXTENSIONS.get(doc.original.media_type) is None:
            raise InvalidInputError(f"{where}: the original is no scan dangan keeps")
        with (directory / doc.original.file).open("rb") as fh:
            head = fh.read(512)
        if sniff_media_type(head) != doc.original.media_type:
            raise CorruptDataError(f"records/{code}/{doc.original.file} is not what it says")
        if doc.access_copy is not None:
            _check_file(directory, doc.access_copy, where)
        texts: list[str | None] = []
        for page in doc.pages:
            if page.ocr_text is None:
                texts.append(None)
                continue
            if page.ocr_text != ocr_file(page.number):
                raise InvalidInputError(f"{where}: page {page.number}'s text is misnamed")
            try:
                texts.append((directory / page.ocr_text).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise CorruptDataError(f"records/{code}/{page.ocr_text} is missing") from None
            except UnicodeDecodeError:
                raise InvalidInputError(f"records/{code}/{page.ocr_text} is not UTF-8") from None
        planned.append(_Planned(doc, directory, texts))
    return package, planned


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _check_file(directory: Path, entry: _File, where: str) -> None:
    """The file a metadata entry names is the one it describes (its size and SHA-256)."""
    path = directory / entry.file
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as fh:
            while piece := fh.read(CHUNK):
                digest.update(piece)
                size += len(piece)
    except FileNotFoundError:
        raise CorruptDataError(f"{where} names {entry.file}, which is not in the bag") from None
    if size != entry.size or not hmac.compare_digest(digest.hexdigest(), entry.sha256):
        raise CorruptDataError(f"{directory.name}/{entry.file} differs from {where}")


# --- checking it against this archive -------------------------------------------------------


def _check_here(rt: Runtime, planned: list[_Planned], user: UserInfo) -> None:
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


def _ocr_body(item: _Planned) -> bytes:
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
    rt: Runtime, item: _Planned, written_ids: list[str]
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


def _imported(item: _Planned) -> ImportedRecord:
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


def _index_now(rt: Runtime, records: list[tuple[RecordInfo, _Planned]]) -> int:
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
    package, planned = _plan(bag / "data")
    _check_here(rt, planned, user)
    written_ids: list[str] = []
    try:
        stored = [(item, *_store(rt, item, written_ids)) for item in planned]
        with rt.db.write() as session:
            created: list[tuple[RecordInfo, _Planned]] = []
            for item, objects, results in stored:
                record = import_record(
                    session,
                    _imported(item),
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
