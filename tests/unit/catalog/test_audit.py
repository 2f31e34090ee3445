"""The audit chain: every edit, removal, insertion or reordering is found by verify."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from catalog import Database, chain_head, open_database, record_event, verify_chain
from catalog.audit import GENESIS_HASH, ChainHead, list_events
from tests.tampering import tamper_audit

T0 = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)


def _fill(db: Database, n: int) -> None:
    with db.write() as s:
        for i in range(n):
            record_event(
                s,
                actor=f"user{i % 3}",
                action="record.create",
                target=f"record:2023-新生入学-{i + 1:03d}",
                detail={"n": i, "note": "学籍"},
                now=T0 + dt.timedelta(seconds=i, microseconds=123457),
            )


_tamper = tamper_audit


def _first_bad(db: Database, head: ChainHead | None = None) -> int | None:
    with db.read() as s:
        report = verify_chain(s, expected_head=head)
    return report.problems[0].event_id if report.problems else None


def test_chain_links_and_verifies(database: Database) -> None:
    _fill(database, 5)
    with database.read() as s:
        events = list_events(s)
        report = verify_chain(s)
        head = chain_head(s)
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert report.ok
    assert report.events == 5
    assert head == report.head == ChainHead(5, events[-1].hash)
    assert events[2].detail == {"n": 2, "note": "学籍"}
    assert events[2].at == T0 + dt.timedelta(seconds=2, microseconds=123457)


def test_empty_chain_is_intact(database: Database) -> None:
    with database.read() as s:
        assert verify_chain(s).ok
        assert chain_head(s) is None


def test_the_database_refuses_changes(database: Database) -> None:
    _fill(database, 2)
    for sql in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match="append-only"), database.write() as s:
            s.execute(text(sql))
    assert _first_bad(database) is None


@pytest.mark.parametrize(
    ("statements", "first_bad"),
    [
        (["UPDATE audit_events SET actor = 'mallory' WHERE id = 3"], 3),
        (["UPDATE audit_events SET detail = '{\"n\":99}' WHERE id = 3"], 3),
        (["UPDATE audit_events SET outcome = 'denied' WHERE id = 4"], 4),
        (["UPDATE audit_events SET target = NULL WHERE id = 2"], 2),
        (["UPDATE audit_events SET action = 'record.read' WHERE id = 6"], 6),
        (["DELETE FROM audit_events WHERE id = 3"], 4),
        (["DELETE FROM audit_events WHERE id = 1"], 2),
        # Reordering: events 2 and 3 swap places.
        (
            [
                "UPDATE audit_events SET id = 1002 WHERE id = 2",
                "UPDATE audit_events SET id = 2 WHERE id = 3",
                "UPDATE audit_events SET id = 3 WHERE id = 1002",
            ],
            2,
        ),
        # Insertion: a forged event pushed in between, later events renumbered.
        (
            [
                "UPDATE audit_events SET id = id + 1000 WHERE id >= 3",
                "UPDATE audit_events SET id = id - 999 WHERE id >= 1000",
                "INSERT INTO audit_events (id, at, actor, action, outcome, target, detail,"
                " prev_hash, hash) SELECT 3, at, 'mallory', 'user.create', 'ok', NULL, '{}',"
                " hash, 'f00d' FROM audit_events WHERE id = 2",
            ],
            3,
        ),
    ],
)
def test_tampering_is_found(database: Database, statements: list[str], first_bad: int) -> None:
    _fill(database, 6)
    assert _first_bad(database) is None
    _tamper(database, *statements)
    assert _first_bad(database) == first_bad


def test_a_cut_tail_is_found_against_a_kept_head(database: Database) -> None:
    _fill(database, 6)
    with database.read() as s:
        kept = chain_head(s)
    assert kept is not None
    _tamper(database, "DELETE FROM audit_events WHERE id >= 5")
    assert _first_bad(database) is None  # a shorter chain is still a chain...
    assert _first_bad(database, kept) == 6  # ...but the kept head is gone
    with database.read() as s:
        assert "tail was cut" in str(verify_chain(s, expected_head=kept).problems[0])


def test_a_rewritten_tail_is_found_against_a_kept_head(database: Database) -> None:
    _fill(database, 4)
    with database.read() as s:
        kept = chain_head(s)
    _tamper(database, "DELETE FROM audit_events WHERE id = 4")
    with database.write() as s:  # a replacement event, properly chained
        record_event(s, actor="mallory", action="record.create")
    assert _first_bad(database) is None
    assert _first_bad(database, kept) == 4


def test_the_chain_grows_after_kept_head(database: Database) -> None:
    _fill(database, 3)
    with database.read() as s:
        kept = chain_head(s)
    _fill(database, 2)
    assert _first_bad(database, kept) is None


FIELDS = ["at", "actor", "action", "outcome", "target", "detail", "prev_hash", "hash"]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), data=st.data())
def test_any_edit_of_any_event_breaks_the_chain(n: int, data: st.DataObject) -> None:
    db = open_database("sqlite://")
    db.migrate()
    _fill(db, n)
    victim = data.draw(st.integers(1, n), label="event")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    values = {
        "at": "'2030-01-01 00:00:00.000000'",
        "actor": "'mallory'",
        "action": "'record.dispose'",
        "outcome": "'error'",
        "target": "'record:forged'",
        "detail": "'{\"n\":-1}'",
        "prev_hash": f"'{'1' * 64}'",
        "hash": f"'{'2' * 64}'",
    }
    _tamper(db, f"UPDATE audit_events SET {field} = {values[field]} WHERE id = {victim}")  # noqa: S608
    assert _first_bad(db) == victim
