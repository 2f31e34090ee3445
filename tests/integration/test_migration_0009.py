"""Revision 0009 (issue #7) on both databases: tags and notes on records, change requests,
former codes and status-change decisions come, and go again without touching the records'
other fields (a renamed record keeps its current code)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect, text

from catalog import (
    Database,
    NewRecord,
    approve_change_request,
    create_record,
    file_change_request,
    get_record,
    seed_business_types,
    set_decision,
    update_record_fields,
)
from tests.integration.test_migrations import _downgrade, _upgrade

TABLES = {"change_requests", "record_aliases", "record_decisions"}


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("records")}


def test_0009_comes_and_goes(database: Database) -> None:
    with database.write() as s:
        seed_business_types(s, actor="system")
        old = create_record(s, NewRecord("学籍变更", 2023, title="申请"), actor="li").archive_code
        update_record_fields(s, old, {"tags": ["补档"], "notes": "备注"}, actor="zhao")
        request = file_change_request(s, old, {"business_type": "转学"}, reason="r", actor="li")
        new = approve_change_request(s, request.id, actor="wang", reason="ok").record.archive_code
        set_decision(
            s,
            new,
            decision="approved",
            decision_date=dt.date(2023, 9, 1),
            approver="李主任",
            application_pages="1",
            actor="zhao",
        )
    assert set(database.table_names()) >= TABLES
    assert {"tags", "notes"} <= _columns(database)

    _downgrade(database, "0008")
    assert not TABLES & set(database.table_names())
    assert not {"tags", "notes"} & _columns(database)
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT archive_code, title FROM records")).all()
    assert [tuple(r) for r in rows] == [(new, "申请")]

    _upgrade(database, "0009")
    with database.read() as s:
        record = get_record(s, new)
    assert (record.title, record.tags, record.notes) == ("申请", (), None)
