"""Writing one record of a transfer package (docs/transfer.md): its original and access PDF
decrypted, its OCR text a page a file, its audit events, its metadata as JSON and XML.

The read is audited (``record.read_content``, ``role: transfer``) before a byte is written;
the caller has checked the policy. Plaintext goes only into the caller's private directory.
Never logs; the files hold names and text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

from api.services.pipeline import read_ocr_text
from api.services.reading import mark_bad_copy
from api.services.runtime import Runtime
from api.services.transfer_package import (
    FORMAT_VERSION,
    MEDIA_EXTENSIONS,
    RECORD_FORMAT,
    ocr_file,
)
from catalog import (
    Action,
    AuditEventInfo,
    ObjectInfo,
    ObjectRole,
    PageInfo,
    RecordInfo,
    UserInfo,
    get_business_type,
    list_pages,
    list_visible_events,
    objects_of_record,
    record_event,
    record_progress,
    record_target,
)
from dangan.errors import CorruptDataError, NotFoundError, StoreUnavailableError
from ocr import PageResult
from vault import WrappedKey

__all__ = ["export_record", "iso_utc", "write_file"]

_EVENTS_PAGE: Final = 1000


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
        algorithm=obj.digest_algorithm,
        on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=actor),
    )
    with reader:
        yield from reader


def write_file(path: Path, chunks: Iterator[bytes] | list[bytes]) -> tuple[int, str]:
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


def iso_utc(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat() if when else None


def _event_json(event: AuditEventInfo) -> str:
    doc = dataclasses.asdict(event)
    doc["at"] = iso_utc(event.at)
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


def export_record(
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
    original_size, original_sha256 = write_file(
        directory / original_name, _plaintext(rt, original, actor=user.name)
    )
    access = _live(objects, ObjectRole.access_copy)
    access_entry = None
    if access is not None:
        size, sha256 = write_file(directory / "access.pdf", _plaintext(rt, access, actor=user.name))
        access_entry = {"file": "access.pdf", "size": size, "sha256": sha256}
    results = read_ocr_text(rt, record.id, actor=user.name)
    for page in pages:
        result = results[page.number - 1] if page.number <= len(results) else None
        if result is not None:
            write_file(directory / ocr_file(page.number), [result.text.encode("utf-8")])
    write_file(directory / "audit.jsonl", _events(rt, code, user))
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
        "created_at": iso_utc(record.created_at),
        "processed_at": iso_utc(progress.processed_at),
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
    write_file(directory / "metadata.json", [body.encode("utf-8")])
    write_file(directory / "metadata.xml", [_metadata_xml(doc)])
    return len(pages), events
