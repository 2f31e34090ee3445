"""The intake review (材料初审 → 信息录入 → 系统校验 → 复核) as people and the system work it.

A new record's review opens at intake with the gates its business type needs
(``review.gates`` / ``review.type_gates``). Its clerk passes 材料初审 and 信息录入; the system
check (系统校验) runs as the ``review.system_check`` job once the record is at that gate and
its pipeline is done, reusing the four-property check's rules (``api/services/fourprop.py``)
with the code rule, OCR confidence, the digitization quality findings and duplicate
suspicion; a supervisor or director passes 复核. Any gate may send the record back with a
reason; its clerk corrects it (it is their draft again) and resubmits. The whole story is
``docs/review.md``.

Who may decide a gate is the policy's: the clerk's gates and a resubmission are
``record.update_draft`` on a record the review made its clerk's again; 复核 is
``record.review``. A hidden record answers as a missing one, and every refusal is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.services.access import require_action
from api.services.fourprop import Outcome, check_record
from api.services.runtime import Runtime, job_runtime, worker_actor
from catalog import (
    CLERK_GATES,
    PERSON_GATES,
    Action,
    JobContext,
    PageCheckInfo,
    RecordInfo,
    ReviewGate,
    ReviewInfo,
    ReviewRow,
    ReviewState,
    Stage,
    UserInfo,
    Verdict,
    audit_denied,
    count_awaiting_review,
    decide_gate,
    duplicate_suspects,
    get_record,
    get_review,
    list_pages,
    list_reviews,
    open_review,
    order_gates,
    parse_code,
    record_not_found,
    record_progress,
    record_target,
    register,
    require,
    resubmit_review,
)
from dangan.errors import ConflictError, DanganError, NotFoundError, PermissionDeniedError

__all__ = [
    "REVIEW_SYSTEM_CHECK",
    "SYSTEM_ENTERED",
    "Decision",
    "QualityNote",
    "ReviewQueue",
    "awaiting_count",
    "decide",
    "gates_for",
    "may_do",
    "queue_quality",
    "queue_system_check",
    "resubmit",
    "review_of",
    "review_queue",
    "start_review",
    "system_check",
]

REVIEW_SYSTEM_CHECK = "review.system_check"
REVIEW_PRIORITY = 300  # after intake (100), before the four-property check (400)
# Findings of these rules are the scan's (unread pages, digitization quality): a person
# judges them at 复核; they never send the record back by themselves.
_SCAN_RULES = frozenset({"I1", "U5"})
# An outcome of a finding: ``fail`` sends the record back; ``attention`` is shown at 复核.
FAIL = "fail"
ATTENTION = "attention"

Decision = Literal["pass", "return"]
# The reason the clerk's gates of a record the system entered are passed (docs/review.md).
SYSTEM_ENTERED = "entered by the system: no clerk to check it"


def gates_for(rt: Runtime, business_type: str) -> tuple[ReviewGate, ...]:
    """The gates a new record of ``business_type`` passes, in order."""
    settings = rt.settings.review
    return order_gates(settings.type_gates.get(business_type, settings.gates))


def start_review(rt: Runtime, session: Any, record: RecordInfo, *, actor: str) -> ReviewInfo:
    """Open a new record's review, in the transaction that creates the record.

    A record the system entered (no user: a script, ``dangan ingest`` without ``--as``) has
    no clerk, and nobody else may pass a clerk's gates: the system passes them, audited as
    ``actor`` with :data:`SYSTEM_ENTERED` as the reason, and the record goes on to the system
    check (queued as its pipeline finishes). A record a person entered waits for them.
    """
    info = open_review(
        session,
        record.id,
        gates_for(rt, record.business_type),
        actor=actor,
        archive_code=record.archive_code,
    )
    if record.created_by is None:
        while info.state is ReviewState.open and info.gate in CLERK_GATES:
            assert info.gate is not None  # noqa: S101 - narrowed by the CLERK_GATES test
            info = decide_gate(
                session,
                record.id,
                info.gate,
                passed=True,
                reason=SYSTEM_ENTERED,
                actor=actor,
                archive_code=record.archive_code,
            )
    return info


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewQueue:
    rows: tuple[ReviewRow, ...]
    total: int


def review_queue(
    rt: Runtime,
    user: UserInfo,
    *,
    state: ReviewState | None = None,
    gate: ReviewGate | None = None,
    mine: bool = False,
    awaiting: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> ReviewQueue:
    """The reviews of the records ``user`` may see, the longest waiting first.

    :param mine: only the records ``user`` entered (a clerk's returned records).
    :param awaiting: only the records waiting for a person: open at 材料初审, 信息录入 or
        复核, or sent back; with ``mine``, waiting for ``user`` (at the clerk's gates, or
        sent back).
    :raises PermissionDeniedError: ``user`` may not read records' metadata (audited).
    """
    require_action(rt, user, Action.record_read_metadata)
    with rt.db.read() as session:
        rows, total = list_reviews(
            session,
            user,
            state=state,
            gate=gate,
            created_by=user.id if mine else None,
            awaiting=_awaiting_gates(mine) if awaiting else None,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
    return ReviewQueue(tuple(rows), total)


def _awaiting_gates(mine: bool) -> frozenset[ReviewGate]:
    return CLERK_GATES if mine else PERSON_GATES


def awaiting_count(rt: Runtime, user: UserInfo, *, mine: bool = False) -> int:
    """How many records ``user`` may see wait for a person at a review gate (the dashboard's
    figure, what :func:`review_queue` lists with ``awaiting``); with ``mine``, those waiting
    for ``user``: entered by them and at their gates or sent back. Hidden records never count.
    """
    with rt.db.read() as session:
        return count_awaiting_review(
            session,
            user,
            gates=_awaiting_gates(mine),
            created_by=user.id if mine else None,
        )


@dataclass(frozen=True)
class QualityNote:
    """One digitization quality check of one page that did not pass (docs/quality.md)."""

    page: int
    check: PageCheckInfo


def queue_quality(rt: Runtime, rows: Sequence[ReviewRow]) -> dict[str, tuple[QualityNote, ...]]:
    """The digitization quality findings (warn or fail) of each listed record's pages, by
    archive code: figures and thresholds only, never text. The rows come from
    :func:`review_queue`, so every record in them is one the caller may see."""
    found: dict[str, tuple[QualityNote, ...]] = {}
    with rt.db.read() as session:
        for row in rows:
            found[row.archive_code] = tuple(
                QualityNote(p.number, c)
                for p in list_pages(session, row.review.record_id)
                for c in p.checks
                if c.verdict in (Verdict.warn, Verdict.fail)
            )
    return found


def may_do(user: UserInfo, row: ReviewRow) -> frozenset[str]:
    """What ``user`` may do with a listed record's review, as the policy says: ``pass`` and
    ``return`` at the gate it waits at, ``resubmit`` when it was sent back. For the pages'
    buttons only: the decision itself is checked again when it is made."""
    review = row.review
    if review.state is ReviewState.open and review.gate in PERSON_GATES:
        assert review.gate is not None  # noqa: S101 - narrowed by the PERSON_GATES test
        wanted: tuple[str, ...] = ("pass", "return")
        action = _gate_action(review.gate)
    elif review.state is ReviewState.returned:
        wanted, action = ("resubmit",), resubmit_action(row)
    else:
        return frozenset()
    try:
        require(user, action, row, reopened=review.reopened)
    except (NotFoundError, PermissionDeniedError):
        return frozenset()
    return frozenset(wanted)


def _seen(session: Any, code: str, user: UserInfo) -> RecordInfo:
    """The record ``code`` in ``session`` if ``user`` may see it; a hidden record answers
    exactly as a missing one."""
    try:
        record = get_record(session, code)
    except NotFoundError:
        raise record_not_found() from None
    require(user, Action.record_read_metadata, record)
    return record


def _visible(rt: Runtime, code: str, user: UserInfo, action: Action) -> RecordInfo:
    """The record ``code`` if it exists for ``user`` (else "no such record", audited)."""
    try:
        with rt.db.read() as session:
            record = _seen(session, code, user)
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, record_target(code), error=exc)
        raise
    return record


def review_of(rt: Runtime, code: str, user: UserInfo) -> ReviewInfo | None:
    """The record's review; ``None`` for a record entered before the gates.

    :raises NotFoundError: no such record, or hidden from ``user``.
    """
    record = _visible(rt, code, user, Action.record_read_metadata)
    with rt.db.read() as session:
        return get_review(session, record.id)


# --- people's decisions ----------------------------------------------------------------------


def _gate_action(gate: ReviewGate) -> Action:
    return Action.record_update_draft if gate in CLERK_GATES else Action.record_review


def decide(
    rt: Runtime,
    code: str,
    user: UserInfo,
    decision: Decision,
    *,
    reason: str | None = None,
    gate: ReviewGate | None = None,
) -> ReviewInfo:
    """Pass the gate the record waits at, or send the record back with ``reason``.

    The clerk's gates (材料初审, 信息录入) are decided by the clerk who entered the record
    (``record.update_draft``); 复核 by a supervisor or director (``record.review``); the
    system check by the system alone.

    :param gate: the gate the caller means; refused when the record waits at another.
    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: the policy refuses this gate to ``user`` (audited).
    :raises ConflictError: the record waits at no gate a person decides, or at another one.
    :raises InvalidInputError: a return without a reason, or a reason too long.
    """
    action = _gate_action(gate) if gate is not None else Action.record_review
    try:
        with rt.db.write() as session:
            record = _seen(session, code, user)
            review = get_review(session, record.id)
            if review is None:
                raise ConflictError("this record has no intake review (entered before the gates)")
            waiting = review.gate if review.state is ReviewState.open else None
            target = gate or waiting
            if target is None:
                raise ConflictError(f"the record waits at no gate: it is {review.state.value}")
            action = _gate_action(target)
            require(user, action, record, reopened=review.reopened)
            if target is ReviewGate.system_check:
                raise ConflictError("the system check is run by the system, not decided by hand")
            info = decide_gate(
                session,
                record.id,
                target,
                passed=decision == "pass",
                reason=reason,
                actor=user.name,
                archive_code=code,
            )
            _queue_if_at_check(rt, session, record, info, actor=user.name)
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, record_target(code), error=exc)
        raise
    return info


def resubmit_action(record: Any) -> Action:
    """Who resubmits a record that was sent back: its clerk (``record.update_draft``); for
    a record the system entered, which has no clerk, a reviewer (``record.review``) once the
    record is put right, so that it is never stuck."""
    return Action.record_update_draft if record.created_by is not None else Action.record_review


def resubmit(rt: Runtime, code: str, user: UserInfo) -> ReviewInfo:
    """Send a record that was sent back into review again, as its clerk
    (``record.update_draft``): its clerk's gates pass and the system check runs again. A
    record the system entered is resubmitted by a supervisor or director (``record.review``).

    :raises NotFoundError: no such record, or hidden from ``user``.
    :raises PermissionDeniedError: not the clerk who entered it (audited).
    :raises ConflictError: the record was not sent back.
    """
    action = Action.record_update_draft
    try:
        with rt.db.write() as session:
            record = _seen(session, code, user)
            review = get_review(session, record.id)
            action = resubmit_action(record)
            require(user, action, record, reopened=review is not None and review.reopened)
            info = resubmit_review(session, record.id, actor=user.name, archive_code=code)
            _queue_if_at_check(rt, session, record, info, actor=user.name)
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, record_target(code), error=exc)
        raise
    return info


# --- the system check (系统校验) -------------------------------------------------------------


class SystemCheckPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive_code: str = Field(min_length=1, max_length=64)
    round: int = Field(ge=1)


def _queue_if_at_check(
    rt: Runtime, session: Any, record: RecordInfo, info: ReviewInfo, *, actor: str
) -> None:
    if info.state is ReviewState.open and info.gate is ReviewGate.system_check:
        rt.enqueue(
            session,
            REVIEW_SYSTEM_CHECK,
            {"archive_code": record.archive_code, "round": info.round},
            key=f"review:{record.archive_code}:{info.round}:gate",
            actor=actor,
            priority=REVIEW_PRIORITY,
        )


def queue_system_check(rt: Runtime, session: Any, record: RecordInfo, *, actor: str) -> None:
    """Queue the record's system check if it waits for it: called as the pipeline finishes
    (the check of a record whose clerk passed 信息录入 before its pages were read)."""
    info = get_review(session, record.id)
    if info is not None and info.state is ReviewState.open and info.gate is ReviewGate.system_check:
        rt.enqueue(
            session,
            REVIEW_SYSTEM_CHECK,
            {"archive_code": record.archive_code, "round": info.round},
            key=f"review:{record.archive_code}:{info.round}:pipeline",
            actor=actor,
            priority=REVIEW_PRIORITY,
        )


def _finding(rule: str, name: str, outcome: str, detail: str) -> dict[str, Any]:
    return {"rule": rule, "name": name, "outcome": outcome, "detail": detail}


def system_check(rt: Runtime, record: RecordInfo, *, actor: str) -> list[dict[str, Any]]:
    """The system check's findings on one record: the four-property check's rules (quick:
    copies by their hashes) and the review's own: R1 the archive code follows the rule, R2
    every page was read with confidence, R3 no other record looks like this one. Only what
    is not a pass is listed; a ``fail`` sends the record back, ``attention`` goes to 复核."""
    found: list[dict[str, Any]] = []
    checked = check_record(rt, record, deep=False, actor=actor)
    for item in checked.items:
        if item.outcome is Outcome.fail:
            outcome = ATTENTION if item.rule in _SCAN_RULES else FAIL
        elif item.outcome is Outcome.warn:
            outcome = ATTENTION
        else:
            continue
        found.append(_finding(item.rule, item.name, outcome, item.detail))
    try:
        code = parse_code(record.archive_code)
        code_ok = (code.year, code.business_type, code.serial) == (
            record.year,
            record.business_type,
            record.serial,
        )
    except DanganError:
        code_ok = False
    if not code_ok:
        found.append(
            _finding("R1", "archive code rule", FAIL, "not 年份-业务类型-编号 of the record")
        )
    minimum = rt.settings.quality.min_confidence
    with rt.db.read() as session:
        pages = list_pages(session, record.id)
        progress = record_progress(session, record.id)
        suspects = duplicate_suspects(session, record.id)
    low = [
        f"page {p.number} "
        + ("not read" if p.confidence is None else f"{p.confidence:.2f}")
        + ("" if not p.needs_review else " (flagged)")
        for p in pages
        if p.confidence is None or p.confidence < minimum or p.needs_review
    ]
    if low:
        found.append(
            _finding("R2", "OCR confidence", ATTENTION, f"≥ {minimum:g}: " + "; ".join(low[:10]))
        )
    if progress.needs_review:
        found.append(
            _finding("R4", "flagged for review", ATTENTION, "digitization quality blocks this type")
        )
    if suspects:
        found.append(
            _finding("R3", "duplicate suspicion", ATTENTION, "like " + ", ".join(suspects[:10]))
        )
    return found


@register(REVIEW_SYSTEM_CHECK, SystemCheckPayload)
def system_check_job(ctx: JobContext[Any], payload: SystemCheckPayload) -> None:
    """Run the system check of a record waiting for it (in that round), and pass the gate or
    send the record back with the failed rules as the reason. A record whose pipeline is not
    done waits: the pipeline queues the check again as it finishes."""
    rt = job_runtime(ctx, "review")
    actor = worker_actor(ctx)
    with rt.db.read() as session:
        try:
            record = get_record(session, payload.archive_code)
        except NotFoundError:
            return
        review = get_review(session, record.id)
        stage = record_progress(session, record.id).stage
    if (
        review is None
        or review.state is not ReviewState.open
        or review.gate is not ReviewGate.system_check
        or review.round != payload.round
        or stage is not Stage.done
    ):
        return
    findings = system_check(rt, record, actor=actor)
    failed = [f for f in findings if f["outcome"] == FAIL]
    reason = "; ".join(f"{f['rule']} {f['name']}: {f['detail']}" for f in failed)[:500] or None
    ctx.ensure_lease()
    with rt.db.write() as session:
        try:
            decide_gate(
                session,
                record.id,
                ReviewGate.system_check,
                passed=not failed,
                reason=reason,
                actor=actor,
                archive_code=record.archive_code,
                findings=findings,
                round_=payload.round,
                # A record its type's quality rules flag always meets a person (docs/quality.md).
                require_gate=ReviewGate.final_review
                if any(f["rule"] == "R4" for f in findings)
                else None,
            )
        except ConflictError:
            return  # decided since (another attempt, a resubmission): nothing to do
