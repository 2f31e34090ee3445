"""The schema on both backends: every revision goes up and down, the models match the
migrated tables (``alembic check``), and the database itself keeps the audit trail append-only.
"""

from __future__ import annotations

from importlib import resources

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from catalog import (
    Database,
    NewRecord,
    count_events,
    create_record,
    record_event,
    seed_business_types,
    verify_chain,
)
from catalog.models import Base

CORE_TABLES = {
    "audit_events",
    "business_types",
    "code_counters",
    "jobs",
    "pages",
    "records",
    "stored_copies",
    "users",
}


def _config(connection: object | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("catalog") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def _revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _upgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as conn:
        command.upgrade(_config(conn), revision)


def _downgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def _append_event(db: Database) -> None:
    with db.write() as session:
        record_event(session, actor="clerk1", action="record.create", target="record:1")


def _actors(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT actor FROM audit_events ORDER BY id")).scalars())


def test_the_fixture_gives_a_migrated_catalog_at_head(database: Database) -> None:
    revisions = _revisions_oldest_first()
    assert database.current_revision() == revisions[-1]
    assert set(database.table_names()) >= CORE_TABLES | {"alembic_version"}


def test_migrate_twice_changes_nothing(database: Database) -> None:
    before = (database.current_revision(), sorted(database.table_names()))
    database.migrate()
    assert (database.current_revision(), sorted(database.table_names())) == before


def test_every_revision_goes_down_to_base_and_up_again(database: Database) -> None:
    revisions = _revisions_oldest_first()
    tables_at_head = set(database.table_names())

    for expected in [*reversed(revisions[:-1]), None]:
        _downgrade(database, "-1")
        assert database.current_revision() == expected
    assert set(database.table_names()) <= {"alembic_version"}

    for expected in revisions:
        _upgrade(database, "+1")
        assert database.current_revision() == expected
    assert set(database.table_names()) == tables_at_head


def _record_columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("records")}


def test_0004_adds_the_student_class_and_takes_it_away(database: Database) -> None:
    """The one column comes and goes; the records' other fields are kept either way (on SQLite
    the batch mode rebuilds the table)."""
    with database.write() as session:
        seed_business_types(session, actor="system")
        code = create_record(
            session,
            NewRecord("转学", 2023, title="转学申请表", student_class="高三(2)班"),
            actor="system",
        ).archive_code
    assert "student_class" in _record_columns(database)

    _downgrade(database, "0003")
    assert "student_class" not in _record_columns(database)
    with database.engine.connect() as conn:
        rows = conn.execute(text("SELECT archive_code, title FROM records")).all()
    assert [tuple(r) for r in rows] == [(code, "转学申请表")]

    _upgrade(database, "0004")
    with database.engine.connect() as conn:  # the models are the head's: read the rows as SQL
        rows = conn.execute(text("SELECT archive_code, title, student_class FROM records")).all()
    assert [tuple(r) for r in rows] == [(code, "转学申请表", None)]


def test_downgrade_to_base_removes_the_audit_triggers(database: Database) -> None:
    _downgrade(database, "base")
    if database.dialect == "postgresql":
        sql = "SELECT count(*) FROM pg_proc WHERE proname = 'dangan_audit_append_only'"
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
    with database.engine.connect() as conn:
        assert conn.execute(text(sql)).scalar_one() == 0

    _upgrade(database, "head")
    _append_event(database)
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))


def test_models_and_migrations_do_not_drift(database: Database) -> None:
    """What ``alembic check`` does: autogenerate against the migrated schema finds nothing."""
    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "target_metadata": Base.metadata}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_drift_check_sees_a_column_the_migrations_lack(database: Database) -> None:
    """The check above can fail: drop a column behind alembic's back and it is reported."""
    with database.engine.begin() as conn:
        conn.execute(text("ALTER TABLE records DROP COLUMN paper_location"))
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    # ("add_column", schema, table, Column): the model has it, the database does not.
    assert [(d[0], d[2], d[3].name) for d in differences] == [
        ("add_column", "records", "paper_location")
    ]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_audit_events(database: Database, statement: str) -> None:
    _append_event(database)
    _append_event(database)

    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.execute(text(statement))

    assert _actors(database) == ["clerk1", "clerk1"]
    with database.read() as session:
        assert verify_chain(session).ok


def test_postgresql_refuses_to_truncate_audit_events(pg_database: Database) -> None:
    _append_event(pg_database)

    with pytest.raises(DBAPIError, match="append-only"), pg_database.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))

    with pg_database.read() as session:
        assert count_events(session) == 1


def test_appending_is_still_allowed(database: Database) -> None:
    for _ in range(3):
        _append_event(database)
    with database.read() as session:
        assert count_events(session) == 3
        assert verify_chain(session).ok


def test_each_backend_test_is_marked_for_its_service(
    database: Database, request: pytest.FixtureRequest
) -> None:
    """``-m "not pg"`` must deselect exactly the PostgreSQL runs."""
    marked = request.node.get_closest_marker("pg") is not None
    assert marked == (database.dialect == "postgresql")
