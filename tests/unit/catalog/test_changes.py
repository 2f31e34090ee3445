"""Key changes by change request (issue #7): filing, approving (applied atomically, audited
with before and after, a new archive code when the type or year changes, the old one kept as
an alias that every lookup still resolves), rejecting, and stale requests; non-key tags and
notes; a status-change decision's link to its application. On both databases."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog import (
    ChangeState,
    Database,
    NewRecord,
    Role,
    SecurityClass,
    StaleChangeRequestError,
    UserInfo,
    approve_change_request,
    claim_code,
    clear_decision,
    create_record,
    decisions_citing,
    file_change_request,
    former_codes,
    get_decision,
    get_record,
    history_targets,
    list_change_requests,
    list_events,
    list_visible_events,
    mark_stale,
    record_event,
    reject_change_request,
    seed_business_types,
    set_decision,
    update_record_fields,
)
from catalog.checks import records_to_check, serial_runs
from dangan.errors import ConflictError, InvalidInputError, NotFoundError


@pytest.fixture
def seeded(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="system")
    return database


def _user(role: Role, name: str = "someone", user_id: int = 1) -> UserInfo:
    return UserInfo(
        id=user_id, name=name, role=role, disabled=False, created_at=dt.datetime.now(dt.UTC)
    )


def _record(db: Database, btype: str = "学籍变更", year: int = 2023, **fields: object) -> str:
    with db.write() as s:
        return create_record(s, NewRecord(btype, year, **fields), actor="li").archive_code  # type: ignore[arg-type]


def test_a_new_type_gives_a_new_code_and_the_old_one_stays_an_alias(seeded: Database) -> None:
    first = _record(seeded, student_name="万沐")
    second = _record(seeded)
    with seeded.write() as s:
        request = file_change_request(
            s, first, {"business_type": "转学"}, reason="misfiled", actor="clerk1"
        )
    assert request.state is ChangeState.open
    assert request.changes == {"business_type": "转学"}
    assert request.base["archive_code"] == first
    with seeded.write() as s:
        change = approve_change_request(s, request.id, actor="boss", reason="checked the paper")
    new = change.record.archive_code
    assert new == "2023-转学-001"
    assert change.former_code == first
    assert change.before == {"business_type": "学籍变更", "archive_code": first}
    assert change.after == {"business_type": "转学", "archive_code": new}
    assert change.request.state is ChangeState.approved
    assert change.request.result_code == new
    with seeded.read() as s:
        # Every lookup by the old code finds the record, under its new code.
        assert get_record(s, first).archive_code == new
        assert get_record(s, first).student_name == "万沐"
        assert former_codes(s, change.record.id) == (first,)
        assert history_targets(s, change.record) == [f"record:{new}", f"record:{first}"]
        (event,) = list_events(s, action="record.key_change")
        assert event.target == f"record:{new}"
        assert event.detail["before"] == change.before
        assert event.detail["after"] == change.after
        assert event.detail["request_id"] == request.id
        # The old code is never handed out again, and its serial still counts as held.
        held = {(r.year, r.business_type): r for r in serial_runs(s)}
        assert held[(2023, "学籍变更")].missing == []
        assert [r.archive_code for r in records_to_check(s, who=None, codes=[first])] == [new]
    with seeded.write() as s, pytest.raises(ConflictError, match="former code"):
        claim_code(s, first)
    with seeded.read() as s:
        assert get_record(s, second).archive_code == second  # the other record is untouched


def test_a_student_correction_keeps_the_code(seeded: Database) -> None:
    code = _record(seeded, student_name="王小明", student_no="S1")
    with seeded.write() as s:
        req = file_change_request(
            s, code, {"student_name": " 王晓明 ", "student_no": ""}, reason="typo", actor="c"
        )
        change = approve_change_request(s, req.id, actor="boss", reason="ok")
    assert change.former_code is None
    assert change.record.archive_code == code
    assert (change.record.student_name, change.record.student_no) == ("王晓明", None)
    assert change.before == {"student_name": "王小明", "student_no": "S1"}
    assert change.after == {"student_name": "王晓明", "student_no": None}


def test_a_request_whose_record_changed_meanwhile_is_stale(seeded: Database) -> None:
    code = _record(seeded, student_name="王小明")
    with seeded.write() as s:
        one = file_change_request(s, code, {"student_name": "甲"}, reason="r", actor="c")
        two = file_change_request(s, code, {"year": 2022}, reason="r", actor="c")
    with seeded.write() as s:
        approve_change_request(s, one.id, actor="boss", reason="ok")
    with seeded.write() as s, pytest.raises(StaleChangeRequestError, match="student_name"):
        approve_change_request(s, two.id, actor="boss", reason="ok")
    with seeded.write() as s:
        closed = mark_stale(s, two.id, actor="boss")
    assert closed is not None
    assert closed.state is ChangeState.stale
    with seeded.read() as s:
        assert get_record(s, code).year == 2023
        (event,) = list_events(s, action="change_request.stale")
        assert event.detail["fields"] == ["student_name"]
    with seeded.write() as s, pytest.raises(ConflictError, match="stale, not open"):
        approve_change_request(s, two.id, actor="boss", reason="ok")


def test_a_rejected_request_changes_nothing(seeded: Database) -> None:
    code = _record(seeded)
    with seeded.write() as s:
        req = file_change_request(s, code, {"year": 2021}, reason="r", actor="c")
    with seeded.write() as s, pytest.raises(InvalidInputError, match="reason"):
        reject_change_request(s, req.id, actor="boss", reason="  ")
    with seeded.write() as s:
        done = reject_change_request(s, req.id, actor="boss", reason="the paper says 2023")
    assert done.state is ChangeState.rejected
    assert done.decision_reason == "the paper says 2023"
    with seeded.write() as s, pytest.raises(ConflictError, match="rejected"):
        approve_change_request(s, req.id, actor="boss", reason="ok")
    with seeded.read() as s:
        assert get_record(s, code).year == 2023
        assert [e.action for e in list_events(s, target=f"record:{code}")][-2:] == [
            "change_request.file",
            "change_request.reject",
        ]


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({}, InvalidInputError, "at least one"),
        ({"title": "x"}, InvalidInputError, "not a key field"),
        ({"business_type": "学籍变更"}, InvalidInputError, "nothing to change"),
        ({"business_type": "无此类型"}, InvalidInputError, "unknown business type"),
        ({"year": 1800}, InvalidInputError, "year"),
        ({"year": "x"}, InvalidInputError, "number"),
        ({"security_class": "secret"}, InvalidInputError, "security class"),
        ({"archive_code": "2023-转学-0001"}, InvalidInputError, "zero-padded"),
        ({"archive_code": "2022-转学-004", "year": 2023}, InvalidInputError, "does not match"),
        ({"business_type": "合同"}, InvalidInputError, "always contract-class"),
        ({"student_name": "名" * 65}, InvalidInputError, "at most 64"),
    ],
)
def test_a_request_that_could_not_apply_is_refused_when_filed(
    seeded: Database, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    code = _record(seeded)
    with seeded.write() as s, pytest.raises(error, match=match):
        file_change_request(s, code, changes, reason="r", actor="c")
    with seeded.write() as s, pytest.raises(InvalidInputError, match="needs a reason"):
        file_change_request(s, code, {"year": 2020}, reason=" ", actor="c")
    with seeded.write() as s, pytest.raises(NotFoundError):
        file_change_request(s, "2023-学籍变更-999", {"year": 2020}, reason="r", actor="c")


def test_an_archive_code_asked_for_brings_its_type_and_year(seeded: Database) -> None:
    code = _record(seeded)
    taken = _record(seeded, "转学", 2022)
    with seeded.write() as s, pytest.raises(ConflictError, match="taken"):
        file_change_request(s, code, {"archive_code": taken}, reason="r", actor="c")
    with seeded.write() as s:
        req = file_change_request(s, code, {"archive_code": "2022-转学-017"}, reason="r", actor="c")
    assert req.changes == {"archive_code": "2022-转学-017", "year": 2022, "business_type": "转学"}
    with seeded.write() as s:
        change = approve_change_request(s, req.id, actor="boss", reason="legacy label")
    assert change.record.archive_code == "2022-转学-017"
    assert (change.record.year, change.record.business_type, change.record.serial) == (
        2022,
        "转学",
        17,
    )
    # ...and back to the code it had: its alias becomes its code again.
    with seeded.write() as s:
        back = file_change_request(s, code, {"archive_code": code}, reason="r", actor="c")
        change = approve_change_request(s, back.id, actor="boss", reason="undo")
    assert change.record.archive_code == code
    with seeded.read() as s:
        assert former_codes(s, change.record.id) == ("2022-转学-017",)


def test_a_contract_type_takes_the_contract_class_and_hides_the_whole_history(
    seeded: Database,
) -> None:
    code = _record(seeded)
    clerk = _user(Role.clerk)
    with seeded.write() as s:
        record_event(s, actor="x", action="record.read_content", target=f"record:{code}")
        req = file_change_request(
            s,
            code,
            {"business_type": "合同", "security_class": "contract"},
            reason="a contract",
            actor="c",
        )
    with seeded.read() as s:
        assert len(list_change_requests(s, clerk)) == 1
        before = list_visible_events(s, clerk, target=f"record:{code}")
    assert before
    with seeded.write() as s:
        change = approve_change_request(s, req.id, actor="boss", reason="ok")
    assert change.record.security_class is SecurityClass.contract
    with seeded.read() as s:
        # A contract record exists for directors alone: its events under the old code too.
        assert list_visible_events(s, clerk, target=f"record:{code}") == []
        assert list_change_requests(s, clerk) == []
        boss = _user(Role.director)
        assert list_visible_events(s, boss, target=f"record:{code}")
        assert len(list_change_requests(s, boss, states=[ChangeState.approved])) == 1


def test_a_renamed_internal_record_keeps_its_old_events_visible(seeded: Database) -> None:
    code = _record(seeded)
    clerk = _user(Role.clerk)
    with seeded.write() as s:
        req = file_change_request(s, code, {"year": 2021}, reason="r", actor="c")
        change = approve_change_request(s, req.id, actor="boss", reason="ok")
    with seeded.read() as s:
        events = list_visible_events(s, clerk, targets=history_targets(s, change.record))
    actions = [e.action for e in events]
    assert actions[:2] == ["record.create", "change_request.file"]
    assert actions[-1] == "record.key_change"


def test_a_disposed_record_takes_no_request(seeded: Database) -> None:
    from catalog import mark_content_destroyed

    code = _record(seeded)
    with seeded.write() as s:
        req = file_change_request(s, code, {"year": 2021}, reason="r", actor="c")
        mark_content_destroyed(s, code, actor="system")
    with seeded.write() as s, pytest.raises(ConflictError, match="disposed"):
        file_change_request(s, code, {"year": 2020}, reason="r", actor="c")
    with seeded.write() as s, pytest.raises(ConflictError, match="disposed"):
        approve_change_request(s, req.id, actor="boss", reason="ok")


def test_tags_and_notes_are_non_key_fields_with_an_audit_trail(seeded: Database) -> None:
    code = _record(seeded)
    with seeded.write() as s:
        done = update_record_fields(
            s, code, {"tags": [" 补档 ", "", "待核", "补档"], "notes": " 原件在校办 "}, actor="zhao"
        )
    assert done.tags == ("补档", "待核")
    assert done.notes == "原件在校办"
    with seeded.write() as s:
        cleared = update_record_fields(s, code, {"tags": [], "notes": ""}, actor="zhao")
    assert (cleared.tags, cleared.notes) == ((), None)
    with seeded.read() as s:
        updates = list_events(s, action="record.update")
    assert [(e.detail["before"], e.detail["after"]) for e in updates] == [
        ({"tags": [], "notes": None}, {"tags": ["补档", "待核"], "notes": "原件在校办"}),
        ({"tags": ["补档", "待核"], "notes": "原件在校办"}, {"tags": [], "notes": None}),
    ]
    for bad, match in (
        (["a,b"], "comma"),
        (["x" * 33], "at most 32"),
        ([str(n) for n in range(21)], "at most 20"),
    ):
        with seeded.write() as s, pytest.raises(InvalidInputError, match=match):
            update_record_fields(s, code, {"tags": bad}, actor="zhao")
    with seeded.write() as s, pytest.raises(InvalidInputError, match="list"):
        update_record_fields(s, code, {"tags": "a b"}, actor="zhao")


def test_a_decision_links_to_its_application_and_both_histories_show_it(
    seeded: Database,
) -> None:
    decision = _record(seeded, "转学")
    application = _record(seeded, "新生入学")
    with seeded.write() as s:
        link = set_decision(
            s,
            decision,
            decision="approved",
            decision_date=dt.date(2023, 9, 1),
            approver="教务处 李主任",
            application_code=application,
            actor="zhao",
        )
    assert link.application_code == application
    assert link.approver_user is None
    with seeded.write() as s:
        again = set_decision(
            s,
            decision,
            decision="approved",
            decision_date=dt.date(2023, 9, 1),
            approver="教务处 李主任",
            application_code=application,
            actor="zhao",
        )
    assert again == link  # unchanged: nothing audited
    with seeded.read() as s:
        (event,) = list_events(s, action="record.decision")
        assert event.target == f"record:{decision}"
        assert event.detail["before"] == {"decision_link": None}
        assert event.detail["after"]["decision_link"]["decision"] == "approved"
        (cited,) = list_events(s, action="record.decision_application")
        assert cited.target == f"record:{application}"
        app_id = get_record(s, application).id
        assert [d.archive_code for d in decisions_citing(s, app_id, None)] == [decision]
    # The application in the decision record itself, on its own pages; then the link removed.
    with seeded.write() as s:
        own = set_decision(
            s,
            decision,
            decision="rejected",
            decision_date=dt.date(2023, 9, 2),
            approver="王校长",
            application_pages="1",
            actor="zhao",
        )
    assert own.same_record
    assert own.application_pages == "1"
    with seeded.write() as s:
        assert clear_decision(s, decision, actor="zhao") == own
    with seeded.read() as s:
        assert get_decision(s, get_record(s, decision).id) is None
        uncited = list_events(s, action="record.decision_application")
        assert [e.detail["cited"] for e in uncited] == [True, False]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"approver": None}, InvalidInputError, "approver"),
        ({"approver_user": "nobody", "approver": None}, NotFoundError, "no user"),
        ({"approver_user": "x", "approver": "y"}, InvalidInputError, "approver"),
        ({"application_code": None}, InvalidInputError, "pages"),
        ({"application_pages": "2-1"}, InvalidInputError, "low to high"),
        ({"application_pages": "a"}, InvalidInputError, "pages read like"),
        ({"decision": "maybe"}, InvalidInputError, "approved or rejected"),
        ({"decision_date": dt.date(2999, 1, 1)}, InvalidInputError, "today"),
        ({"application_code": "2023-新生入学-999"}, NotFoundError, "no such record"),
    ],
)
def test_a_malformed_link_is_refused(
    seeded: Database, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    decision = _record(seeded, "休学")
    application = _record(seeded, "新生入学")
    args: dict[str, object] = {
        "decision": "approved",
        "decision_date": dt.date(2023, 9, 1),
        "approver": "李主任",
        "application_code": application,
        **kwargs,
    }
    with seeded.write() as s, pytest.raises(error, match=match):
        set_decision(s, decision, actor="zhao", **args)  # type: ignore[arg-type]


def test_only_a_status_change_record_links_and_never_to_a_hidden_class(seeded: Database) -> None:
    grades = _record(seeded, "成绩单")
    decision = _record(seeded, "复学")
    contract = _record(seeded, "合同")
    common = {"decision": "approved", "decision_date": dt.date(2023, 1, 1), "approver": "李"}
    with seeded.write() as s, pytest.raises(InvalidInputError, match="status-change"):
        set_decision(s, grades, application_pages="1", actor="z", **common)  # type: ignore[arg-type]
    with seeded.write() as s, pytest.raises(InvalidInputError, match="contract-class"):
        set_decision(s, decision, application_code=contract, actor="z", **common)  # type: ignore[arg-type]
