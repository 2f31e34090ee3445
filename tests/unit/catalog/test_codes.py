"""Archive codes: the form, and allocation that is atomic, consecutive and never reused."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import Database, SecurityClass, open_database, seed_business_types
from catalog.codes import ArchiveCode, allocate_code, claim_code, next_serial, parse_code
from catalog.records import NewRecord, create_record
from dangan.errors import ConflictError, InvalidInputError

TYPES = ["新生入学", "转学", "休学", "复学", "学籍变更", "成绩单", "毕业审核", "处分决定", "合同"]

type_names = st.sampled_from(TYPES) | st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=16
)


@given(year=st.integers(1000, 9999), btype=type_names, serial=st.integers(1, 999_999_999))
def test_format_parse_round_trip(year: int, btype: str, serial: int) -> None:
    code = ArchiveCode(year, btype, serial)
    text = str(code)
    assert parse_code(text) == code
    digits = text.rsplit("-", 1)[1]
    assert len(digits) >= 3
    assert int(digits) == serial


def test_format_pads_to_three_digits() -> None:
    assert str(ArchiveCode(2023, "新生入学", 1)) == "2023-新生入学-001"
    assert str(ArchiveCode(2023, "新生入学", 1234)) == "2023-新生入学-1234"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2023-新生入学",
        "2023-新生入学-01",  # too few digits
        "2023-新生入学-0001",  # padding other than the canonical
        "2023-新生入学-000",  # serials start at 1
        "23-新生入学-001",
        "2023--001",
        "2023-新生 入学-001",
        "2023-新生入学-001-1",
        "二〇二三-新生入学-001",
        "2023-新生入学-abc",
    ],
)
def test_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_code(bad)


@given(st.text(max_size=40))
def test_parse_never_crashes(text: str) -> None:
    try:
        code = parse_code(text)
    except InvalidInputError:
        return
    assert str(code) == text.strip()


@pytest.fixture
def seeded(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="system")
    return database


def test_allocation_is_consecutive_per_year_and_type(seeded: Database) -> None:
    got = []
    with seeded.write() as s:
        for year, btype in [(2023, "转学"), (2023, "转学"), (2024, "转学"), (2023, "休学")]:
            got.append(str(allocate_code(s, year=year, business_type=btype)))
        got.append(str(allocate_code(s, year=2023, business_type="转学")))
    assert got == [
        "2023-转学-001",
        "2023-转学-002",
        "2024-转学-001",
        "2023-休学-001",
        "2023-转学-003",
    ]


def _allocate_then_fail(db: Database) -> None:
    with db.write() as s:
        allocate_code(s, year=2023, business_type="转学")
        raise RuntimeError("intake failed")


def test_rolled_back_allocation_leaves_no_gap(seeded: Database) -> None:
    with pytest.raises(RuntimeError, match="intake failed"):
        _allocate_then_fail(seeded)
    with seeded.write() as s:
        assert str(allocate_code(s, year=2023, business_type="转学")) == "2023-转学-001"


def test_allocation_checks_type_and_year(seeded: Database) -> None:
    with seeded.write() as s:
        with pytest.raises(InvalidInputError, match="unknown business type"):
            allocate_code(s, year=2023, business_type="不存在")
        with pytest.raises(InvalidInputError, match="year"):
            allocate_code(s, year=1900, business_type="转学")
        with pytest.raises(InvalidInputError, match="year"):
            allocate_code(s, year=3000, business_type="转学")


def test_legacy_code_advances_counter_and_is_unique(seeded: Database) -> None:
    with seeded.write() as s:
        create_record(s, NewRecord("转学", 2019, archive_code="2019-转学-007"), actor="system")
        assert next_serial(s, year=2019, business_type="转学") == 8
        # A lower legacy code is accepted and does not move the counter back.
        create_record(s, NewRecord("转学", 2019, archive_code="2019-转学-003"), actor="system")
        assert str(allocate_code(s, year=2019, business_type="转学")) == "2019-转学-008"
        with pytest.raises(ConflictError):
            claim_code(s, "2019-转学-007")
        with pytest.raises(InvalidInputError, match="unknown business type"):
            claim_code(s, "2019-外星人-001")
        with pytest.raises(InvalidInputError, match="does not match"):
            create_record(s, NewRecord("休学", 2019, archive_code="2019-转学-009"), actor="x")


def test_allocated_codes_never_collide_with_legacy_ones(seeded: Database) -> None:
    with seeded.write() as s:
        a = create_record(s, NewRecord("奖励", 2020), actor="system")
        create_record(s, NewRecord("奖励", 2020, archive_code="2020-奖励-002"), actor="system")
        b = create_record(s, NewRecord("奖励", 2020), actor="system")
    assert (a.archive_code, b.archive_code) == ("2020-奖励-001", "2020-奖励-003")


@settings(max_examples=25, deadline=None)
@given(
    ops=st.lists(st.tuples(st.sampled_from([2021, 2022]), st.sampled_from(TYPES[:3])), max_size=30)
)
def test_allocations_are_gapless_and_monotonic(ops: list[tuple[int, str]]) -> None:
    db = open_database("sqlite://")  # in memory: a fresh catalog per example
    db.migrate()
    with db.write() as s:
        seed_business_types(s, actor="system")
    seen: dict[tuple[int, str], list[int]] = {}
    with db.write() as s:
        for year, btype in ops:
            seen.setdefault((year, btype), []).append(
                allocate_code(s, year=year, business_type=btype).serial
            )
    for serials in seen.values():
        assert serials == list(range(1, len(serials) + 1))


def test_concurrent_allocation_gives_distinct_consecutive_codes(seeded: Database) -> None:
    """50 writers at once (threads, each with its own connection) for one year and type."""
    workers = 50
    # A pool as wide as the crowd, so that every writer holds its own connection at once.
    url = seeded.engine.url.render_as_string(hide_password=False)
    wide = open_database(url, pool_size=workers) if seeded.dialect == "postgresql" else seeded
    barrier = threading.Barrier(workers)
    codes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait()
            with wide.write() as s:
                rec = create_record(s, NewRecord("新生入学", 2023, title="t"), actor="system")
            with lock:
                codes.append(rec.archive_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if wide is not seeded:
        wide.dispose()
    assert errors == []
    assert sorted(codes) == [f"2023-新生入学-{i:03d}" for i in range(1, workers + 1)]


def test_a_legacy_code_is_only_said_to_be_taken_within_the_callers_own_type(
    seeded: Database,
) -> None:
    with seeded.write() as s:
        create_record(s, NewRecord("合同", 2023, archive_code="2023-合同-001"), actor="zhang")
    with seeded.write() as s:
        # Someone filing another type must not learn that the contract's code exists.
        with pytest.raises(InvalidInputError, match="does not match"):
            create_record(s, NewRecord("转学", 2023, archive_code="2023-合同-001"), actor="li")
        # Nor can a contract-class type be filed as internal (and so probed by a clerk).
        with pytest.raises(InvalidInputError, match="always contract-class"):
            create_record(
                s,
                NewRecord(
                    "合同",
                    2023,
                    security_class=SecurityClass.internal,
                    archive_code="2023-合同-001",
                ),
                actor="li",
            )
