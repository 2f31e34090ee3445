"""Job handlers that need nothing but the catalog; importing ``catalog`` registers them.

Handlers that combine parts (the vault, OCR, the index) live above the catalog, under
``api/services``; they register themselves the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from catalog.audit import ChainHead, record_event, verify_chain
from catalog.jobs import JobContext, register
from dangan.errors import CorruptDataError

__all__ = ["AUDIT_VERIFY", "AuditVerifyPayload", "verify_audit_chain"]

AUDIT_VERIFY = "audit.verify"


class AuditVerifyPayload(BaseModel):
    """Optionally a head kept from earlier (``dangan audit head``), to catch a cut tail."""

    model_config = ConfigDict(extra="forbid")

    expected_head_id: int | None = None
    expected_head_hash: str | None = None


@register(AUDIT_VERIFY, AuditVerifyPayload, permanent=(CorruptDataError,))
def verify_audit_chain(ctx: JobContext[Any], payload: AuditVerifyPayload) -> None:
    """Walk the audit chain and record the result as an ``audit.verify`` event.

    A broken chain is recorded too (outcome ``error``, the first bad event named) and then
    fails the job for good: walking it again cannot mend it, and the dead job is the alarm.

    :raises CorruptDataError: the chain is broken.
    """
    expected = None
    if payload.expected_head_id is not None and payload.expected_head_hash is not None:
        expected = ChainHead(payload.expected_head_id, payload.expected_head_hash)
    with ctx.db.read() as session:
        report = verify_chain(session, expected_head=expected)
    detail: dict[str, Any] = {"job": ctx.job.id, "events": report.events}
    if report.head is not None:
        detail["head"] = report.head.as_dict()
    if not report.ok:
        first = report.problems[0]
        detail |= {"problems": len(report.problems), "first_bad_event": first.event_id}
    with ctx.db.write() as session:
        record_event(
            session,
            actor=f"worker:{ctx.worker_id}"[:64],
            action=AUDIT_VERIFY,
            target="audit",
            outcome="ok" if report.ok else "error",
            detail=detail,
        )
    if not report.ok:
        raise CorruptDataError(
            f"audit trail broken: first bad event {first.event_id} "
            f"({len(report.problems)} problems in {report.events} events)"
        )
