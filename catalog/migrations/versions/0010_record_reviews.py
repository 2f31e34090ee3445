"""The intake review: one row per record with the gates it needs and where it stands.

See docs/review.md. Records entered before this revision have no row: they were never held
at the gates, and the review listing leaves them out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_reviews",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("gates", sa.String(length=100), nullable=False),
        sa.Column("gate", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_record_reviews_record_id_records")
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_record_reviews")),
    )
    with op.batch_alter_table("record_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_reviews_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("record_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_reviews_state"))
    op.drop_table("record_reviews")
