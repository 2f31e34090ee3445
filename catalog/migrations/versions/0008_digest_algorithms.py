"""The digest of each vault object and of each audit event: SHA-256 or SM3.

See docs/vault-format.md, "Cipher suites", and catalog/audit.py. Every row written before is
SHA-256, the default, and keeps its hashes as they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("vault_objects", "audit_events")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "digest_algorithm",
                    sa.String(length=16),
                    server_default="sha256",
                    nullable=False,
                )
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("digest_algorithm")
