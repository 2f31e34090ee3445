"""Corrections to a record's descriptive fields, audited with their before and after values.

Only fields that change no archive code, security class or content can be edited here:
``title``, ``student_class`` (班级), ``paper_location`` (non-key) and, on a draft, the student's
number and name. Whether a person
may make the change is the policy's business (``record.update_metadata`` /
``record.update_draft``), asked by the caller in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import Record
from catalog.policy import record_target
from catalog.records import RecordInfo, get_record
from dangan.errors import InvalidInputError, NotFoundError

__all__ = ["EDITABLE_FIELDS", "KEY_FIELDS", "update_record_fields"]

# Field name → the longest value it takes (the column's size).
EDITABLE_FIELDS: Final[Mapping[str, int]] = {
    "title": 500,
    "student_class": 64,
    "paper_location": 200,
    "student_no": 32,
    "student_name": 64,
}
# Of those, the key fields (the student): changed on a draft only, otherwise by a director's
# key change (not here).
KEY_FIELDS: Final = frozenset({"student_no", "student_name"})


def update_record_fields(
    session: Session, archive_code: str, changes: Mapping[str, str | None], *, actor: str
) -> RecordInfo:
    """Set the given fields; an empty value clears a field (a title becomes ``""``).

    The change is audited as ``record.update`` with each changed field's before and after
    values (the record's own history shows them). Nothing changed, nothing audited.

    :raises InvalidInputError: an unknown field or a value too long.
    :raises NotFoundError: no such record.
    """
    for name, value in changes.items():
        limit = EDITABLE_FIELDS.get(name)
        if limit is None:
            raise InvalidInputError(f"{name} cannot be edited here")
        if value is not None and len(value) > limit:
            raise InvalidInputError(f"{name} has at most {limit} characters")
    row = session.scalars(select(Record).where(Record.archive_code == archive_code)).first()
    if row is None:
        raise NotFoundError("no such record")
    before: dict[str, str | None] = {}
    after: dict[str, str | None] = {}
    for name, value in changes.items():
        new: str | None = (value or "").strip()
        if not new and name != "title":
            new = None  # an empty optional field is no value, not an empty string
        old = getattr(row, name)
        if old != new:
            before[name], after[name] = old, new
            setattr(row, name, new)
    if after:
        session.flush()
        record_event(
            session,
            actor=actor,
            action="record.update",
            target=record_target(archive_code),
            detail={"record_id": row.id, "before": before, "after": after},
        )
    return get_record(session, archive_code)
