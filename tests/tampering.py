"""Changing the audit table behind the application's back, as someone with database access could."""

from __future__ import annotations

from catalog import Database


def tamper_audit(db: Database, *statements: str) -> None:
    """Lift the append-only triggers (an attacker with access can), run ``statements``, restore."""
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
        for sql in statements:
            conn.exec_driver_sql(sql)
        if db.dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")
