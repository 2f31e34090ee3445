"""Digitization quality: one row per check per page (docs/quality.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "page_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("reading", sa.String(length=32), nullable=True),
        sa.Column("threshold", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["page_id"], ["pages.id"], name=op.f("fk_page_checks_page_id_pages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_checks")),
        sa.UniqueConstraint("page_id", "name", name=op.f("uq_page_checks_page_id")),
    )
    with op.batch_alter_table("page_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_page_checks_page_id"), ["page_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("page_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_checks_page_id"))
    op.drop_table("page_checks")
