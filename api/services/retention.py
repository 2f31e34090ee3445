"""Retention as people and jobs use it: schedules, legal holds, disposition and certificates.

The catalog keeps the facts (``catalog.disposition``, ``catalog.holds``); this module asks the
policy, carries out approved disposals through ``api.services.disposal`` (crypto-shredding,
both copies, the index) and issues the signed destruction certificate (``retention``). The
CLI, the JSON API, the pages and the ``retention.scan`` job all call these functions.

Disposal cannot be undone, so an approval checks every proposal of the batch first and
approves them all in one transaction or none; a hold placed after that is still caught inside
each record's disposal transaction, and its proposal is withdrawn. An approval interrupted
half-way is finished by the next approval or retention run (:func:`finish_approved`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from pydantic import BaseModel, ConfigDict

from api.services.disposal import DestroyReport, certify_tombstones, destroy_record_content
from api.services.keys import ensure_signing_key
from api.services.runtime import Runtime, worker_actor
from catalog import (
    Action,
    CertificateInfo,
    HoldInfo,
    JobContext,
    ObjectRole,
    ProposalInfo,
    ProposalState,
    ScanReport,
    ScheduleInfo,
    UserInfo,
    add_certificate,
    approve_proposal,
    audit_denied,
    chain_head,
    get_certificate,
    get_hold,
    get_proposals,
    get_record,
    get_record_by_id,
    list_holds,
    list_proposals,
    list_schedules,
    mark_proposal_disposed,
    objects_of_record,
    open_proposals,
    place_hold,
    proposals_to_finish,
    record_not_found,
    register,
    reject_proposal,
    release_hold,
    require,
    set_graduation_year,
    set_schedule,
    visible_classes,
    visible_records_filter,
    withdraw_proposal,
)
from dangan.errors import (
    ConflictError,
    InvalidInputError,
    KeyringError,
    NotFoundError,
    PermissionDeniedError,
)
from retention import (
    VerifiedCertificate,
    certificate_json,
    certificate_pdf,
    sign_certificate,
    verify_certificate,
)
from vault import SigningKey

__all__ = [
    "RETENTION_SCAN",
    "DispositionOutcome",
    "RetentionRun",
    "approve",
    "certificate",
    "certificate_pdf_bytes",
    "change_schedule",
    "finish_approved",
    "holds",
    "place",
    "proposals",
    "public_key_pem",
    "record_graduation",
    "reject",
    "release",
    "run_retention",
    "schedules",
    "trusted_key_from_pem",
    "verify_file",
]

log = logging.getLogger(__name__)

RETENTION_SCAN = "retention.scan"  # declared as a daily schedule in api/services/schedule.py


def _require(rt: Runtime, user: UserInfo, action: Action, target: str, record: Any = None) -> None:
    """The policy's answer, with the trace of a denied attempt (留痕)."""
    try:
        require(user, action, record)
    except (PermissionDeniedError, NotFoundError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, target, error=exc)
        raise


def _stamp(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


# --- schedules -------------------------------------------------------------------------------


def schedules(rt: Runtime) -> list[ScheduleInfo]:
    """Every business type's retention period and what it is counted from."""
    with rt.db.read() as session:
        return list_schedules(session)


def change_schedule(
    rt: Runtime,
    business_type: str,
    *,
    retention: str | None,
    trigger: str | None,
    actor: str,
    user: UserInfo | None = None,
) -> ScheduleInfo:
    """Set a type's period and/or trigger (``business_type.manage``)."""
    if user is not None:
        _require(rt, user, Action.business_type_manage, f"business_type:{business_type}")
    with rt.db.write() as session:
        return set_schedule(
            session, business_type, retention=retention, trigger=trigger, actor=actor
        )


def record_graduation(
    rt: Runtime, student_no: str, year: int, *, actor: str, user: UserInfo | None = None
) -> None:
    """Record a student's graduation year, which periods counted from graduation start at
    (``record.update_metadata``: a fact about the student, like the class)."""
    if user is not None:
        _require(rt, user, Action.record_update_metadata, f"student:{student_no}")
    with rt.db.write() as session:
        set_graduation_year(session, student_no, year, actor=actor)


# --- legal holds -----------------------------------------------------------------------------


def place(
    rt: Runtime,
    *,
    reason: str,
    actor: str,
    user: UserInfo | None = None,
    archive_code: str | None = None,
    student_no: str | None = None,
    business_type: str | None = None,
    years: tuple[int, int] | None = None,
) -> HoldInfo:
    """Place a legal hold (``hold.place``; on a record, as that record allows).

    :raises NotFoundError: no such record, or one hidden from ``user``.
    :raises InvalidInputError: not exactly one target, no reason, a bad range or type.
    """
    record_id = None
    if archive_code is not None:
        with rt.db.read() as session:
            try:
                record = get_record(session, archive_code)
            except NotFoundError:
                record = None
        if user is not None:
            if record is None:
                with rt.db.write() as session:
                    audit_denied(
                        session,
                        user,
                        Action.hold_place,
                        f"record:{archive_code}",
                        error=record_not_found(),
                    )
                raise record_not_found()
            _require(rt, user, Action.hold_place, f"record:{archive_code}", record)
        if record is None:
            raise record_not_found()
        record_id = record.id
    elif user is not None:
        _require(rt, user, Action.hold_place, "hold")
    with rt.db.write() as session:
        return place_hold(
            session,
            reason=reason,
            actor=actor,
            record_id=record_id,
            student_no=student_no,
            business_type=business_type,
            years=years,
        )


def release(
    rt: Runtime, hold_id: int, *, reason: str, actor: str, user: UserInfo | None = None
) -> HoldInfo:
    """Release a legal hold (``hold.release``).

    :raises NotFoundError: no such hold, or one on a record hidden from ``user``.
    :raises ConflictError: released already.
    """
    with rt.db.read() as session:
        hold = get_hold(session, hold_id)
        record = get_record_by_id(session, hold.record_id) if hold.record_id else None
    if user is not None:
        try:
            _require(rt, user, Action.hold_release, f"hold:{hold_id}", record)
        except NotFoundError:
            raise NotFoundError(f"no legal hold {hold_id}") from None
    with rt.db.write() as session:
        return release_hold(session, hold_id, reason=reason, actor=actor)


def holds(
    rt: Runtime, user: UserInfo | None = None, *, include_released: bool = False
) -> list[HoldInfo]:
    """The legal holds (``hold.place`` or ``hold.release``); a hold on a record hidden from
    ``user`` is left out."""
    with rt.db.read() as session:
        found = list_holds(session, include_released=include_released)
        classes = {
            h.id: get_record_by_id(session, h.record_id).security_class
            for h in found
            if h.record_id is not None
        }
    if user is None:
        return found
    try:
        require(user, Action.hold_place)
    except PermissionDeniedError:
        _require(rt, user, Action.hold_release, "hold")
    seen = visible_classes(user)
    return [h for h in found if h.record_id is None or classes[h.id] in seen]


# --- disposition -----------------------------------------------------------------------------


@dataclass
class RetentionRun:
    """One retention run: what it proposed, and the disposals it finished."""

    scan: ScanReport
    finished: DispositionOutcome | None = None


@dataclass
class DispositionOutcome:
    """What an approval did: the records destroyed, its certificate, and any record a hold
    reached first (its proposal withdrawn, nothing destroyed)."""

    disposed: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    copies_left: list[str] = field(default_factory=list)
    certificate: CertificateInfo | None = None


def run_retention(
    rt: Runtime, *, actor: str, user: UserInfo | None = None, now: dt.datetime | None = None
) -> RetentionRun:
    """Finish approved disposals an earlier run left, then propose every record due
    (``retention.run``). Idempotent: run it as often as you like."""
    if user is not None:
        _require(rt, user, Action.retention_run, "retention")
    finished = finish_approved(rt, actor=actor)
    with rt.db.write() as session:
        scan = open_proposals(session, actor=actor, now=now)
    log.info(
        "retention scan",
        extra={
            "event": "retention.scan",
            "opened": len(scan.opened),
            "held": len(scan.held),
            "disposed": len(finished.disposed),
        },
    )
    return RetentionRun(scan, finished if finished.disposed or finished.withheld else None)


class RetentionScanPayload(BaseModel):
    """Nothing: a scan looks at every record."""

    model_config = ConfigDict(extra="ignore")


@register(RETENTION_SCAN, RetentionScanPayload)
def retention_scan(ctx: JobContext[Any], payload: RetentionScanPayload) -> None:
    """The daily retention run: propose what is due, finish interrupted disposals."""
    rt: Runtime = ctx.services
    run_retention(rt, actor=worker_actor(ctx))


def proposals(
    rt: Runtime,
    user: UserInfo | None = None,
    *,
    states: Iterable[ProposalState] = (ProposalState.open,),
) -> list[ProposalInfo]:
    """Proposals (``disposition.approve``), only about records ``user`` may see."""
    if user is not None:
        _require(rt, user, Action.disposition_approve, "disposition")
    with rt.db.read() as session:
        return list_proposals(
            session,
            states=states,
            visible=visible_records_filter(user) if user is not None else None,
        )


def _checked(rt: Runtime, user: UserInfo, ids: Sequence[int]) -> list[ProposalInfo]:
    """The proposals, each allowed to ``user`` on its record; a hidden one is missing."""
    if not ids:
        raise InvalidInputError("name at least one proposal")
    if len(ids) > 1000:
        raise InvalidInputError("at most 1000 proposals at once")
    _require(rt, user, Action.disposition_approve, "disposition")
    with rt.db.read() as session:
        try:
            found = get_proposals(session, ids)
        except NotFoundError as exc:
            with rt.db.write() as w:
                audit_denied(w, user, Action.disposition_approve, "disposition", error=exc)
            raise
        records = {p.id: get_record_by_id(session, p.record_id) for p in found}
    for p in found:
        try:
            _require(
                rt, user, Action.disposition_approve, f"record:{p.archive_code}", records[p.id]
            )
        except NotFoundError:
            raise NotFoundError(f"no disposition proposal {p.id}") from None
    return found


def approve(
    rt: Runtime,
    ids: Sequence[int],
    *,
    user: UserInfo,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> DispositionOutcome:
    """Approve proposals and carry out their disposal; issue one certificate for the batch.

    All or nothing up to the disposal: any proposal missing, hidden, not open or under a legal
    hold refuses the whole batch before anything is destroyed.

    :raises NotFoundError: a proposal does not exist or is about a record hidden from ``user``.
    :raises PermissionDeniedError: ``user`` may not approve dispositions.
    :raises ConflictError: a proposal is not open, or its record is under a legal hold.
    """
    ids = list(dict.fromkeys(ids))
    _checked(rt, user, ids)
    try:
        with rt.db.write() as session:
            for pid in ids:
                approve_proposal(session, pid, actor=user.name, reason=reason, now=now)
    except ConflictError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.disposition_approve, "disposition", error=exc)
        raise
    return finish_approved(rt, actor=user.name, only=ids)


def reject(
    rt: Runtime, ids: Sequence[int], *, user: UserInfo, reason: str | None = None
) -> list[ProposalInfo]:
    """Keep the records: reject proposals (``disposition.approve``), all or none."""
    ids = list(dict.fromkeys(ids))
    _checked(rt, user, ids)
    with rt.db.write() as session:
        return [reject_proposal(session, pid, actor=user.name, reason=reason) for pid in ids]


def finish_approved(
    rt: Runtime, *, actor: str, only: Sequence[int] | None = None
) -> DispositionOutcome:
    """Carry out approved proposals not yet disposed of, then certify every disposed one that
    has no certificate yet (also those an interrupted approval left).

    :param only: these proposals alone (an approval finishes its own batch); ``None``: all.
    """
    outcome = DispositionOutcome()
    with rt.db.read() as session:
        todo = [p for p in proposals_to_finish(session) if only is None or p.id in only]
    reports: dict[int, DestroyReport] = {}
    certify: list[int] = []
    certified_records: list[int] = []
    for p in todo:
        if p.state is ProposalState.approved:
            try:
                reports[p.id] = destroy_record_content(rt, p.archive_code, actor=actor)
            except ConflictError:
                # A hold came after the approval: it wins, nothing was destroyed.
                with rt.db.write() as session:
                    withdraw_proposal(session, p.id, reason="legal hold", actor=actor)
                outcome.withheld.append(p.archive_code)
                continue
            with rt.db.write() as session:
                mark_proposal_disposed(session, p.id)
            outcome.copies_left.extend(reports[p.id].copies_left)
        certify.append(p.id)
        certified_records.append(p.record_id)
        outcome.disposed.append(p.archive_code)
    if certify:
        outcome.certificate = _issue(rt, certify, reports, actor=actor)
        # The vault's tombstones name the certificate too, for a restore from the stores.
        certify_tombstones(rt, certified_records, actor=actor)
    return outcome


# --- certificates ----------------------------------------------------------------------------


def _issue(
    rt: Runtime, ids: Sequence[int], reports: dict[int, DestroyReport], *, actor: str
) -> CertificateInfo:
    key = ensure_signing_key(rt, actor=actor)
    issued = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert_id = f"DC{issued:%Y%m%d}-{secrets.token_hex(4)}"
    with rt.db.write() as session:
        head = chain_head(session)
        entries = []
        for p in get_proposals(session, ids):
            record = get_record_by_id(session, p.record_id)
            objects = objects_of_record(session, p.record_id)
            report = reports.get(p.id)
            entries.append(
                {
                    "archive_code": p.archive_code,
                    "business_type": p.business_type,
                    "year": p.year,
                    "security_class": p.security_class.value,
                    "retention": p.retention.value,
                    "trigger": p.trigger.value,
                    "trigger_year": p.trigger_year,
                    "due_year": p.due_year,
                    "record_created_at": _stamp(record.created_at),
                    "pages": record.page_count,
                    "size": record.size,
                    "plaintext_sha256": record.plaintext_sha256,
                    "proposal_id": p.id,
                    "proposed_by": p.proposed_by,
                    "proposed_at": _stamp(p.proposed_at),
                    "approved_by": p.decided_by,
                    "approved_at": _stamp(p.decided_at),
                    "approval_reason": p.decision_reason,
                    "disposed_at": _stamp(p.disposed_at),
                    "objects_destroyed": sum(1 for o in objects if o.is_shredded),
                    # Unknown (None) when an interrupted approval is finished by a later run.
                    "copies_left": len(report.copies_left) if report else None,
                }
            )
            # "plaintext_sha256" holds the original's digest in its own algorithm; named
            # only when it is not SHA-256, so certificates of SHA-256 records are unchanged.
            algorithm = next(
                (o.digest_algorithm for o in objects if o.role is ObjectRole.original), "sha256"
            )
            if algorithm != "sha256":
                entries[-1]["digest_algorithm"] = algorithm
        body = {
            "certificate_id": cert_id,
            "issued_at": _stamp(issued),
            "issued_by": actor,
            "audit_head": {"event_id": head.id, "hash": head.hash} if head else None,
            "records": entries,
        }
        doc = sign_certificate(body, key)
        text = certificate_json(doc)
        return add_certificate(
            session,
            certificate_id=cert_id,
            issued_at=issued,
            issued_by=actor,
            key_id=key.id,
            document=text.decode("utf-8"),
            proposal_ids=ids,
            document_sha256=hashlib.sha256(text).hexdigest(),
        )


def certificate(rt: Runtime, certificate_id: str, user: UserInfo | None = None) -> CertificateInfo:
    """A certificate as issued (``disposition.approve``).

    :raises NotFoundError: no such certificate.
    """
    if user is not None:
        _require(rt, user, Action.disposition_approve, f"certificate:{certificate_id}")
    with rt.db.read() as session:
        return get_certificate(session, certificate_id)


def _signing_key(rt: Runtime, key_id: str) -> SigningKey:
    keyring = rt.fresh_vault().keyring
    key = keyring.signing_key if keyring is not None else None
    if key is None or key.id != key_id:
        raise KeyringError(f"the signing key {key_id} is not in this keyring")
    return key


def certificate_pdf_bytes(rt: Runtime, cert: CertificateInfo) -> bytes:
    """The certificate as a signed PDF (the same bytes each time).

    :raises KeyringError: the keyring no longer holds the key that signed it.
    """
    doc = json.loads(cert.document)
    return certificate_pdf(doc, _signing_key(rt, cert.key_id))


def public_key_pem(rt: Runtime, *, actor: str) -> str:
    """The instance's public signing key (PEM, SubjectPublicKeyInfo) for auditors; the key
    pair is made on first need."""
    key = ensure_signing_key(rt, actor=actor)
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def trusted_key_from_pem(data: bytes) -> bytes:
    """The raw public key in a PEM file written by :func:`public_key_pem`.

    :raises InvalidInputError: not a PEM Ed25519 public key.
    """
    try:
        public = load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidInputError("the key file is not a PEM public key") from None
    if not isinstance(public, Ed25519PublicKey):
        raise InvalidInputError("the key file holds no Ed25519 public key")
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_file(rt: Runtime | None, data: bytes, *, key_pem: bytes | None) -> VerifiedCertificate:
    """Check a certificate file against ``key_pem``, or else this instance's signing key.

    :raises CorruptDataError: the file fails the check (any edit, another key).
    :raises KeyringError: no key given and this instance has no signing key.
    """
    if key_pem is not None:
        trusted = [trusted_key_from_pem(key_pem)]
    else:
        if rt is None:
            raise InvalidInputError("give the public key to check against (--key FILE)")
        keyring = rt.fresh_vault().keyring
        if keyring is None or keyring.signing_key is None:
            raise KeyringError("this instance has no signing key; give --key FILE")
        trusted = [keyring.signing_key.public_key]
    return verify_certificate(data, trusted)
