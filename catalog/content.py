"""Finding a record by its content: the same scan uploaded twice is one record.

Only live records count: a disposed record's content is destroyed, so the same paper may be
archived again. Visibility is the caller's business (the policy), as for :func:`get_record`.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from catalog.models import BusinessType, Record, RecordStatus
from catalog.records import RecordInfo, _info

__all__ = ["find_record_by_content"]

# The namespace of the two-key PostgreSQL advisory locks taken per content hash; two-key locks
# never collide with the single-key lock of the audit chain.
_PG_CONTENT_LOCKS = 0x64616E67  # "dang"


def find_record_by_content(
    session: Session, plaintext_sha256: str, *, lock: bool = False
) -> RecordInfo | None:
    """The oldest live (not disposed) record whose original has this plaintext SHA-256.

    :param plaintext_sha256: lowercase hex, as the vault reports it.
    :param lock: in a write transaction that is about to create a record with this content:
        hold the content's lock until the transaction ends, so that a twin upload's look-up
        waits and then sees this record. On SQLite every write transaction holds the database
        lock already (``BEGIN IMMEDIATE``); on PostgreSQL an advisory lock is taken.
    """
    if lock and session.get_bind().dialect.name == "postgresql":
        # A signed 32-bit key from the hash; a rare collision only makes two uploads wait.
        key = int(plaintext_sha256[:8], 16) - (1 << 31)
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _PG_CONTENT_LOCKS, "key": key},
        )
    row = session.execute(
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(
            Record.plaintext_sha256 == plaintext_sha256,
            Record.status != RecordStatus.disposed.value,
        )
        .order_by(Record.id)
        .limit(1)
    ).first()
    return None if row is None else _info(row[0], row[1])
