"""Retention schedules, legal holds and proposals in the catalog, on each database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from catalog import (
    Database,
    NewRecord,
    ProposalState,
    RecordStatus,
    RetentionTrigger,
    approve_proposal,
    create_record,
    due_year,
    ensure_not_held,
    list_proposals,
    list_schedules,
    open_proposals,
    place_hold,
    reject_proposal,
    release_hold,
    seed_business_types,
    set_graduation_year,
    set_schedule,
)
from catalog.models import Record, Retention
from catalog.retention_models import DispositionProposal
from dangan.errors import ConflictError, InvalidInputError

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _record(db: Database, business_type: str, year: int, student_no: str | None = None) -> int:
    with db.write() as s:
        info = create_record(
            s,
            NewRecord(business_type=business_type, year=year, student_no=student_no),
            actor="root",
        )
        s.get(Record, info.id).status = RecordStatus.archived.value  # type: ignore[union-attr]
        return info.id


@pytest.fixture
def db(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="root")
    return database


def _codes(db: Database) -> set[str]:
    with db.read() as s:
        return {p.archive_code for p in list_proposals(s)}


def test_due_years_and_the_office_defaults() -> None:
    assert due_year(2010, Retention.years_10) == 2021  # kept through the end of 2020
    assert due_year(1990, Retention.years_30) == 2021
    assert due_year(1990, Retention.permanent) is None


def test_permanent_never_due_ten_years_due_and_proposals_are_idempotent(db: Database) -> None:
    minutes = _record(db, "会议纪要", 2010)  # 10年 from 2010: due from 2021
    _record(db, "会议纪要", 2016)  # due from 2027: not yet
    _record(db, "新生入学", 1950)  # 永久: never
    _record(db, "成绩单", 1960)  # 永久: never
    with db.write() as s:
        first = open_proposals(s, actor="system", now=NOW)
    assert [p.archive_code for p in first.opened] == ["2010-会议纪要-001"]
    assert first.opened[0].record_id == minutes
    assert first.opened[0].due_year == 2021
    with db.write() as s:
        second = open_proposals(s, actor="system", now=NOW)
    assert second.opened == []
    assert second.already_open == ["2010-会议纪要-001"]
    with db.read() as s:
        assert len(list_proposals(s)) == 1
    # Even a hundred years on, permanent records are never proposed.
    with db.write() as s:
        later = open_proposals(s, actor="system", now=NOW.replace(year=2126))
    assert {p.archive_code for p in later.opened} == {"2016-会议纪要-001"}
    assert all("新生入学" not in c and "成绩单" not in c for c in _codes(db))


def _second_open_proposal(db: Database, rec: int) -> None:
    with db.write() as s:
        s.add(
            DispositionProposal(
                record_id=rec,
                open_record_id=rec,
                state="open",
                retention="10年",
                trigger="record_date",
                trigger_year=2010,
                due_year=2021,
                proposed_by="x",
            )
        )
        s.flush()


def test_a_second_open_proposal_is_refused_by_the_database(db: Database) -> None:
    rec = _record(db, "会议纪要", 2010)
    with db.write() as s:
        open_proposals(s, actor="system", now=NOW)
    with pytest.raises(IntegrityError):
        _second_open_proposal(db, rec)


def test_counting_from_graduation(db: Database) -> None:
    assert {s.business_type: s.trigger for s in _schedules(db)}[
        "奖励"
    ] is RetentionTrigger.graduation
    _record(db, "奖励", 1990, student_no="S001")  # 30年; by its own year it would be due in 2021
    with db.write() as s:
        waiting = open_proposals(s, actor="system", now=NOW)
    assert waiting.opened == []
    assert waiting.awaiting_graduation_year == ["1990-奖励-001"]
    with db.write() as s:
        set_graduation_year(s, "S001", 1996, actor="root")  # due from 2027
        assert open_proposals(s, actor="system", now=NOW).opened == []
        set_graduation_year(s, "S001", 1994, actor="root")  # due from 2025
        opened = open_proposals(s, actor="system", now=NOW).opened
    assert [(p.trigger, p.trigger_year, p.due_year) for p in opened] == [
        (RetentionTrigger.graduation, 1994, 2025)
    ]


def _schedules(db: Database) -> list:  # type: ignore[type-arg]
    with db.read() as s:
        return list_schedules(s)


def test_a_schedule_can_be_changed(db: Database) -> None:
    _record(db, "会议纪要", 2010)
    with db.write() as s:
        set_schedule(s, "会议纪要", retention="永久", actor="zhang")
        assert open_proposals(s, actor="system", now=NOW).opened == []
        set_schedule(s, "会议纪要", retention="10年", trigger="graduation", actor="zhang")
        assert open_proposals(s, actor="system", now=NOW).opened == []  # no student: waits
        with pytest.raises(InvalidInputError):
            set_schedule(s, "会议纪要", retention="5年", actor="zhang")


@pytest.mark.parametrize(
    "hold",
    [
        {"student_no": "S9"},
        {"business_type": "会议纪要"},
        {"years": (2009, 2011)},
        {"record": True},
    ],
)
def test_every_kind_of_hold_blocks_proposal_and_approval(db: Database, hold: dict) -> None:  # type: ignore[type-arg]
    rec = _record(db, "会议纪要", 2010, student_no="S9")
    other = _record(db, "会议纪要", 2008)  # covered only by the type hold
    with db.write() as s:
        opened = open_proposals(s, actor="system", now=NOW).opened
    assert len(opened) == 2
    args = {"record_id": rec} if "record" in hold else hold
    with db.write() as s:
        placed = place_hold(s, reason="诉讼", actor="wang", **args)
    # The open proposal of the held record is withdrawn at the next scan, never approved.
    with pytest.raises(ConflictError, match="legal hold"), db.write() as s:
        approve_proposal(s, opened[0].id, actor="zhang")
    with db.write() as s:
        scan = open_proposals(s, actor="system", now=NOW)
        if "business_type" not in hold:
            ensure_not_held(s, other)  # the other record is not covered
    expected = ["2008-会议纪要-001", "2010-会议纪要-001"] if "business_type" in hold else []
    assert sorted(scan.withdrawn) == sorted({"2010-会议纪要-001", *expected})
    assert "2010-会议纪要-001" in scan.held
    with db.read() as s:
        states = {p.archive_code: p.state for p in list_proposals(s, states=ProposalState)}
    assert states["2010-会议纪要-001"] is ProposalState.withdrawn
    with db.write() as s, pytest.raises(ConflictError):
        ensure_not_held(s, rec)
    # Released, the record is proposed again.
    with db.write() as s:
        release_hold(s, placed.id, reason="结案", actor="zhang")
        with pytest.raises(ConflictError):
            release_hold(s, placed.id, reason="again", actor="zhang")
        again = open_proposals(s, actor="system", now=NOW)
    assert "2010-会议纪要-001" in [p.archive_code for p in again.opened]


def test_a_rejected_record_is_not_proposed_again_within_a_year(db: Database) -> None:
    _record(db, "会议纪要", 2010)
    with db.write() as s:
        (p,) = open_proposals(s, actor="system", now=NOW).opened
        reject_proposal(s, p.id, actor="zhang", reason="仍需参考", now=NOW)
        assert open_proposals(s, actor="system", now=NOW).recently_rejected == [p.archive_code]
        later = open_proposals(s, actor="system", now=NOW + dt.timedelta(days=366))
    assert [x.archive_code for x in later.opened] == [p.archive_code]
