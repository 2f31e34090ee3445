"""retention: destruction certificates (signed JSON and PDF) and their check.

Schedules, holds and proposals are catalog data (``catalog.disposition``, ``catalog.holds``);
carrying out a disposal combines the parts in ``api.services.retention``.
"""

from retention.certificate import (
    CERTIFICATE_FORMAT,
    VerifiedCertificate,
    certificate_json,
    certificate_pdf,
    sign_certificate,
    verify_certificate,
)

__all__ = [
    "CERTIFICATE_FORMAT",
    "VerifiedCertificate",
    "certificate_json",
    "certificate_pdf",
    "sign_certificate",
    "verify_certificate",
]
