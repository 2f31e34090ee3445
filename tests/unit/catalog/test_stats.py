"""The dashboard's figures on a small catalog: each count, and that a contract record changes
none of them for those who may not see it."""

from __future__ import annotations

import datetime as dt

from catalog import (
    INTAKE_DAYS,
    Database,
    PageOutcome,
    RecordStatus,
    Role,
    SecurityClass,
    UserInfo,
    archive_stats,
    claim,
    create_record,
    enqueue,
    fail,
    mark_page_done,
    mark_page_failed,
    seed_business_types,
    set_stage,
    start_pages,
)
from catalog.models import ObjectRole, Stage
from catalog.objects import NewCopy, add_object, refresh_record_status
from catalog.records import NewRecord

NOW = dt.datetime(2024, 5, 20, 9, 30, tzinfo=dt.UTC)
H = "a" * 64


def _user(role: Role) -> UserInfo:
    return UserInfo(1, f"{role.value}1", role, False, NOW)


def _outcome(*, needs_review: bool) -> PageOutcome:
    return PageOutcome(
        "t" * 32, 100, 100, 0, 0.0, "tesseract", 0.4 if needs_review else 0.95, needs_review
    )


def _dead_job(db: Database, key: str, payload: dict[str, str]) -> None:
    with db.write() as s:
        enqueue(s, "test.stats", payload, idempotency_key=key, actor="test")
    job = claim(db, "w", lease_seconds=60, kinds=["test.stats"])
    assert job is not None
    fail(db, job.id, "w", "gave up", permanent=True)


def _world(db: Database) -> dict[str, str]:
    """Three internal records and one contract record, each with something to count."""
    codes: dict[str, str] = {}
    with db.write() as s:
        seed_business_types(s, actor="system")
        done = create_record(s, NewRecord("学籍变更", 2023), actor="test")
        reading = create_record(s, NewRecord("学籍变更", 2022), actor="test")
        prize = create_record(s, NewRecord("奖励", 2023), actor="test")
        contract = create_record(s, NewRecord("合同", 2023), actor="test")
        assert contract.security_class is SecurityClass.contract
        for rec, name in ((done, "done"), (reading, "reading"), (prize, "prize"), (contract, "c")):
            codes[name] = rec.archive_code
        # done: two pages read, one of them poorly; both copies ok.
        start_pages(s, done.id, 2)
        mark_page_done(s, done.id, 1, _outcome(needs_review=False))
        mark_page_done(s, done.id, 2, _outcome(needs_review=True))
        set_stage(s, done.id, Stage.done)
        # reading: one page failed, one still pending; its replica copy is missing.
        start_pages(s, reading.id, 2)
        mark_page_failed(
            s, reading.id, 1, error="ocr_failed", actor="test", archive_code=reading.archive_code
        )
        set_stage(s, reading.id, Stage.ocr)
        # prize: done, both copies fine. contract: everything wrong at once.
        set_stage(s, prize.id, Stage.done)
        start_pages(s, contract.id, 3)
        for n in (1, 2):
            mark_page_failed(
                s, contract.id, n, error="x", actor="test", archive_code=contract.archive_code
            )
        mark_page_done(s, contract.id, 3, _outcome(needs_review=True))
        set_stage(s, contract.id, Stage.ocr)
        for rec, oid, replica_ok in (
            (done, "1" * 32, True),
            (reading, "2" * 32, False),
            (prize, "3" * 32, True),
            (contract, "4" * 32, False),
        ):
            add_object(
                s,
                object_id=oid,
                record_id=rec.id,
                role=ObjectRole.original,
                key_id="k1",
                wrapped_key=b"wrapped",
                size=10,
                plaintext_sha256=H,
                copies=[
                    NewCopy("primary", True, 100, H),
                    NewCopy(
                        "replica", replica_ok, 100 if replica_ok else 0, H if replica_ok else ""
                    ),
                ],
            )
            refresh_record_status(s, rec.id)
    _dead_job(db, "j1", {"archive_code": codes["reading"]})
    _dead_job(db, "j2", {"archive_code": codes["c"]})
    _dead_job(db, "j3", {"object_id": "4" * 32})
    _dead_job(db, "j4", {"note": "names no record"})
    return codes


def test_counts_for_a_director_include_the_contract_and_others_never_see_it(
    database: Database,
) -> None:
    _world(database)
    with database.read() as s:
        director = archive_stats(s, _user(Role.director), now=NOW)
        auditor = archive_stats(s, _user(Role.auditor), now=NOW)
        clerk = archive_stats(s, _user(Role.clerk), now=NOW)

    assert dict(director.by_type) == {"学籍变更": 2, "奖励": 1, "合同": 1}
    assert dict(auditor.by_type) == {"学籍变更": 2, "奖励": 1}
    assert {(c.business_type, c.year, c.records) for c in auditor.by_type_year} == {
        ("学籍变更", 2022, 1),
        ("学籍变更", 2023, 1),
        ("奖励", 2023, 1),
    }
    assert auditor.live_records == 3
    assert director.live_records == 4

    assert auditor.by_status[RecordStatus.under_replicated] == 1
    assert director.by_status[RecordStatus.under_replicated] == 2
    assert auditor.under_replicated == 1
    assert director.under_replicated == 2
    assert auditor.copies_damaged == 1
    assert director.copies_damaged == 2
    assert (auditor.in_progress, director.in_progress) == (1, 2)
    assert (auditor.needs_review, director.needs_review) == (1, 2)
    assert (auditor.pages_failed, director.pages_failed) == (1, 3)
    assert (auditor.pages_low_confidence, director.pages_low_confidence) == (1, 2)
    # The jobs naming the contract (by code and by its object) count for the director only.
    assert (auditor.jobs_failed, director.jobs_failed) == (2, 4)
    assert clerk == auditor


def test_intake_per_day_covers_the_last_fortnight_oldest_first(database: Database) -> None:
    with database.write() as s:
        seed_business_types(s, actor="system")
        create_record(s, NewRecord("奖励", 2024), actor="test")
    today = dt.datetime.now(dt.UTC)
    with database.read() as s:
        now = archive_stats(s, _user(Role.auditor), now=today)
        later = archive_stats(s, _user(Role.auditor), now=today + dt.timedelta(days=INTAKE_DAYS))
    assert len(now.intake_by_day) == INTAKE_DAYS
    assert now.intake_by_day[-1].day == today.date()
    assert [d.records for d in now.intake_by_day] == [0] * (INTAKE_DAYS - 1) + [1]
    days = [d.day for d in now.intake_by_day]
    assert days == sorted(days)
    assert sum(d.records for d in later.intake_by_day) == 0


def test_a_disabled_user_counts_nothing(database: Database) -> None:
    _world(database)
    with database.read() as s:
        stats = archive_stats(s, UserInfo(9, "gone", Role.director, True, NOW), now=NOW)
    assert stats.live_records == 0
    assert stats.copies_damaged == stats.pages_failed == stats.in_progress == 0
    assert stats.jobs_failed == 1  # only the job that names no record
