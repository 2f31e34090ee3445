"""What a record's sidecar says: its catalog fields and its objects' keys, or, once the record
is disposed of, its tombstone (``docs/vault-format.md``, "Sidecars").

A sidecar is the vault's own account of a record, so that the two stores and the keyring
alone rebuild the catalog (``api.services.restore``). A live record's sidecar names its
objects with their wrapped data keys; a disposed record's *tombstone* sidecar keeps only what
the catalog's tombstone row keeps (``catalog.scrub_tombstone``) and the facts of the disposal:
never a wrapped data key of the record's content, a title, a name or a class.

This module builds documents only; writing them is ``api.services.jobs`` and
``api.services.disposal``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from catalog import (
    DisposalFacts,
    ObjectInfo,
    ObjectRole,
    RecordInfo,
    RecordStatus,
    disposal_facts,
    former_codes,
    get_decision,
)

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "TOMBSTONE_KIND",
    "sidecar_body",
    "sidecar_document",
    "tombstone_document",
]

SIDECAR_FORMAT = "dangan-sidecar"
SIDECAR_VERSION = 2
TOMBSTONE_KIND = "tombstone"  # the "kind" of a disposed record's sidecar; a live one has none


def _stamp(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat() if when else None


def _object_entry(obj: ObjectInfo) -> dict[str, Any]:
    """One of the record's objects as the sidecar carries it: enough to open it without the
    catalog (its wrapped key is no secret without the keyring) and to check every copy.
    ``digest_algorithm`` is written only when it is not SHA-256, so a default archive's
    sidecars stay byte for byte as they were (docs/vault-format.md, "Sidecars")."""
    entry: dict[str, Any] = {
        "object_id": obj.id,
        "role": obj.role.value,
        "key_id": obj.key_id,
        "wrapped_key": base64.b64encode(obj.wrapped_key or b"").decode("ascii"),
        "size": obj.size,
        "plaintext_sha256": obj.plaintext_sha256,
        "copies": {
            c.store: {"size": c.size, "ciphertext_sha256": c.ciphertext_sha256} for c in obj.copies
        },
    }
    if obj.digest_algorithm != "sha256":
        entry["digest_algorithm"] = obj.digest_algorithm
    return entry


def sidecar_document(
    record: RecordInfo,
    objects: Sequence[ObjectInfo],
    *,
    former: Sequence[str] = (),
    decision: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The catalog fields of a record and of its other live objects (the original), enough
    to rebuild its catalog rows from the stores and the keyring (``api.services.recovery``).

    ``tags``, ``notes``, ``former_codes`` (the codes key changes took from it) and
    ``decision`` (a status-change decision's link to its application) are written only when
    the record has them, so other records' sidecars stay byte for byte as they were.
    """
    doc = {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "archive_code": record.archive_code,
        "year": record.year,
        "business_type": record.business_type,
        "serial": record.serial,
        "title": record.title,
        "student_no": record.student_no,
        "student_name": record.student_name,
        "student_class": record.student_class,
        "security_class": record.security_class.value,
        "paper_location": record.paper_location,
        "created_at": record.created_at.astimezone(dt.UTC).isoformat(),
        "objects": [
            _object_entry(o)
            for o in objects
            if o.role is not ObjectRole.sidecar and not o.is_shredded
        ],
    }
    if record.tags:
        doc["tags"] = list(record.tags)
    if record.notes:
        doc["notes"] = record.notes
    if former:
        doc["former_codes"] = list(former)
    if decision is not None:
        doc["decision"] = dict(decision)
    return doc


def tombstone_document(record: RecordInfo, facts: DisposalFacts) -> dict[str, Any]:
    """A disposed record's tombstone: the fields its scrubbed catalog row keeps (code, type,
    year, class, dates, size, hash, pages, paper location, student number) and who proposed
    and approved its disposal, when, and the certificate once issued. No objects, no keys:
    nothing in it opens anything."""
    return {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "kind": TOMBSTONE_KIND,
        "archive_code": record.archive_code,
        "year": record.year,
        "business_type": record.business_type,
        "serial": record.serial,
        "security_class": record.security_class.value,
        "student_no": record.student_no,
        "paper_location": record.paper_location,
        "created_at": record.created_at.astimezone(dt.UTC).isoformat(),
        "size": record.size,
        "plaintext_sha256": record.plaintext_sha256,
        "pages": record.page_count,
        "status": RecordStatus.disposed.value,
        "disposal": {
            "disposed_at": _stamp(facts.disposed_at),
            "proposal_id": facts.proposal_id,
            "proposed_by": facts.proposed_by,
            "proposed_at": _stamp(facts.proposed_at),
            "approved_by": facts.approved_by,
            "approved_at": _stamp(facts.approved_at),
            "certificate_id": facts.certificate_id,
            "certificate_sha256": facts.certificate_sha256,
        },
    }


def sidecar_body(session: Any, record: RecordInfo, objects: Sequence[ObjectInfo]) -> bytes:
    """The bytes of the record's sidecar as the catalog stands: its tombstone once it is
    disposed of, else its fields and objects (UTF-8 JSON, keys sorted)."""
    if record.status is RecordStatus.disposed:
        doc = tombstone_document(record, disposal_facts(session, record.id))
    else:
        decision = get_decision(session, record.id)
        doc = sidecar_document(
            record,
            objects,
            former=former_codes(session, record.id),
            decision=decision.as_detail() if decision is not None else None,
        )
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")
