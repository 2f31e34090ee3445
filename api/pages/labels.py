"""How the pages name the archive's states and kinds: each enum value's English message,
translated like any other (``_(label("status", record.status))`` in a template).

The messages are marked with ``N_`` so the catalogs' extraction finds them; a test checks
that every value of every enum here has a label, so a new state cannot show up raw.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from api.services.fourprop import Outcome, Property
from catalog import (
    ChangeState,
    CopyState,
    DecisionOutcome,
    FindingSeverity,
    FindingState,
    ObjectRole,
    RecordStatus,
    Retention,
    RetentionTrigger,
    ReviewGate,
    ReviewState,
    Role,
    SecurityClass,
    Stage,
    Verdict,
)

__all__ = ["LABELS", "N_", "label"]


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark for translation only"
    return message


LABELS: Final[dict[str, dict[str, str]]] = {
    "status": {
        RecordStatus.pending: N_("pending"),
        RecordStatus.under_replicated: N_("one copy missing"),
        RecordStatus.processing: N_("processing"),
        RecordStatus.archived: N_("archived"),
        RecordStatus.damaged: N_("no good copy"),
        RecordStatus.disposed: N_("disposed"),
    },
    "stage": {
        Stage.queued: N_("queued"),
        Stage.ocr: N_("reading pages (OCR)"),
        Stage.assembling: N_("assembling"),
        Stage.indexing: N_("indexing"),
        Stage.done: N_("done"),
    },
    "copy": {
        CopyState.ok: N_("intact"),
        CopyState.bad: N_("damaged"),
        CopyState.missing: N_("missing"),
    },
    "object": {
        ObjectRole.original: N_("original scan"),
        ObjectRole.sidecar: N_("catalog fields"),
        ObjectRole.ocr_page: N_("page text"),
        ObjectRole.ocr_text: N_("OCR text"),
        ObjectRole.access_copy: N_("searchable PDF"),
        ObjectRole.evidence: N_("finding evidence"),
        ObjectRole.paperwork: N_("break-glass paperwork"),
    },
    "store": {"primary": N_("primary store"), "replica": N_("replica store")},
    "class": {SecurityClass.internal: N_("internal"), SecurityClass.contract: N_("contract")},
    "role": {
        Role.clerk: N_("clerk"),
        Role.supervisor: N_("supervisor"),
        Role.director: N_("director"),
        Role.auditor: N_("auditor"),
        Role.admin: N_("admin"),
    },
    "retention": {
        Retention.permanent: N_("permanent"),
        Retention.years_30: N_("30 years"),
        Retention.years_10: N_("10 years"),
    },
    "trigger": {
        RetentionTrigger.record_date: N_("the record's year"),
        RetentionTrigger.graduation: N_("graduation"),
    },
    "verdict": {
        Verdict.passed: N_("pass"),
        Verdict.warn: N_("warn"),
        Verdict.fail: N_("fail"),
        Verdict.unmeasured: N_("not measured"),
    },
    "check_outcome": {
        Outcome.passed: N_("pass"),
        Outcome.warn: N_("warn"),
        Outcome.fail: N_("fail"),
        Outcome.skipped: N_("not checked"),
    },
    "property": {
        Property.authenticity: N_("authenticity"),
        Property.integrity: N_("integrity"),
        Property.usability: N_("usability"),
        Property.security: N_("security"),
    },
    "severity": {
        FindingSeverity.minor: N_("minor"),
        FindingSeverity.major: N_("major"),
        FindingSeverity.critical: N_("critical"),
    },
    "finding_state": {
        FindingState.open: N_("open"),
        FindingState.answered: N_("answered"),
        FindingState.closed: N_("closed"),
    },
    # The intake review (docs/review.md).
    "gate": {
        ReviewGate.intake_check: N_("materials check (材料初审)"),
        ReviewGate.data_entry: N_("data entry (信息录入)"),
        ReviewGate.system_check: N_("system check (系统校验)"),
        ReviewGate.final_review: N_("final review (复核)"),
    },
    "review_state": {
        ReviewState.open: N_("in review"),
        ReviewState.returned: N_("sent back"),
        ReviewState.accepted: N_("accepted"),
    },
    "review_decision": {
        "open": N_("review opened"),
        "pass": N_("passed"),
        "return": N_("sent back"),
        "resubmit": N_("resubmitted"),
    },
    "review_outcome": {"fail": N_("fail"), "attention": N_("attention")},
    "change": {
        ChangeState.open: N_("awaiting a decision"),
        ChangeState.approved: N_("approved"),
        ChangeState.rejected: N_("rejected"),
        ChangeState.stale: N_("stale"),
    },
    "decision": {
        DecisionOutcome.approved: N_("approved"),
        DecisionOutcome.rejected: N_("rejected"),
    },
}

# Which enum each kind labels, for the completeness test.
LABELLED: Final[dict[str, type[StrEnum]]] = {
    "status": RecordStatus,
    "stage": Stage,
    "copy": CopyState,
    "object": ObjectRole,
    "class": SecurityClass,
    "role": Role,
    "retention": Retention,
    "trigger": RetentionTrigger,
    "verdict": Verdict,
    "check_outcome": Outcome,
    "property": Property,
    "severity": FindingSeverity,
    "finding_state": FindingState,
    "gate": ReviewGate,
    "review_state": ReviewState,
    "change": ChangeState,
    "decision": DecisionOutcome,
}


def label(kind: str, value: object) -> str:
    """The English message for ``value`` of ``kind`` (the value itself when unknown)."""
    text = str(value.value if isinstance(value, StrEnum) else value)
    return LABELS.get(kind, {}).get(text, text)
