"""The policy, cell by cell: every action × role × security class, then the filters on a database.

The expected tables below are written by hand from DESIGN.md and issues 3, 5 and 7, not derived
from ``catalog.policy``: a changed cell in the module must be changed here too, on purpose.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import (
    Action,
    Database,
    RecordStatus,
    Role,
    SecurityClass,
    UserInfo,
    audit_denied,
    is_allowed,
    list_events,
    policy_table,
    record_event,
    record_not_found,
    record_target,
    require,
    seed_business_types,
    verify_chain,
    visible_classes,
    visible_events_filter,
    visible_records_filter,
)
from catalog.models import AuditEvent, BusinessType, Page, Record, User
from catalog.policy import ActionScope, PermitCondition
from catalog.policy_reference import render_permissions_reference
from dangan.errors import InvalidInputError, NotFoundError, PermissionDeniedError

ROLES = (Role.clerk, Role.supervisor, Role.director, Role.auditor, Role.admin)
CLASSES = (SecurityClass.internal, SecurityClass.contract)

# Actions on records. "-": never; "I": internal records; "IC": internal and contract records;
# a leading "o": only on one's own records whose intake is unfinished (pending or processing).
# fmt: off
RECORD_EXPECTED: dict[str, tuple[str, str, str, str, str]] = {
    #                               clerk  supervisor director auditor admin
    "record.create":                ("I",  "I",       "IC",    "-",    "-"),
    "record.read_metadata":         ("I",  "I",       "IC",    "I",    "-"),
    "record.read_content":          ("I",  "I",       "IC",    "I",    "-"),
    "record.read_history":          ("I",  "I",       "IC",    "I",    "-"),
    "record.update_draft":          ("oI", "oI",      "oIC",   "-",    "-"),
    "record.update_metadata":       ("-",  "I",       "IC",    "-",    "-"),
    "record.request_key_change":    ("I",  "I",       "IC",    "-",    "-"),
    "record.update_key_fields":     ("-",  "-",       "IC",    "-",    "-"),
    "record.review":                ("-",  "I",       "IC",    "-",    "-"),
    "hold.place":                   ("-",  "I",       "IC",    "-",    "-"),
    "hold.release":                 ("-",  "-",       "IC",    "-",    "-"),
    "disposition.approve":          ("-",  "-",       "IC",    "-",    "-"),
    "sampling.check":               ("-",  "-",       "IC",    "I",    "-"),
    "finding.manage":               ("-",  "-",       "IC",    "I",    "-"),
    "finding.respond":              ("I",  "I",       "IC",    "-",    "-"),
}

# Actions whose answer depends on the role alone. "y": allowed; "-": never.
SYSTEM_EXPECTED: dict[str, tuple[str, str, str, str, str]] = {
    #                               clerk  supervisor director auditor admin
    "search":                       ("y",  "y",       "y",     "y",    "-"),
    "export":                       ("-",  "y",       "y",     "y",    "-"),
    "stats.read":                   ("y",  "y",       "y",     "y",    "y"),
    "job.read":                     ("y",  "y",       "y",     "y",    "y"),
    "job.manage":                   ("-",  "y",       "y",     "-",    "y"),
    "audit.read":                   ("-",  "-",       "y",     "y",    "-"),
    "audit.verify":                 ("-",  "-",       "y",     "y",    "y"),
    "sampling.run":                 ("-",  "-",       "y",     "y",    "-"),
    "fixity.run":                   ("-",  "-",       "y",     "y",    "y"),
    "check.run":                    ("-",  "y",       "y",     "y",    "y"),
    "repair.run":                   ("-",  "-",       "y",     "-",    "y"),
    "retention.run":                ("-",  "-",       "y",     "-",    "y"),
    "backup.run":                   ("-",  "-",       "-",     "-",    "y"),
    "keys.manage":                  ("-",  "-",       "-",     "-",    "y"),
    "user.list":                    ("-",  "-",       "y",     "y",    "y"),
    "user.manage":                  ("-",  "-",       "-",     "-",    "y"),
    "business_type.manage":         ("-",  "-",       "y",     "-",    "-"),
    "breakglass.request":           ("y",  "y",       "y",     "y",    "y"),
    "breakglass.grant":             ("-",  "-",       "y",     "-",    "y"),
    "breakglass.approve":           ("-",  "-",       "y",     "-",    "-"),
    "incident.report":              ("y",  "y",       "y",     "y",    "y"),
    "incident.manage":              ("-",  "-",       "y",     "y",    "-"),
}
# fmt: on

# Contract records exist for directors alone; everything else sees internal records only.
SEES_CONTRACT = {Role.director}

RECORD_ACTIONS = [Action(a) for a in RECORD_EXPECTED]
SYSTEM_ACTIONS = [Action(a) for a in SYSTEM_EXPECTED]
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
DOCS = Path(__file__).resolve().parents[3] / "docs"


def _cell(action: Action, role: Role) -> str:
    table = RECORD_EXPECTED if action.value in RECORD_EXPECTED else SYSTEM_EXPECTED
    return table[action.value][ROLES.index(role)]


def _expected(action: Action, role: Role, cls: SecurityClass | None) -> bool:
    cell = _cell(action, role)
    if cell == "-":
        return False
    if action.value in SYSTEM_EXPECTED or cls is None:
        return True
    letter = {SecurityClass.internal: "I", SecurityClass.contract: "C"}[cls]
    return letter in cell.removeprefix("o")


def _user(role: Role, *, uid: int = 7, disabled: bool = False) -> UserInfo:
    return UserInfo(uid, f"{role.value}1", role, disabled, NOW)


@dataclass(frozen=True)
class FakeRecord:
    """The three fields the policy reads, without a database."""

    security_class: str
    status: str = RecordStatus.pending.value
    created_by: int | None = 7


# --- the table, cell by cell ------------------------------------------------------------------


def test_the_expected_tables_name_every_action_once() -> None:
    assert set(RECORD_EXPECTED).isdisjoint(SYSTEM_EXPECTED)
    assert set(RECORD_EXPECTED) | set(SYSTEM_EXPECTED) == {a.value for a in Action}
    scopes = {r.action.value: r.scope for r in policy_table()}
    assert {a for a, s in scopes.items() if s is ActionScope.record} == set(RECORD_EXPECTED)


def test_policy_table_lists_every_action_once_in_order() -> None:
    assert [r.action for r in policy_table()] == list(Action)


def test_action_names_are_stable_dotted_words() -> None:
    for action in Action:
        assert action.name == action.value.replace(".", "_")


@pytest.mark.parametrize("cls", [None, *CLASSES], ids=lambda c: c or "no-class")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_is_allowed_matches_the_expected_table(
    action: Action, role: Role, cls: SecurityClass | None
) -> None:
    assert is_allowed(role, action, cls) is _expected(action, role, cls)
    if cls is not None:
        assert is_allowed(role, action, cls.value) is _expected(action, role, cls)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_require_without_a_record_asks_the_role_alone(action: Action, role: Role) -> None:
    if _cell(action, role) == "-":
        with pytest.raises(PermissionDeniedError):
            require(_user(role), action)
    else:
        require(_user(role), action)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", RECORD_ACTIONS)
def test_require_on_a_record(action: Action, role: Role, cls: SecurityClass) -> None:
    record = FakeRecord(cls.value)  # the user's own pending draft: any condition holds
    if cls is SecurityClass.contract and role not in SEES_CONTRACT:
        with pytest.raises(NotFoundError) as caught:
            require(_user(role), action, record)
        assert caught.value.message == record_not_found().message
    elif _expected(action, role, cls):
        require(_user(role), action, record)
    else:
        with pytest.raises(PermissionDeniedError):
            require(_user(role), action, record)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", RECORD_ACTIONS)
def test_require_on_a_class_never_hides(action: Action, role: Role, cls: SecurityClass) -> None:
    # A class is not a record: a clerk asking to create a contract is refused, not "not found".
    if _expected(action, role, cls):
        require(_user(role), action, security_class=cls)
    else:
        with pytest.raises(PermissionDeniedError):
            require(_user(role), action, security_class=cls)


@pytest.mark.parametrize("role", ROLES)
def test_visible_classes(role: Role) -> None:
    expected = set(CLASSES) if role in SEES_CONTRACT else {SecurityClass.internal}
    assert visible_classes(role) == expected
    assert visible_classes(_user(role)) == expected
    assert visible_classes(_user(role, disabled=True)) == frozenset()


def test_no_record_permit_reaches_a_class_its_role_cannot_see() -> None:
    for rule in policy_table():
        if rule.scope is ActionScope.record:
            for role, permit in rule.permits.items():
                assert permit.classes <= visible_classes(role), (rule.action, role)
                if role not in SEES_CONTRACT:
                    assert SecurityClass.contract not in permit.classes, (rule.action, role)


# --- disabled users, conditions, odd input ----------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_a_disabled_user_may_do_nothing(action: Action, role: Role) -> None:
    user = _user(role, disabled=True)
    with pytest.raises(PermissionDeniedError):
        require(user, action)
    if action in RECORD_ACTIONS:
        for cls in CLASSES:
            hidden = cls is SecurityClass.contract and role not in SEES_CONTRACT
            # Hidden stays "not found" even here, or disabling someone would reveal contracts.
            with pytest.raises(NotFoundError if hidden else PermissionDeniedError):
                require(user, action, FakeRecord(cls.value))
            with pytest.raises(PermissionDeniedError):
                require(user, action, security_class=cls)


@pytest.mark.parametrize(
    ("role", "cls", "status", "created_by", "allowed"),
    [
        (Role.clerk, "internal", "pending", 7, True),
        (Role.clerk, "internal", "processing", 7, True),
        (Role.clerk, "internal", "pending", 8, False),
        (Role.clerk, "internal", "pending", None, False),
        (Role.clerk, "internal", "archived", 7, False),
        (Role.clerk, "internal", "under_replicated", 7, False),
        (Role.clerk, "internal", "disposed", 7, False),
        (Role.supervisor, "internal", "pending", 7, True),
        (Role.supervisor, "internal", "pending", 8, False),
        (Role.director, "contract", "pending", 7, True),
        (Role.director, "contract", "archived", 7, False),
        (Role.director, "internal", "pending", 8, False),
    ],
)
def test_drafts_are_corrected_only_by_who_entered_them_while_pending(
    role: Role, cls: str, status: str, created_by: int | None, allowed: bool
) -> None:
    record = FakeRecord(cls, status, created_by)
    if allowed:
        require(_user(role, uid=7), Action.record_update_draft, record)
    else:
        with pytest.raises(PermissionDeniedError):
            require(_user(role, uid=7), Action.record_update_draft, record)


def test_the_draft_condition_is_the_only_condition() -> None:
    conditioned = {
        r.action for r in policy_table() for g in r.permits.values() if g.condition is not None
    }
    assert conditioned == {Action.record_update_draft}
    rule = policy_table()[list(Action).index(Action.record_update_draft)]
    assert {g.condition for g in rule.permits.values()} == {PermitCondition.own_draft}


@pytest.mark.parametrize("role", ROLES)
def test_a_record_of_an_unknown_class_is_hidden_from_everyone(role: Role) -> None:
    with pytest.raises(NotFoundError) as caught:
        require(_user(role), Action.record_read_metadata, FakeRecord("secret"))
    assert caught.value.message == record_not_found().message
    assert not is_allowed(role, Action.record_read_metadata, "secret")
    with pytest.raises(InvalidInputError):
        require(_user(Role.director), Action.record_create, security_class="secret")


def test_a_system_action_takes_no_record_and_a_record_action_not_both() -> None:
    director = _user(Role.director)
    with pytest.raises(ValueError, match="not an action on a record"):
        require(director, Action.search, FakeRecord("internal"))
    with pytest.raises(ValueError, match="not an action on a record"):
        require(director, Action.export, security_class=SecurityClass.internal)
    with pytest.raises(ValueError, match="not both"):
        require(
            director,
            Action.record_update_key_fields,
            FakeRecord("internal"),
            security_class=SecurityClass.contract,
        )


def test_missing_and_hidden_read_alike() -> None:
    missing = record_not_found()
    with pytest.raises(NotFoundError) as caught:
        require(_user(Role.auditor), Action.record_read_content, FakeRecord("contract"))
    hidden = caught.value
    assert (type(hidden), str(hidden), hidden.message, hidden.code, hidden.http_status) == (
        type(missing),
        str(missing),
        missing.message,
        missing.code,
        missing.http_status,
    )
    assert "contract" not in hidden.message


def test_permissions_doc_is_current() -> None:
    actual = (DOCS / "permissions.md").read_text(encoding="utf-8")
    assert actual == render_permissions_reference(), (
        "docs/permissions.md is stale: python -m catalog.policy_reference > docs/permissions.md"
    )


# --- the filters on a real database -----------------------------------------------------------

# (archive code, security class, student name, pages). The class decides, never the type name:
# one 新生入学 record is contract-class and one 合同 record is internal.
RECORDS = (
    ("2023-新生入学-001", "internal", "张三", 2),
    ("2023-新生入学-002", "internal", "李四", 1),
    ("2023-新生入学-003", "contract", "张三", 3),
    ("2023-成绩单-001", "internal", "王五", 1),
    ("2023-合同-001", "contract", "张三", 4),
    ("2024-合同-001", "contract", None, 1),
    ("2024-合同-002", "internal", None, 2),
    ("2023-会议纪要-001", "secret", None, 5),  # an unknown class: nobody's
)
INTERNAL_CODES = {"2023-新生入学-001", "2023-新生入学-002", "2023-成绩单-001", "2024-合同-002"}
CONTRACT_CODES = {"2023-新生入学-003", "2023-合同-001", "2024-合同-001"}


@pytest.fixture
def archive(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="system")
        types = {bt.name: bt.id for bt in s.scalars(select(BusinessType))}
        clerk = User(name="clerk1", role="clerk", password_hash="-")
        s.add(clerk)
        s.flush()
        for code, cls, student, pages in RECORDS:
            year, type_name, serial = code.split("-")
            row = Record(
                archive_code=code,
                year=int(year),
                business_type_id=types[type_name],
                serial=int(serial),
                title="",
                student_name=student,
                security_class=cls,
                status="archived",
                created_by=clerk.id,
            )
            s.add(row)
            s.flush()
            s.add_all(Page(record_id=row.id, number=n) for n in range(1, pages + 1))
    return database


def _expected_codes(role: Role) -> set[str]:
    return INTERNAL_CODES | (CONTRACT_CODES if role in SEES_CONTRACT else set())


def _pages(codes: set[str]) -> int:
    return sum(pages for code, _, _, pages in RECORDS if code in codes)


def _listing(s: Session, who: Role | UserInfo) -> set[str]:
    return set(s.scalars(select(Record.archive_code).where(visible_records_filter(who))))


def _count(s: Session, who: Role | UserInfo) -> int:
    stmt = select(func.count()).select_from(Record).where(visible_records_filter(who))
    return s.scalar(stmt) or 0


@pytest.mark.parametrize("role", ROLES)
def test_listings_and_counts_hold_only_what_the_role_sees(archive: Database, role: Role) -> None:
    expected = _expected_codes(role)
    f = visible_records_filter(role)
    with archive.read() as s:
        assert _listing(s, role) == expected
        assert _count(s, role) == len(expected)
        # Counts by business type, as the dashboard shows them.
        by_type = dict(
            s.execute(
                select(BusinessType.name, func.count(Record.id))
                .join(Record, Record.business_type_id == BusinessType.id)
                .where(f)
                .group_by(BusinessType.name)
            ).all()
        )
        want_by_type: dict[str, int] = {}
        for code in expected:
            name = code.split("-")[1]
            want_by_type[name] = want_by_type.get(name, 0) + 1
        assert by_type == want_by_type
        # A related list: the pages of the records one may see.
        pages = s.scalar(
            select(func.count(Page.id)).join(Record, Page.record_id == Record.id).where(f)
        )
        assert pages == _pages(expected)
        # A search's candidate set: a student whose records include contracts.
        found = set(s.scalars(select(Record.archive_code).where(f, Record.student_name == "张三")))
        assert found == {"2023-新生入学-001"} | (
            {"2023-新生入学-003", "2023-合同-001"} if role in SEES_CONTRACT else set()
        )


@pytest.mark.parametrize("role", ROLES)
def test_a_disabled_user_lists_and_counts_nothing(archive: Database, role: Role) -> None:
    user = _user(role, disabled=True)
    with archive.read() as s:
        assert _listing(s, user) == set()
        assert _count(s, user) == 0
        assert _listing(s, _user(role)) == _expected_codes(role)


@pytest.mark.parametrize("role", ROLES)
def test_a_hidden_record_answers_like_a_missing_one(archive: Database, role: Role) -> None:
    user = _user(role)
    with archive.read() as s:
        missing = s.scalar(select(Record).where(Record.archive_code == "2023-合同-999"))
        contract = s.scalar(select(Record).where(Record.archive_code == "2023-合同-001"))
        internal = s.scalar(select(Record).where(Record.archive_code == "2023-成绩单-001"))
    assert missing is None
    assert contract is not None
    assert internal is not None
    for action in RECORD_ACTIONS:
        # These rows are archived and someone else's: an own-drafts cell does not apply.
        own_only = _cell(action, role).startswith("o")
        if role in SEES_CONTRACT:
            if _expected(action, role, SecurityClass.contract) and not own_only:
                require(user, action, contract)
            else:
                with pytest.raises(PermissionDeniedError):
                    require(user, action, contract)
        else:
            with pytest.raises(NotFoundError) as caught:
                require(user, action, contract)
            assert str(caught.value) == str(record_not_found())
            assert caught.value.message == record_not_found().message
        if _expected(action, role, SecurityClass.internal) and not own_only:
            require(user, action, internal)
        else:
            with pytest.raises(PermissionDeniedError):
                require(user, action, internal)


def test_a_denied_attempt_leaves_a_trace_and_the_chain_verifies(archive: Database) -> None:
    clerk = _user(Role.clerk)
    target = record_target("2023-合同-001")
    with archive.write() as s:
        record_event(s, actor="system", action="record.create", target=target, now=NOW)
    caught: NotFoundError | None = None
    try:
        with archive.write() as s:
            row = s.scalar(select(Record).where(Record.archive_code == "2023-合同-001"))
            assert row is not None
            row.title = "an edit that must be rolled back"
            require(clerk, Action.record_update_metadata, row)
    except NotFoundError as exc:
        caught = exc
        with archive.write() as s:
            audit_denied(s, clerk, Action.record_update_metadata, target, error=exc)
    assert caught is not None
    with archive.read() as s:
        events = list_events(s)
        report = verify_chain(s)
        title = s.scalar(select(Record.title).where(Record.archive_code == "2023-合同-001"))
    assert title == ""
    assert report.ok
    assert report.events == len(events) == 13  # 11 business types, the create, the denial
    last = events[-1]
    assert (last.actor, last.action, last.outcome, last.target) == (
        "clerk1",
        "record.update_metadata",
        "denied",
        "record:2023-合同-001",
    )
    assert last.detail == {"role": "clerk", "error": "not_found"}


def test_audit_denied_without_an_error_records_the_role(archive: Database) -> None:
    admin = _user(Role.admin)
    with archive.write() as s:
        event = audit_denied(s, admin, Action.record_read_content, None)
    assert (event.outcome, event.target, event.detail) == ("denied", None, {"role": "admin"})
    with archive.read() as s:
        assert verify_chain(s).ok


EVENT_TARGETS = (
    record_target("2023-成绩单-001"),  # internal
    record_target("2023-合同-001"),  # contract
    record_target("2023-新生入学-003"),  # contract
    record_target("2023-会议纪要-001"),  # unknown class
    record_target("2099-合同-999"),  # no such record
    "user:alice",
    "business_type:奖励",
    None,
)


@pytest.mark.parametrize("role", ROLES)
def test_the_trail_others_read_leaves_out_hidden_and_missing_records(
    archive: Database, role: Role
) -> None:
    with archive.write() as s:
        for i, target in enumerate(EVENT_TARGETS):
            record_event(
                s, actor="clerk1", action="probe", target=target, now=NOW + dt.timedelta(i)
            )
    everyone = {record_target("2023-成绩单-001"), "user:alice", "business_type:奖励", None}
    expected = set(EVENT_TARGETS) if role in SEES_CONTRACT else everyone
    with archive.read() as s:
        stmt = select(AuditEvent.target).where(AuditEvent.action == "probe")
        seen = list(s.scalars(stmt.where(visible_events_filter(role))))
        nothing = list(s.scalars(stmt.where(visible_events_filter(_user(role, disabled=True)))))
        counted = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "probe", visible_events_filter(role))
        )
    assert set(seen) == expected
    assert len(seen) == counted == len(expected)
    assert nothing == []


def test_a_probe_for_a_missing_code_and_for_a_contract_look_the_same_in_the_trail(
    archive: Database,
) -> None:
    # The auditor probes one code that exists (a contract) and one that does not; both denials
    # are recorded, and neither shows in the trail the auditor reads.
    auditor = _user(Role.auditor)
    for code in ("2023-合同-001", "2023-合同-777"):
        with archive.write() as s:
            audit_denied(s, auditor, Action.record_read_content, record_target(code))
    with archive.read() as s:
        stmt = select(AuditEvent.target).where(AuditEvent.outcome == "denied")
        mine = list(s.scalars(stmt.where(visible_events_filter(auditor))))
        directors = set(s.scalars(stmt.where(visible_events_filter(Role.director))))
    assert mine == []
    assert directors == {"record:2023-合同-001", "record:2023-合同-777"}


def test_every_pair_of_roles_that_see_the_same_classes_list_the_same(archive: Database) -> None:
    with archive.read() as s:
        listings = {role: _listing(s, role) for role in ROLES}
    for a, b in itertools.combinations(ROLES, 2):
        same = visible_classes(a) == visible_classes(b)
        assert (listings[a] == listings[b]) is same
