"""Destruction certificates (销毁证明): signed JSON, a PDF that carries it, and their check.

A certificate is a JSON document naming the records destroyed, who proposed and approved each
and when, and the audit trail's head at that moment, signed with the instance's Ed25519 key
(``vault.SigningKey``). The format is written down in ``docs/retention.md``:

- the signature is over ``b"dangan-certificate-v1\\n"`` + the canonical JSON of every field but
  ``signature`` (keys sorted, no whitespace, UTF-8);
- the file is that document rendered one way only (:func:`certificate_json`), and a check
  refuses any other bytes, so that *any* edit to the file fails, not just a changed value;
- the PDF shows the same facts, carries the signed JSON as an embedded file
  (``certificate.json``), and ends with one PDF comment line, ``%dangan-signature <base64>``,
  an Ed25519 signature by the same key over ``b"dangan-certificate-pdf-v1\\n"`` + every byte
  before that line, so an edit anywhere in the PDF fails too.

Checking trusts a public key the caller gives (the instance's own, or one exported with
``dangan certificate key``), never the one a certificate names: anyone can sign a forgery with
a key of their own. This module never sees a private key except through ``SigningKey.sign``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pypdfium2 as pdfium
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from dangan.errors import CorruptDataError, InvalidInputError
from vault import SigningKey, signing_key_id

__all__ = [
    "CERTIFICATE_FORMAT",
    "VerifiedCertificate",
    "certificate_json",
    "certificate_pdf",
    "sign_certificate",
    "verify_certificate",
]

CERTIFICATE_FORMAT: Final = "dangan-destruction-certificate"
CERTIFICATE_VERSION: Final = 1
_DOMAIN: Final = b"dangan-certificate-v1\n"
_PDF_DOMAIN: Final = b"dangan-certificate-pdf-v1\n"
_PDF_MARK: Final = b"%dangan-signature "
_ATTACHMENT: Final = "certificate.json"
_FONT: Final = "STSong-Light"  # an Adobe CID font viewers supply: nothing is embedded
_MAX_SIZE: Final = 64 << 20


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _from_b64(text: str | bytes) -> bytes:
    """Base64 decoded, accepting only the one canonical spelling: a character that differs
    only in unused padding bits would decode to the same bytes, and an edited certificate
    must never verify.

    :raises ValueError: not base64, or not its canonical form.
    """
    raw = text.encode("ascii") if isinstance(text, str) else text
    data = base64.b64decode(raw, validate=True)
    if base64.b64encode(data) != raw:
        raise ValueError("not canonical base64")
    return data


def sign_certificate(body: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The certificate: ``body`` with format, version and a ``signature`` by ``key``.

    :param body: JSON-able facts (ids, codes, names of users, times as strings).
    """
    doc = {**body, "format": CERTIFICATE_FORMAT, "version": CERTIFICATE_VERSION}
    doc["signing_key_id"] = key.id
    doc.pop("signature", None)
    signature = key.sign(_DOMAIN + _canonical(doc))
    doc["signature"] = {
        "algorithm": "Ed25519",
        "key_id": key.id,
        "public_key": _b64(key.public_key),
        "value": _b64(signature),
    }
    return doc


def certificate_json(doc: Mapping[str, Any]) -> bytes:
    """The one byte form of a certificate file (checked byte for byte by the verifier)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class VerifiedCertificate:
    """A certificate whose signature held, and what it says."""

    certificate_id: str
    key_id: str
    kind: str  # "json" or "pdf"
    document: Mapping[str, Any]

    @property
    def archive_codes(self) -> list[str]:
        return [str(r.get("archive_code")) for r in self.document.get("records", [])]


def _public(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidInputError("a public key is 32 raw bytes of Ed25519") from None


def _verify_json(data: bytes, trusted: Sequence[bytes]) -> tuple[dict[str, Any], bytes]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptDataError("not a certificate: the file is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != CERTIFICATE_FORMAT:
        raise CorruptDataError("not a dangan destruction certificate")
    if doc.get("version") != CERTIFICATE_VERSION:
        raise CorruptDataError("a certificate of an unknown version")
    sig: Any = doc.get("signature")
    # The signature block is outside what is signed: its form is checked to the letter.
    if (
        not isinstance(sig, dict)
        or set(sig) != {"algorithm", "key_id", "public_key", "value"}
        or sig["algorithm"] != "Ed25519"
    ):
        raise CorruptDataError("the certificate's signature is malformed")
    try:
        public = _from_b64(sig["public_key"])
        value = _from_b64(sig["value"])
        named = sig["key_id"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise CorruptDataError("the certificate's signature is malformed") from None
    if public not in trusted:
        raise CorruptDataError(
            f"the certificate is signed by key {signing_key_id(public)}, not a trusted key"
        )
    if named != signing_key_id(public) or doc.get("signing_key_id") != named:
        raise CorruptDataError("the certificate names another key than the one that signed it")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        _public(public).verify(value, _DOMAIN + _canonical(body))
    except InvalidSignature:
        raise CorruptDataError("the certificate's signature does not match its content") from None
    if certificate_json(doc) != data:
        raise CorruptDataError("the certificate file was changed after it was issued")
    return doc, public


def verify_certificate(data: bytes, trusted_keys: Sequence[bytes]) -> VerifiedCertificate:
    """Check a certificate file (JSON or PDF) against the public keys trusted.

    :param trusted_keys: raw 32-byte Ed25519 public keys; the certificate must be signed by
        one of them.
    :raises CorruptDataError: not a certificate, a signature that does not hold, a key not
        trusted, or any byte changed since it was issued.
    """
    if not trusted_keys:
        raise InvalidInputError("no trusted public key to check the certificate against")
    if data.startswith(b"%PDF-"):
        return _verify_pdf(data, trusted_keys)
    doc, public = _verify_json(data, trusted_keys)
    return VerifiedCertificate(doc["certificate_id"], signing_key_id(public), "json", doc)


def _verify_pdf(data: bytes, trusted: Sequence[bytes]) -> VerifiedCertificate:
    at = data.rfind(b"\n" + _PDF_MARK)
    if at < 0:
        raise CorruptDataError("the PDF carries no dangan signature")
    body, line = data[: at + 1], data[at + 1 + len(_PDF_MARK) :]
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise CorruptDataError("the PDF was changed after its signature")
    try:
        value = _from_b64(line[:-1])
    except (binascii.Error, ValueError):
        raise CorruptDataError("the PDF's signature is malformed") from None
    embedded = _attachment(body)
    doc, public = _verify_json(embedded, trusted)
    try:
        _public(public).verify(value, _PDF_DOMAIN + body)
    except InvalidSignature:
        raise CorruptDataError("the PDF was changed after it was issued") from None
    return VerifiedCertificate(doc["certificate_id"], signing_key_id(public), "pdf", doc)


def _attachment(pdf: bytes) -> bytes:
    try:
        document = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError:
        raise CorruptDataError("the PDF cannot be read") from None
    try:
        for n in range(document.count_attachments()):
            attachment = document.get_attachment(n)
            if attachment.get_name() == _ATTACHMENT:
                data = bytes(attachment.get_data())
                if len(data) > _MAX_SIZE:
                    break
                return data
    except pdfium.PdfiumError:
        raise CorruptDataError("the PDF's embedded certificate cannot be read") from None
    finally:
        document.close()
    raise CorruptDataError(f"the PDF carries no {_ATTACHMENT}")


# --- the PDF ---------------------------------------------------------------------------------


def _font() -> str:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    return _FONT


def _embed(c: canvas.Canvas, data: bytes) -> None:
    # reportlab has no call for file attachments: the objects are added by hand (PDF 1.7,
    # 7.11.4 "Embedded file streams" and the catalog's /Names /EmbeddedFiles tree).
    doc = c._doc
    stream = pdfdoc.PDFStream(
        pdfdoc.PDFDictionary(
            {
                "Type": pdfdoc.PDFName("EmbeddedFile"),
                "Subtype": pdfdoc.PDFName("application/json"),
                "Params": pdfdoc.PDFDictionary({"Size": len(data)}),
            }
        ),
        data,
    )
    spec = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("Filespec"),
            "F": pdfdoc.PDFString(_ATTACHMENT),
            "UF": pdfdoc.PDFString(_ATTACHMENT),
            "Desc": pdfdoc.PDFString("signed destruction certificate"),
            "EF": pdfdoc.PDFDictionary({"F": doc.Reference(stream)}),
        }
    )
    names = pdfdoc.PDFArray([pdfdoc.PDFString(_ATTACHMENT), doc.Reference(spec)])
    doc.Catalog.Names = pdfdoc.PDFDictionary(
        {"EmbeddedFiles": pdfdoc.PDFDictionary({"Names": names})}
    )


class _Writer:
    """Lines of text down A4 pages, a new page when one is full."""

    def __init__(self, c: canvas.Canvas) -> None:
        self.c = c
        self.font = _font()
        self.width, self.height = A4
        self.y = self.height - 56

    def line(self, text: str, *, size: float = 9, indent: float = 0, gap: float = 4) -> None:
        if self.y < 56:
            self.c.showPage()
            self.y = self.height - 56
        self.c.setFont(self.font, size)
        limit = int((self.width - 112 - indent) / (size * 0.55))
        for start in range(0, max(len(text), 1), limit):
            self.c.drawString(56 + indent, self.y, text[start : start + limit])
            self.y -= size + gap


def _when(value: Any) -> str:
    return str(value) if value else "-"


def certificate_pdf(doc: Mapping[str, Any], key: SigningKey) -> bytes:
    """The certificate as a PDF: its facts in Chinese and English, the signed JSON attached,
    and a signature over the PDF's bytes by ``key`` (the key that signed ``doc``).

    Rendering is deterministic (reportlab's invariant mode), so the same certificate gives the
    same bytes.

    :raises InvalidInputError: ``doc`` was signed by another key.
    """
    if doc.get("signing_key_id") != key.id:
        raise InvalidInputError("the certificate was signed by another key")
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    c.setTitle(f"档案销毁证明 {doc['certificate_id']}")
    c.setSubject("Destruction certificate")
    c.setCreator("dangan")
    w = _Writer(c)
    w.line("档案销毁证明  Destruction certificate", size=16, gap=10)
    w.line(f"证明编号 Certificate: {doc['certificate_id']}", size=10)
    w.line(f"签发时间 Issued: {doc['issued_at']}    签发人 By: {doc['issued_by']}", size=10)
    head = doc.get("audit_head") or {}
    w.line(f"审计链头 Audit trail head: event {head.get('event_id')}  {head.get('hash')}")
    w.line(f"签名密钥 Signing key: {doc['signing_key_id']} (Ed25519)", gap=10)
    records = doc.get("records", [])
    w.line(f"已销毁档案 Records destroyed: {len(records)}", size=11, gap=6)
    for n, rec in enumerate(records, start=1):
        w.line(
            f"{n}. {rec['archive_code']}  {rec['business_type']}  {rec['year']}  "
            f"保管期限 {rec['retention']}  ({rec['trigger']} {rec['trigger_year']})",
            size=10,
        )
        w.line(
            f"提议 Proposed: {rec['proposed_by']} {_when(rec['proposed_at'])}    "
            f"批准 Approved: {rec['approved_by']} {_when(rec['approved_at'])}",
            indent=14,
        )
        w.line(
            f"销毁 Destroyed: {_when(rec['disposed_at'])}    objects {rec['objects_destroyed']}"
            f"    copies left {rec['copies_left']}    "
            f"{rec.get('digest_algorithm', 'sha256')} {rec['plaintext_sha256'] or '-'}",
            indent=14,
            gap=6,
        )
    w.line("", gap=6)
    w.line(
        "本证明的签名 JSON 作为附件 certificate.json 嵌入; 用 dangan certificate verify 核验。",
        size=8,
    )
    w.line(
        "The signed JSON is attached as certificate.json; check it with "
        "`dangan certificate verify FILE --key PUBLIC.pem`.",
        size=8,
    )
    _embed(c, certificate_json(doc))
    c.showPage()
    c.save()
    body = buffer.getvalue()
    if not body.endswith(b"\n"):
        body += b"\n"
    signature = key.sign(_PDF_DOMAIN + body)
    return body + _PDF_MARK + base64.b64encode(signature) + b"\n"
