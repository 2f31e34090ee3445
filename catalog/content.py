"""Finding a record by its content: the same scan uploaded twice is one record.

Only live records count: a disposed record's content is destroyed, so the same paper may be
archived again. Visibility is the caller's business (the policy), as for :func:`get_record`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import BusinessType, Record, RecordStatus
from catalog.records import RecordInfo, _info

__all__ = ["find_record_by_content"]


def find_record_by_content(session: Session, plaintext_sha256: str) -> RecordInfo | None:
    """The oldest live (not disposed) record whose original has this plaintext SHA-256.

    :param plaintext_sha256: lowercase hex, as the vault reports it.
    """
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
