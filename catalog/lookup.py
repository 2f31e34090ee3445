"""Records by id for one reader: what the search service shows of its hits.

The index answers with record ids; this is the catalog's second word on visibility, so a record
whose class changed since it was indexed is still never shown to someone who may not see it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import BusinessType, Record
from catalog.policy import visible_records_filter
from catalog.records import RecordInfo
from catalog.records import _info as record_info
from catalog.users import UserInfo

__all__ = ["visible_records_by_id"]


def visible_records_by_id(
    session: Session, record_ids: Iterable[int], who: UserInfo
) -> dict[int, RecordInfo]:
    """The records among ``record_ids`` that ``who`` may see, by id (others are left out)."""
    ids = sorted(set(record_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Record, BusinessType.name)
        .join(BusinessType, BusinessType.id == Record.business_type_id)
        .where(Record.id.in_(ids), visible_records_filter(who))
    ).all()
    return {row[0].id: record_info(row[0], row[1]) for row in rows}
