"""Open transfer packages, the export half: records written out as a BagIt bag (docs/transfer.md).

A package is for handing records over (DA/T 70-2018: no non-public compression or encryption):
each record's original as scanned and its access PDF, unencrypted; its metadata as JSON and
XML; its OCR text a page a file; the audit events about it; manifests in SHA-256 and SM3
(:mod:`api.services.bags`). ``api.services.transfer_import`` takes one back.

The exporter needs ``export`` and, on every record, ``record.read_content`` (the policy of a
download): a record hidden from them is never selected by a filter or a query, and one named
by its code answers "no such record" exactly as the API does. Each record exported leaves one
``record.read_content`` event (``role: transfer``) before a byte of it is written, and the
export one ``transfer.export`` event (counts and the bag's digest; no codes, no words of the
query). The bag is built in a private directory beside the destination (mode 0700, removed on
any failure) and renamed into place whole: no plaintext is left anywhere else. Nothing here
logs titles, names, text or queries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

from api.services.access import require_action
from api.services.bags import ALGORITHMS, make_bag
from api.services.pipeline import read_ocr_text
from api.services.reading import mark_bad_copy
from api.services.runtime import Runtime
from catalog import (
    Action,
    AuditEventInfo,
    ObjectInfo,
    ObjectRole,
    PageInfo,
    RecordInfo,
    RecordStatus,
    Stage,
    UserInfo,
    audit_denied,
    get_business_type,
    get_record,
    list_pages,
    list_visible_events,
    objects_of_record,
    record_event,
    record_not_found,
    record_progress,
    record_target,
    records_for_export,
    require,
    visible_classes,
)
from dangan import __version__
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from indexer import parse_query
from ocr import PageResult
from vault import WrappedKey

__all__ = [
    "MEDIA_EXTENSIONS",
    "PACKAGE_FORMAT",
    "RECORD_FORMAT",
    "ExportReport",
    "ExportSelection",
    "export_bag",
    "ocr_file",
]

log = logging.getLogger(__name__)

PACKAGE_FORMAT: Final = "dangan-transfer"
RECORD_FORMAT: Final = "dangan-transfer-record"
FORMAT_VERSION: Final = 1
MEDIA_EXTENSIONS: Final = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/tiff": "tif",
}
_SEARCH_PAGE: Final = 100
_SEARCH_WINDOW: Final = 10_000
_EVENTS_PAGE: Final = 1000


@dataclass(frozen=True)
class ExportSelection:
    """Which records to export: the codes named, plus those matching every filter given."""

    codes: tuple[str, ...] = ()
    query: str | None = None
    business_type: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    everything: bool = False  # every record the exporter may read

    @property
    def filtered(self) -> bool:
        return self.everything or any(
            v is not None for v in (self.query, self.business_type, self.year_from, self.year_to)
        )

    def summary(self) -> dict[str, Any]:
        """For the audit event: the shape of the selection, never the query's words."""
        return {
            "codes": len(self.codes),
            "query": self.query is not None,
            "business_type": self.business_type,
            "year_from": self.year_from,
            "year_to": self.year_to,
            "all": self.everything,
        }


@dataclass(frozen=True)
class ExportReport:
    path: Path
    export_id: str
    records: tuple[str, ...]  # archive codes, in the bag's order
    skipped: tuple[str, ...]  # matched a filter but still in intake: not exported
    pages: int
    audit_events: int
    payload_bytes: int
    payload_files: int
    tagmanifest_sha256: str


def ocr_file(number: int) -> str:
    """A page's OCR text file in a record's directory: ``ocr/0001.txt`` for page 1."""
    return f"ocr/{number:04d}.txt"


# --- selecting ------------------------------------------------------------------------------


def _named(rt: Runtime, code: str, user: UserInfo) -> RecordInfo:
    """A record named by code that ``user`` may read and that can be exported."""
    try:
        with rt.db.read() as session:
            try:
                record = get_record(session, code)
            except NotFoundError:
                raise record_not_found() from None
            require(user, Action.record_read_content, record)
            require(user, Action.record_read_history, record)
            stage = record_progress(session, record.id).stage
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.record_read_content, record_target(code), error=exc)
        raise
    if record.status is RecordStatus.disposed:
        raise ConflictError(f"record {code} was disposed of: its content is destroyed")
    if stage is not Stage.done:
        raise ConflictError(f"record {code} is still in intake; export it once it is processed")
    return record


def _query_ids(rt: Runtime, query: str, user: UserInfo) -> list[int]:
    parsed = parse_query(query)
    classes = frozenset(c.value for c in visible_classes(user))
    ids: list[int] = []
    page = 1
    while True:
        found = rt.index.search(
            parsed, visible_classes=classes, page=page, page_size=_SEARCH_PAGE, facets=False
        )
        if found.total > _SEARCH_WINDOW:
            raise InvalidInputError(
                f"the query matches more than {_SEARCH_WINDOW:,} records: narrow it"
            )
        ids.extend(h.record_id for h in found.hits)
        if page * _SEARCH_PAGE >= found.total:
            return ids
        page += 1


def _select(
    rt: Runtime, selection: ExportSelection, user: UserInfo
) -> tuple[list[RecordInfo], list[str]]:
    chosen: dict[str, RecordInfo] = {}
    skipped: list[str] = []
    for code in selection.codes:
        chosen[code] = _named(rt, code.strip(), user)
    if selection.filtered:
        ids = _query_ids(rt, selection.query, user) if selection.query is not None else None
        with rt.db.read() as session:
            found = records_for_export(
                session,
                user,
                business_type=selection.business_type,
                year_from=selection.year_from,
                year_to=selection.year_to,
                record_ids=ids,
            )
            for record in found:
                # The filter shows only what the user may see; reading is the policy's word.
                require(user, Action.record_read_content, record)
                if record_progress(session, record.id).stage is not Stage.done:
                    skipped.append(record.archive_code)
                    continue
                chosen.setdefault(record.archive_code, record)
    records = sorted(chosen.values(), key=lambda r: (r.year, r.business_type, r.serial))
    return records, skipped


# --- writing one record ---------------------------------------------------------------------


def _live(objects: list[ObjectInfo], role: ObjectRole) -> ObjectInfo | None:
    return next((o for o in objects if o.role is role and not o.is_shredded), None)


def _plaintext(rt: Runtime, obj: ObjectInfo, *, actor: str) -> Iterator[bytes]:
    """The object's plaintext from whichever copy holds up (checked against its SHA-256 before
    the last piece); a bad copy on the way is marked and its repair queued."""
    if obj.wrapped_key is None:
        raise NotFoundError("this object was destroyed")
    if obj.is_damaged:
        raise CorruptDataError(f"object {obj.id}: no good copy is left (damaged)")
    primary = obj.copy_in("primary")
    reader = rt.vault.read(
        obj.id,
        WrappedKey.from_bytes(obj.wrapped_key),
        plaintext_sha256=obj.plaintext_sha256,
        ciphertext_sha256=primary.ciphertext_sha256 if primary else None,
        on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=actor),
    )
    with reader:
        yield from reader


def _write(path: Path, chunks: Iterator[bytes] | list[bytes]) -> tuple[int, str]:
    """Write a file of the bag; returns its size and SHA-256, hashed on the way.

    :raises StoreUnavailableError: the disk refused it.
    """
    size, digest = 0, hashlib.sha256()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as fh:
            for piece in chunks:
                fh.write(piece)
                digest.update(piece)
                size += len(piece)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise StoreUnavailableError(f"the bag could not be written: {exc.strerror}") from None
    return size, digest.hexdigest()


def _stamp(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat() if when else None


def _event_json(event: AuditEventInfo) -> str:
    doc = dataclasses.asdict(event)
    doc["at"] = _stamp(event.at)
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str)


def _events(rt: Runtime, code: str, user: UserInfo) -> Iterator[bytes]:
    """The record's own audit events that ``user`` may read, in chain order, a JSON a line."""
    after = 0
    while True:
        with rt.db.read() as session:
            batch = list_visible_events(
                session, user, target=record_target(code), after_id=after, limit=_EVENTS_PAGE
            )
        for event in batch:
            yield (_event_json(event) + "\n").encode("utf-8")
        if len(batch) < _EVENTS_PAGE:
            return
        after = batch[-1].id


def _page_entry(page: PageInfo, result: PageResult | None) -> dict[str, Any]:
    return {
        "number": page.number,
        "state": page.state.value,
        "width": page.width,
        "height": page.height,
        "rotation": page.rotation,
        "skew": page.skew,
        "confidence": page.confidence,
        "engine": page.engine,
        "needs_review": page.needs_review,
        "ocr_text": ocr_file(page.number) if result is not None else None,
    }


def _metadata_xml(doc: dict[str, Any]) -> bytes:
    """The same fields as ``metadata.json``, as XML for systems that read that instead."""
    root = ET.Element("record", {"format": RECORD_FORMAT, "version": str(FORMAT_VERSION)})
    for key, value in doc.items():
        if key in ("format", "version"):
            continue
        if isinstance(value, dict):
            element = ET.SubElement(root, key)
            for k, v in value.items():
                ET.SubElement(element, k).text = "" if v is None else str(v)
        elif isinstance(value, list):
            element = ET.SubElement(root, key)
            for item in value:
                page = ET.SubElement(element, "page")
                for k, v in item.items():
                    ET.SubElement(page, k).text = "" if v is None else str(v)
        else:
            child = ET.SubElement(root, key)
            if value is not None:
                child.text = str(value).lower() if isinstance(value, bool) else str(value)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _export_record(
    rt: Runtime, record: RecordInfo, directory: Path, user: UserInfo, export_id: str
) -> tuple[int, int]:
    """Write one record's directory; returns its pages and audit events."""
    code = record.archive_code
    with rt.db.write() as session:
        # The export is a read of the record's content: audited before a byte is written.
        record_event(
            session,
            actor=user.name,
            action=Action.record_read_content.value,
            target=record_target(code),
            detail={"role": "transfer", "export_id": export_id},
        )
    with rt.db.read() as session:
        objects = objects_of_record(session, record.id)
        pages = list_pages(session, record.id)
        progress = record_progress(session, record.id)
        retention = get_business_type(session, record.business_type).retention
    original = _live(objects, ObjectRole.original)
    if original is None or record.content_type not in MEDIA_EXTENSIONS:
        raise CorruptDataError(f"record {code} has no readable original")
    original_name = f"original.{MEDIA_EXTENSIONS[record.content_type]}"
    original_size, original_sha256 = _write(
        directory / original_name, _plaintext(rt, original, actor=user.name)
    )
    access = _live(objects, ObjectRole.access_copy)
    access_entry = None
    if access is not None:
        size, sha256 = _write(directory / "access.pdf", _plaintext(rt, access, actor=user.name))
        access_entry = {"file": "access.pdf", "size": size, "sha256": sha256}
    results = read_ocr_text(rt, record.id, actor=user.name)
    for page in pages:
        result = results[page.number - 1] if page.number <= len(results) else None
        if result is not None:
            _write(directory / ocr_file(page.number), [result.text.encode("utf-8")])
    _write(directory / "audit.jsonl", _events(rt, code, user))
    with (directory / "audit.jsonl").open("rb") as fh:
        events = sum(1 for _ in fh)
    doc: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "version": FORMAT_VERSION,
        "archive_code": code,
        "year": record.year,
        "business_type": record.business_type,
        "serial": record.serial,
        "title": record.title,
        "student_no": record.student_no,
        "student_name": record.student_name,
        "student_class": record.student_class,
        "security_class": record.security_class.value,
        "paper_location": record.paper_location,
        "retention": retention.value,
        "status": record.status.value,
        "created_at": _stamp(record.created_at),
        "processed_at": _stamp(progress.processed_at),
        "needs_review": progress.needs_review,
        "original": {
            "file": original_name,
            "media_type": record.content_type,
            "size": original_size,
            "sha256": original_sha256,
            "upload_name": record.upload_name,
        },
        "access_copy": access_entry,
        "audit": {"file": "audit.jsonl", "events": events},
        "pages": [
            _page_entry(p, results[p.number - 1] if p.number <= len(results) else None)
            for p in pages
        ],
    }
    body = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    _write(directory / "metadata.json", [body.encode("utf-8")])
    _write(directory / "metadata.xml", [_metadata_xml(doc)])
    return len(pages), events


# --- the export -----------------------------------------------------------------------------


def _check_selection(selection: ExportSelection) -> None:
    if not selection.codes and not selection.filtered:
        raise InvalidInputError("choose the records: codes, a query, a type, years, or all")
    if (
        selection.year_from is not None
        and selection.year_to is not None
        and selection.year_from > selection.year_to
    ):
        raise InvalidInputError("the first year comes after the last")


def export_bag(
    rt: Runtime,
    selection: ExportSelection,
    destination: Path,
    user: UserInfo,
    *,
    organization: str,
    now: dt.datetime | None = None,
) -> ExportReport:
    """Write the selected records as a BagIt bag at ``destination`` (a new directory).

    :param organization: the bag's ``Source-Organization``.
    :raises InvalidInputError: no selection, a bad query or years, ``destination`` exists or
        its parent does not.
    :raises PermissionDeniedError: ``user`` may not export (audited).
    :raises NotFoundError: a code names no record ``user`` may read (audited), or nothing
        matches.
    :raises ConflictError: a named record is disposed of or still in intake.
    :raises CorruptDataError: a record's content has no good copy.
    :raises DependencyMissingError: no SM3 in this Python's OpenSSL.
    """
    _check_selection(selection)
    require_action(rt, user, Action.export)
    destination = destination.absolute()
    if destination.exists():
        raise InvalidInputError(f"{destination} exists already: give a new directory")
    if not destination.parent.is_dir():
        raise InvalidInputError(f"{destination.parent} is not a directory")
    records, skipped = _select(rt, selection, user)
    if not records:
        raise NotFoundError("no record you may export matches")
    when = now or dt.datetime.now(dt.UTC)
    export_id = uuid.uuid4().hex
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    pages = events = 0
    try:
        for record in records:
            p, e = _export_record(
                rt, record, work / "records" / record.archive_code, user, export_id
            )
            pages += p
            events += e
        package = {
            "format": PACKAGE_FORMAT,
            "version": FORMAT_VERSION,
            "export_id": export_id,
            "exported_at": _stamp(when),
            "exported_by": user.name,
            "dangan_version": __version__,
            "records": [r.archive_code for r in records],
        }
        _write(
            work / "transfer.json",
            [(json.dumps(package, ensure_ascii=False, indent=2) + "\n").encode("utf-8")],
        )
        facts = make_bag(
            work,
            {
                "Source-Organization": organization,
                "Bagging-Date": when.date().isoformat(),
                "Bag-Software-Agent": f"dangan {__version__}",
                "External-Identifier": export_id,
                "External-Description": f"档案移交包: {len(records)} records",
                "Contact-Name": user.name,
                "Bag-Size": f"{len(records)} records",
                "Dangan-Records": str(len(records)),
                "Dangan-Pages": str(pages),
                "Dangan-Audit-Events": str(events),
                "Dangan-Manifest-Algorithms": ", ".join(ALGORITHMS),
            },
        )
        work.rename(destination)  # mode 0700, as mkdtemp made it: it holds students' records
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, DanganError):
            with rt.db.write() as session:
                record_event(
                    session,
                    actor=user.name,
                    action="transfer.export",
                    target=f"export:{export_id}",
                    outcome="error",
                    detail={"selection": selection.summary(), "error": exc.code},
                )
        raise
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action="transfer.export",
            target=f"export:{export_id}",
            detail={
                "selection": selection.summary(),
                "records": len(records),
                "skipped": len(skipped),
                "pages": pages,
                "audit_events": events,
                "payload_oxum": f"{facts.payload_bytes}.{facts.payload_files}",
                "tagmanifest_sha256": facts.tagmanifest_sha256,
            },
        )
    log.info(
        "records exported",
        extra={"event": "transfer.export", "records": len(records), "export_id": export_id},
    )
    return ExportReport(
        path=destination,
        export_id=export_id,
        records=tuple(r.archive_code for r in records),
        skipped=tuple(skipped),
        pages=pages,
        audit_events=events,
        payload_bytes=facts.payload_bytes,
        payload_files=facts.payload_files,
        tagmanifest_sha256=facts.tagmanifest_sha256,
    )
