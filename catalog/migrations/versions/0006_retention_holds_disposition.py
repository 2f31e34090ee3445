"""Retention: each type's trigger, students' graduation years, legal holds, disposition
proposals and destruction certificates (docs/retention.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "destruction_certificates",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_certificates")),
    )
    op.create_table(
        "student_graduations",
        sa.Column("student_no", sa.String(length=32), nullable=False),
        sa.Column("graduation_year", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("student_no", name=op.f("pk_student_graduations")),
    )
    op.create_table(
        "retention_schedules",
        sa.Column("business_type_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_type_id"],
            ["business_types.id"],
            name=op.f("fk_retention_schedules_business_type_id_business_types"),
        ),
        sa.PrimaryKeyConstraint("business_type_id", name=op.f("pk_retention_schedules")),
    )
    op.create_table(
        "disposition_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("open_record_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("retention", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("trigger_year", sa.Integer(), nullable=False),
        sa.Column("due_year", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["destruction_certificates.id"],
            name=op.f("fk_disposition_proposals_certificate_id_destruction_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_disposition_proposals_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposition_proposals")),
        sa.UniqueConstraint("open_record_id", name=op.f("uq_disposition_proposals_open_record_id")),
    )
    with op.batch_alter_table("disposition_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disposition_proposals_certificate_id"), ["certificate_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_disposition_proposals_record_id"), ["record_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_disposition_proposals_state"), ["state"], unique=False)

    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("student_no", sa.String(length=32), nullable=True),
        sa.Column("business_type_id", sa.Integer(), nullable=True),
        sa.Column("year_from", sa.Integer(), nullable=True),
        sa.Column("year_to", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_type_id"],
            ["business_types.id"],
            name=op.f("fk_legal_holds_business_type_id_business_types"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_legal_holds_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_holds_record_id"), ["record_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_legal_holds_released_at"), ["released_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_holds_released_at"))
        batch_op.drop_index(batch_op.f("ix_legal_holds_record_id"))

    op.drop_table("legal_holds")
    with op.batch_alter_table("disposition_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposition_proposals_state"))
        batch_op.drop_index(batch_op.f("ix_disposition_proposals_record_id"))
        batch_op.drop_index(batch_op.f("ix_disposition_proposals_certificate_id"))

    op.drop_table("disposition_proposals")
    op.drop_table("retention_schedules")
    op.drop_table("student_graduations")
    op.drop_table("destruction_certificates")
