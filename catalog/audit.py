"""The audit trail (留痕): append-only and hash-chained.

Each event stores the hash of the one before it, and its own hash covers a canonical encoding
of all its fields (see :func:`_canonical`), so that changing, removing, inserting or
reordering any event breaks the chain at that point. Each event records the digest it is hashed
with (``digest_algorithm``: SHA-256, or SM3 of GB/T 32905 when the catalog is opened with
``audit_digest="sm3"``), so one chain may hold both and a switch rewrites nothing: an SM3
event names its digest inside what it hashes, so the name cannot be swapped, and a SHA-256
event hashes exactly as every event did before the digest was selectable.

Removing events from the *end* leaves a valid shorter chain: that is caught by comparing with
a head exported earlier (:func:`chain_head`, ``dangan audit head``).

An event is written in the same transaction as the change it records; a denied attempt is
written in a transaction of its own (the attempt itself rolled back). Details must never carry
record text, OCR text, passwords or keys: ids, codes and field names only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.models import AuditEvent, utcnow

__all__ = [
    "AUDIT_DIGESTS",
    "GENESIS_HASH",
    "AuditEventInfo",
    "ChainHead",
    "ChainProblem",
    "ChainReport",
    "chain_head",
    "count_events",
    "list_events",
    "record_event",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
# Bumped if the canonical encoding ever changes; part of every hash.
_HASH_DOMAIN = b"dangan-audit-v1\n"
AUDIT_DIGESTS = ("sha256", "sm3")
"""The digests an event may be hashed with, by their ``hashlib`` names."""
# Any constant works; it names the one lock that serialises appends on PostgreSQL.
_PG_APPEND_LOCK = 0x64616E67616E

Outcome = Literal["ok", "denied", "error"]


@dataclass(frozen=True)
class AuditEventInfo:
    id: int
    at: dt.datetime
    actor: str
    action: str
    outcome: str
    target: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str
    digest_algorithm: str = "sha256"


@dataclass(frozen=True)
class ChainHead:
    """The last event's id and hash: keep it somewhere else to detect a cut tail."""

    id: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash}


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    reason: str

    def __str__(self) -> str:
        return f"audit event {self.event_id}: {self.reason}"


@dataclass
class ChainReport:
    events: int = 0
    head: ChainHead | None = None
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_detail(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(
        dict(detail or {}), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


def _canonical(
    *,
    id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    outcome: str,
    target: str | None,
    detail: str,
    prev_hash: str,
    digest_algorithm: str = "sha256",
) -> bytes:
    # The hash input: every column but the hash itself, as sorted-key compact UTF-8 JSON.
    # `detail` is already canonical JSON text and is hashed as that text. A SHA-256 event
    # leaves its digest out, so it hashes exactly as events did before the digest was
    # selectable; any other names it, so it cannot pass for a SHA-256 one.
    doc: dict[str, Any] = {
        "action": action,
        "actor": actor,
        "at": _iso(at),
        "detail": detail,
        "id": id,
        "outcome": outcome,
        "prev_hash": prev_hash,
        "target": target,
    }
    if digest_algorithm != "sha256":
        doc["digest_algorithm"] = digest_algorithm
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _hash_of(row: AuditEvent) -> str:
    payload = _canonical(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        target=row.target,
        detail=row.detail,
        prev_hash=row.prev_hash,
        digest_algorithm=row.digest_algorithm,
    )
    return _digest(row.digest_algorithm, _HASH_DOMAIN + payload)


def _digest(algorithm: str, data: bytes) -> str:
    """The hex digest of ``data``; an unknown digest raises ``ValueError`` (a row claiming
    one is reported by :func:`verify_chain`, a setting naming one is refused earlier)."""
    if algorithm not in AUDIT_DIGESTS:
        raise ValueError(f"unknown audit digest {algorithm!r}")
    return hashlib.new(algorithm, data).hexdigest()


def _info(row: AuditEvent) -> AuditEventInfo:
    return AuditEventInfo(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        target=row.target,
        detail=json.loads(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
        digest_algorithm=row.digest_algorithm,
    )


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    outcome: Outcome = "ok",
    detail: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEventInfo:
    """Append one event to the chain, inside the caller's transaction.

    :param actor: a user name, or ``system`` / ``worker:<id>`` for the machine.
    :param action: a stable dotted verb such as ``record.create`` or ``user.disable``.
    :param target: what was acted on, e.g. ``record:2023-新生入学-001`` or ``user:alice``.
    :param detail: small JSON-able facts (ids, field names); never content or secrets. An
        event whose actor holds a break-glass grant in force gets ``"breakglass": <grant id>``.

    The event is hashed with the session's ``audit_digest`` (``Database(audit_digest=...)``,
    SHA-256 unless the catalog was opened for SM3).
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Appends must be serial or two events would claim the same predecessor.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_APPEND_LOCK})
    # On SQLite every write transaction already holds the database lock (BEGIN IMMEDIATE).
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    prev_id, prev_hash = (last.id, last.hash) if last else (0, GENESIS_HASH)
    # Microseconds are what both databases keep; the hash must survive the round trip.
    at = (now or utcnow()).astimezone(dt.UTC)
    # Everything a user does while a break-glass grant is in force is marked with it, inside
    # the hashed detail (docs/breakglass.md). Imported here: the grants' module uses this one.
    from catalog.breakglass import grant_mark

    grant = grant_mark(session, actor, at)
    if grant is not None:
        detail = {**(detail or {}), "breakglass": grant}
    row = AuditEvent(
        id=prev_id + 1,
        at=at,
        actor=actor,
        action=action,
        outcome=outcome,
        target=target,
        detail=_canonical_detail(detail),
        prev_hash=prev_hash,
        hash="",
        digest_algorithm=str(session.info.get("audit_digest", "sha256")),
    )
    row.hash = _hash_of(row)
    session.add(row)
    session.flush()
    return _info(row)


def chain_head(session: Session) -> ChainHead | None:
    """The newest event's id and hash, or ``None`` for an empty trail."""
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    return ChainHead(last.id, last.hash) if last else None


def _walk(session: Session) -> Iterator[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    for row in session.scalars(stmt):
        yield row
        session.expunge(row)


def verify_chain(
    session: Session, *, expected_head: ChainHead | None = None, first_only: bool = False
) -> ChainReport:
    """Walk the whole trail and report every break.

    :param expected_head: a head kept from earlier; its event must still be in the chain with
        the same hash (a shorter chain means the tail was cut).
    :param first_only: stop at the first problem.
    """
    report = ChainReport()
    prev_id, prev_hash = 0, GENESIS_HASH
    seen_expected = expected_head is None
    for row in _walk(session):
        report.events += 1
        problem = None
        if row.id != prev_id + 1:
            problem = f"follows event {prev_id}: events are missing or out of order"
        elif row.prev_hash != prev_hash:
            problem = "does not link to the event before it (an event was removed or inserted)"
        elif row.digest_algorithm not in AUDIT_DIGESTS:
            problem = f"names an unknown digest {row.digest_algorithm!r} (the event was altered)"
        elif _hash_of(row) != row.hash:
            problem = "its content does not match its hash (the event was altered)"
        if problem is not None:
            report.problems.append(ChainProblem(row.id, problem))
            if first_only:
                return report
        if expected_head is not None and row.id == expected_head.id:
            seen_expected = True
            if row.hash != expected_head.hash:
                report.problems.append(
                    ChainProblem(row.id, "differs from the head exported earlier")
                )
        # Continue from what the row claims so one altered event yields one problem.
        prev_id, prev_hash = row.id, row.hash
    if expected_head is not None and not seen_expected:
        report.problems.append(
            ChainProblem(
                expected_head.id,
                f"is missing: the trail ends at event {prev_id} (its tail was cut)",
            )
        )
    report.head = ChainHead(prev_id, prev_hash) if prev_id else None
    return report


def list_events(
    session: Session,
    *,
    after_id: int = 0,
    limit: int = 100,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    targets: Sequence[str] | None = None,
) -> list[AuditEventInfo]:
    """Events in chain order, for the audit views; filtered by exact action, actor or target
    (or any of ``targets``: a record's code and its former codes)."""
    stmt = select(AuditEvent).where(AuditEvent.id > after_id)
    if targets is not None:
        stmt = stmt.where(AuditEvent.target.in_(list(targets)))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if target:
        stmt = stmt.where(AuditEvent.target == target)
    return [_info(r) for r in session.scalars(stmt.order_by(AuditEvent.id).limit(limit))]


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
