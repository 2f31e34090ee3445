"""The quarterly sampling audit: draws, sampled items, findings and their evidence
(docs/sampling.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sampling_audits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=8), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("defect_rate", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sampling_audits")),
        sa.UniqueConstraint("quarter", name=op.f("uq_sampling_audits_quarter")),
    )
    op.create_table(
        "sampling_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("clerk", sa.String(length=64), nullable=False),
        sa.Column("auto_outcome", sa.String(length=8), nullable=False),
        sa.Column("auto_items", sa.JSON(), nullable=False),
        sa.Column("manual", sa.JSON(), nullable=True),
        sa.Column("manual_note", sa.Text(), nullable=True),
        sa.Column("manual_by", sa.String(length=64), nullable=True),
        sa.Column("manual_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["sampling_audits.id"],
            name=op.f("fk_sampling_items_audit_id_sampling_audits"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_sampling_items_record_id_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sampling_items")),
        sa.UniqueConstraint("audit_id", "record_id", name=op.f("uq_sampling_items_audit_id")),
    )
    with op.batch_alter_table("sampling_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sampling_items_audit_id"), ["audit_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sampling_items_record_id"), ["record_id"], unique=False
        )

    op.create_table(
        "sampling_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["sampling_items.id"],
            name=op.f("fk_sampling_findings_item_id_sampling_items"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_sampling_findings_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sampling_findings")),
    )
    with op.batch_alter_table("sampling_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sampling_findings_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sampling_findings_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sampling_findings_state"), ["state"], unique=False)

    op.create_table(
        "sampling_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["sampling_findings.id"],
            name=op.f("fk_sampling_evidence_finding_id_sampling_findings"),
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["vault_objects.id"],
            name=op.f("fk_sampling_evidence_object_id_vault_objects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sampling_evidence")),
    )
    with op.batch_alter_table("sampling_evidence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sampling_evidence_finding_id"), ["finding_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sampling_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sampling_evidence_finding_id"))

    op.drop_table("sampling_evidence")
    with op.batch_alter_table("sampling_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sampling_findings_state"))
        batch_op.drop_index(batch_op.f("ix_sampling_findings_item_id"))
        batch_op.drop_index(batch_op.f("ix_sampling_findings_due_at"))

    op.drop_table("sampling_findings")
    with op.batch_alter_table("sampling_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sampling_items_record_id"))
        batch_op.drop_index(batch_op.f("ix_sampling_items_audit_id"))

    op.drop_table("sampling_items")
    op.drop_table("sampling_audits")
