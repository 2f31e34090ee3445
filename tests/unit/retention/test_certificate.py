"""Destruction certificates: they verify as issued, and fail after any edit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dangan.errors import CorruptDataError
from retention import certificate_json, certificate_pdf, sign_certificate, verify_certificate
from vault import Keyring, SigningKey


def _body() -> dict[str, Any]:
    return {
        "certificate_id": "DC20261123-0a1b2c3d",
        "issued_at": "2026-11-23T10:00:00Z",
        "issued_by": "zhang",
        "audit_head": {"event_id": 42, "hash": "ab" * 32},
        "records": [
            {
                "archive_code": "2010-会议纪要-001",
                "business_type": "会议纪要",
                "year": 2010,
                "security_class": "internal",
                "retention": "10年",
                "trigger": "record_date",
                "trigger_year": 2010,
                "due_year": 2021,
                "proposal_id": 1,
                "proposed_by": "system",
                "proposed_at": "2026-11-01T00:00:00Z",
                "approved_by": "zhang",
                "approved_at": "2026-11-23T09:59:00Z",
                "approval_reason": None,
                "disposed_at": "2026-11-23T09:59:30Z",
                "objects_destroyed": 4,
                "copies_left": 0,
                "plaintext_sha256": "cd" * 32,
                "record_created_at": "2010-03-01T00:00:00Z",
                "pages": 2,
                "size": 1234,
            }
        ],
    }


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return Keyring.generate().add_signing_key()


def test_json_verifies_and_any_changed_byte_fails(key: SigningKey) -> None:
    data = certificate_json(sign_certificate(_body(), key))
    verified = verify_certificate(data, [key.public_key])
    assert verified.kind == "json"
    assert verified.archive_codes == ["2010-会议纪要-001"]
    # Flip every byte in turn (a whitespace byte too): none of the edits verifies.
    for at in range(len(data)):
        edited = bytearray(data)
        edited[at] ^= 0x01
        with pytest.raises(CorruptDataError):
            verify_certificate(bytes(edited), [key.public_key])


def test_a_changed_field_fails_even_when_rendered_anew(key: SigningKey) -> None:
    doc = sign_certificate(_body(), key)
    doc["records"][0]["archive_code"] = "2010-会议纪要-002"
    with pytest.raises(CorruptDataError, match="signature"):
        verify_certificate(certificate_json(doc), [key.public_key])
    doc = sign_certificate(_body(), key)
    doc["audit_head"]["event_id"] = 41
    with pytest.raises(CorruptDataError, match="signature"):
        verify_certificate(certificate_json(doc), [key.public_key])
    doc = sign_certificate(_body(), key)
    data = json.dumps(doc, ensure_ascii=False).encode()  # same content, other bytes
    with pytest.raises(CorruptDataError, match="changed"):
        verify_certificate(data, [key.public_key])


def test_a_forgery_with_another_key_fails(key: SigningKey) -> None:
    other = Keyring.generate().add_signing_key()
    forged = certificate_json(sign_certificate(_body(), other))
    with pytest.raises(CorruptDataError, match="not a trusted key"):
        verify_certificate(forged, [key.public_key])
    assert verify_certificate(forged, [other.public_key]).key_id == other.id


def test_the_pdf_carries_the_json_and_fails_after_any_edit(key: SigningKey) -> None:
    doc = sign_certificate(_body(), key)
    pdf = certificate_pdf(doc, key)
    assert pdf == certificate_pdf(doc, key)  # deterministic
    verified = verify_certificate(pdf, [key.public_key])
    assert verified.kind == "pdf"
    assert verified.document == doc
    for at in range(0, len(pdf), 97):
        edited = bytearray(pdf)
        edited[at] ^= 0x01
        with pytest.raises(CorruptDataError):
            verify_certificate(bytes(edited), [key.public_key])
    with pytest.raises(CorruptDataError):
        verify_certificate(pdf + b"% more\n", [key.public_key])
    with pytest.raises(CorruptDataError):
        verify_certificate(pdf[: pdf.rfind(b"%dangan-signature")], [key.public_key])
