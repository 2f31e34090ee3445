"""Break-glass grants and the incident log (docs/breakglass.md, docs/incidents.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "breakglass_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("granted_by", sa.String(length=64), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.Column("paperwork_object_id", sa.String(length=64), nullable=True),
        sa.Column("paperwork_content_type", sa.String(length=100), nullable=True),
        sa.Column("paperwork_by", sa.String(length=64), nullable=True),
        sa.Column("paperwork_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grantee_id"], ["users.id"], name=op.f("fk_breakglass_grants_grantee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["paperwork_object_id"],
            ["vault_objects.id"],
            name=op.f("fk_breakglass_grants_paperwork_object_id_vault_objects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakglass_grants")),
    )
    with op.batch_alter_table("breakglass_grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_breakglass_grants_grantee_id"), ["grantee_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_breakglass_grants_granted_at"), ["granted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_breakglass_grants_state"), ["state"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closure", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_incidents_reporter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_reporter_id"), ["reporter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_state"), ["state"], unique=False)

    op.create_table(
        "incident_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_actions_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_actions")),
    )
    with op.batch_alter_table("incident_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_actions_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "incident_records",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_records_incident_id_incidents"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_incident_records_record_id_records")
        ),
        sa.PrimaryKeyConstraint("incident_id", "record_id", name=op.f("pk_incident_records")),
    )


def downgrade() -> None:
    op.drop_table("incident_records")
    with op.batch_alter_table("incident_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_actions_incident_id"))
    op.drop_table("incident_actions")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_state"))
        batch_op.drop_index(batch_op.f("ix_incidents_reporter_id"))
    op.drop_table("incidents")
    with op.batch_alter_table("breakglass_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breakglass_grants_state"))
        batch_op.drop_index(batch_op.f("ix_breakglass_grants_granted_at"))
        batch_op.drop_index(batch_op.f("ix_breakglass_grants_grantee_id"))
    op.drop_table("breakglass_grants")
