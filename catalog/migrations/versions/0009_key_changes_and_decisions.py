"""Three levels of rights (issue #7): tags and notes on records (non-key), change requests for
key fields, the former codes a renamed record keeps as aliases, and the approval chain of
status-change decisions (学籍变更/转学/休学/复学).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code_at_filing", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("filed_by", sa.String(length=64), nullable=False),
        sa.Column("filed_by_id", sa.Integer(), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("result_code", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["filed_by_id"], ["users.id"], name=op.f("fk_change_requests_filed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_change_requests_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    with op.batch_alter_table("change_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_change_requests_record_id"), ["record_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_change_requests_state"), ["state"], unique=False)
    op.create_table(
        "record_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("archive_code", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("business_type_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_type_id"],
            ["business_types.id"],
            name=op.f("fk_record_aliases_business_type_id_business_types"),
        ),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["change_requests.id"],
            name=op.f("fk_record_aliases_change_request_id_change_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_aliases_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_aliases")),
        sa.UniqueConstraint("archive_code", name=op.f("uq_record_aliases_archive_code")),
    )
    with op.batch_alter_table("record_aliases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_aliases_record_id"), ["record_id"], unique=False
        )
    op.create_table(
        "record_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("application_record_id", sa.Integer(), nullable=True),
        sa.Column("application_pages", sa.String(length=32), nullable=True),
        sa.Column("approver", sa.String(length=100), nullable=False),
        sa.Column("approver_user_id", sa.Integer(), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_record_id"],
            ["records.id"],
            name=op.f("fk_record_decisions_application_record_id_records"),
        ),
        sa.ForeignKeyConstraint(
            ["approver_user_id"],
            ["users.id"],
            name=op.f("fk_record_decisions_approver_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_decisions_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_decisions")),
        sa.UniqueConstraint("record_id", name=op.f("uq_record_decisions_record_id")),
    )
    with op.batch_alter_table("record_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_decisions_application_record_id"),
            ["application_record_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("record_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_decisions_application_record_id"))
    op.drop_table("record_decisions")
    with op.batch_alter_table("record_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_aliases_record_id"))
    op.drop_table("record_aliases")
    with op.batch_alter_table("change_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_requests_state"))
        batch_op.drop_index(batch_op.f("ix_change_requests_record_id"))
    op.drop_table("change_requests")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("notes")
        batch_op.drop_column("tags")
