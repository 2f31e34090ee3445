"""The intake review's transitions in the catalog (docs/review.md), on SQLite and PostgreSQL:
gates in order, a decision only for the gate waiting, a return needs a reason, a resubmission
only after a return, each change audited with before and after, listings through the
visibility filter, and duplicate suspicion that never names a hidden record."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from catalog import (
    Database,
    NewRecord,
    RecordContent,
    RecordInfo,
    ReviewGate,
    ReviewState,
    Role,
    SecurityClass,
    UserInfo,
    create_record,
    decide_gate,
    duplicate_suspects,
    get_review,
    list_events,
    list_reviews,
    open_review,
    order_gates,
    resubmit_review,
    seed_business_types,
)
from dangan.errors import ConflictError, InvalidInputError

EVERY = tuple(ReviewGate)


@pytest.fixture
def seeded(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="system")
    return database


def _user(role: Role) -> UserInfo:
    now = dt.datetime.now(dt.UTC)
    return UserInfo(id=1, name=role.value, role=role, disabled=False, created_at=now)


def _record(
    db: Database,
    new: NewRecord,
    gates: tuple[ReviewGate, ...] = EVERY,
    content: RecordContent | None = None,
) -> RecordInfo:
    with db.write() as s:
        made = create_record(s, new, actor="li", content=content)
        open_review(s, made.id, gates, actor="li", archive_code=made.archive_code)
    return made


def test_a_record_passes_its_gates_in_order_and_is_accepted(seeded: Database) -> None:
    made = _record(seeded, NewRecord("奖励", 2024))
    code, rid = made.archive_code, made.id
    for gate in (ReviewGate.intake_check, ReviewGate.data_entry):
        # Only the gate waiting is decided: the next one is refused, nothing changes.
        with (
            seeded.write() as s,
            pytest.raises(ConflictError, match="not waiting at final_review"),
        ):
            decide_gate(
                s,
                rid,
                ReviewGate.final_review,
                passed=True,
                reason=None,
                actor="li",
                archive_code=code,
            )
        with seeded.write() as s:
            info = decide_gate(
                s, rid, gate, passed=True, reason=None, actor="li", archive_code=code
            )
    assert (info.state, info.gate) == (ReviewState.open, ReviewGate.system_check)
    assert not info.reopened  # out of the clerk's hands
    with seeded.write() as s:
        findings = [
            {
                "rule": "R3",
                "name": "duplicate suspicion",
                "outcome": "attention",
                "detail": "like 2024-奖励-009",
            }
        ]
        with pytest.raises(ConflictError, match="stale"):
            decide_gate(
                s,
                rid,
                ReviewGate.system_check,
                passed=True,
                reason=None,
                actor="worker",
                archive_code=code,
                findings=findings,
                round_=2,
            )
    with seeded.write() as s:
        decide_gate(
            s,
            rid,
            ReviewGate.system_check,
            passed=True,
            reason=None,
            actor="worker",
            archive_code=code,
            findings=findings,
            round_=1,
        )
        done = decide_gate(
            s,
            rid,
            ReviewGate.final_review,
            passed=True,
            reason="看过",
            actor="zhao",
            archive_code=code,
        )
    assert (done.state, done.gate, done.decided_by) == (ReviewState.accepted, None, "zhao")
    assert done.findings == tuple(findings)
    with seeded.read() as s:
        events = list_events(s, action="record.review", target=f"record:{code}")
    assert [e.detail["decision"] for e in events] == ["open", "pass", "pass", "pass", "pass"]
    last = events[-1].detail
    assert last["before"] == {"gate": "final_review", "state": "open", "round": 1}
    assert last["after"] == {"gate": None, "state": "accepted", "round": 1}
    assert events[-1].actor == "zhao"


def test_a_return_needs_a_reason_and_a_resubmission_starts_after_the_clerks_gates(
    seeded: Database,
) -> None:
    made = _record(
        seeded, NewRecord("奖励", 2024), (ReviewGate.data_entry, ReviewGate.final_review)
    )
    code, rid = made.archive_code, made.id
    with seeded.write() as s:
        decide_gate(
            s, rid, ReviewGate.data_entry, passed=True, reason=None, actor="li", archive_code=code
        )
    for reason in (None, "  ", "理" * 501):
        with seeded.write() as s, pytest.raises(InvalidInputError):
            decide_gate(
                s,
                rid,
                ReviewGate.final_review,
                passed=False,
                reason=reason,
                actor="zhao",
                archive_code=code,
            )
    with seeded.write() as s, pytest.raises(ConflictError, match="only a record sent back"):
        resubmit_review(s, rid, actor="li", archive_code=code)
    with seeded.write() as s:
        back = decide_gate(
            s,
            rid,
            ReviewGate.final_review,
            passed=False,
            reason="缺少签字页",
            actor="zhao",
            archive_code=code,
        )
    assert (back.state, back.gate, back.reason) == (
        ReviewState.returned,
        ReviewGate.final_review,
        "缺少签字页",
    )
    assert back.reopened
    with seeded.write() as s:
        again = resubmit_review(s, rid, actor="li", archive_code=code)
    # No system check for this type: straight to 复核, in a new round, the reason cleared.
    assert (again.state, again.gate, again.round, again.reason) == (
        ReviewState.open,
        ReviewGate.final_review,
        2,
        None,
    )
    with seeded.read() as s:
        (event,) = [
            e for e in list_events(s, action="record.review") if e.detail["decision"] == "resubmit"
        ]
    assert event.detail["returned_reason"] == "缺少签字页"
    assert event.detail["passed"] == ["data_entry"]


def test_a_type_without_gates_is_accepted_at_once_and_a_required_gate_is_added(
    seeded: Database,
) -> None:
    made = _record(seeded, NewRecord("奖励", 2024), ())
    with seeded.read() as s:
        info = get_review(s, made.id)
    assert info is not None
    assert info.state is ReviewState.accepted
    with seeded.write() as s, pytest.raises(ConflictError, match="has started already"):
        open_review(s, made.id, EVERY, actor="li", archive_code=made.archive_code)
    flagged = _record(seeded, NewRecord("奖励", 2024), (ReviewGate.system_check,))
    with seeded.write() as s:
        info = decide_gate(
            s,
            flagged.id,
            ReviewGate.system_check,
            passed=True,
            reason=None,
            actor="worker",
            archive_code=flagged.archive_code,
            require_gate=ReviewGate.final_review,
        )
    assert info.gates == (ReviewGate.system_check, ReviewGate.final_review)
    assert (info.state, info.gate) == (ReviewState.open, ReviewGate.final_review)
    with pytest.raises(InvalidInputError, match="unknown review gate"):
        order_gates(["final_review", "approve"])
    assert order_gates(["final_review", "intake_check", "final_review"]) == (
        ReviewGate.intake_check,
        ReviewGate.final_review,
    )


def test_listings_and_duplicate_suspicion_never_show_a_hidden_record(seeded: Database) -> None:
    content = RecordContent("image/png", 10, "ab" * 32, 1)
    internal = _record(seeded, NewRecord("奖励", 2024, student_no="S1"), content=content)
    twin = _record(seeded, NewRecord("奖励", 2024, student_no="S1"))
    contract = _record(seeded, NewRecord("合同", 2024), content=replace(content))
    with seeded.read() as s:
        # The same student, type and year; the same content only in a contract record.
        assert duplicate_suspects(s, internal.id) == [twin.archive_code]
        assert duplicate_suspects(s, contract.id) == [internal.archive_code]
        clerk_rows, clerk_total = list_reviews(s, _user(Role.clerk), state=ReviewState.open)
        director_rows, director_total = list_reviews(s, _user(Role.director))
        at_entry, _ = list_reviews(s, _user(Role.director), gate=ReviewGate.data_entry)
    assert {r.archive_code for r in clerk_rows} == {internal.archive_code, twin.archive_code}
    assert clerk_total == 2
    assert contract.archive_code in {r.archive_code for r in director_rows}
    assert director_total == 3
    assert at_entry == []
    assert clerk_rows[0].security_class is SecurityClass.internal
