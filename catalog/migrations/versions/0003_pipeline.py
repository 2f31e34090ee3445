"""The intake pipeline: each record's stage and upload name, each page's OCR state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_name", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("stage", sa.String(length=16), server_default="queued", nullable=False)
        )
        batch_op.add_column(
            sa.Column("needs_review", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), server_default="pending", nullable=False)
        )
        batch_op.add_column(sa.Column("skew", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("engine", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("needs_review", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("error", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("needs_review")
        batch_op.drop_column("engine")
        batch_op.drop_column("skew")
        batch_op.drop_column("state")

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("processed_at")
        batch_op.drop_column("needs_review")
        batch_op.drop_column("stage")
        batch_op.drop_column("upload_name")
