"""Corrections to a record's descriptive fields, audited with their before and after values.

Only fields that change no archive code, security class or content can be edited here:
``title``, ``student_class`` (班级), ``paper_location``, ``tags`` and ``notes`` (备注)
(non-key) and, on a draft, the student's number and name. Whether a person may make the
change is the policy's business (``record.update_metadata`` / ``record.update_draft``), asked
by the caller in the same transaction. Key fields of a record past intake change only through
a director's approved change request (``catalog.changes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.policy import record_target
from catalog.records import RecordInfo, find_record_row, get_record
from dangan.errors import InvalidInputError, NotFoundError

__all__ = [
    "EDITABLE_FIELDS",
    "KEY_FIELDS",
    "MAX_TAG",
    "MAX_TAGS",
    "normalize_tags",
    "update_record_fields",
]

# Field name → the longest value it takes (the column's size; ``tags``: the longest tag).
EDITABLE_FIELDS: Final[Mapping[str, int]] = {
    "title": 500,
    "student_class": 64,
    "paper_location": 200,
    "tags": 32,
    "notes": 2000,
    "student_no": 32,
    "student_name": 64,
}
# Of those, the key fields (the student): changed on a draft only, otherwise by a director's
# key change (not here).
KEY_FIELDS: Final = frozenset({"student_no", "student_name"})
MAX_TAG: Final = 32
MAX_TAGS: Final = 20

FieldValue = str | Sequence[str] | None


def normalize_tags(tags: Sequence[str] | None) -> list[str] | None:
    """Tags as stored: each trimmed, empty ones dropped, duplicates removed (the first kept);
    ``None`` for no tags.

    :raises InvalidInputError: a tag too long or holding a comma or a control character, or
        more than :data:`MAX_TAGS`.
    """
    if tags is None:
        return None
    if isinstance(tags, str):
        raise InvalidInputError("tags are a list of words")
    kept: list[str] = []
    for raw in tags:
        tag = str(raw).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise InvalidInputError(f"a tag has at most {MAX_TAG} characters")
        if any(c in ",，" or not c.isprintable() for c in tag):
            raise InvalidInputError("a tag holds no comma or control character")
        if tag not in kept:
            kept.append(tag)
    if len(kept) > MAX_TAGS:
        raise InvalidInputError(f"a record has at most {MAX_TAGS} tags")
    return kept or None


def _text(name: str, value: FieldValue) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} is text")
    limit = EDITABLE_FIELDS[name]
    if value is not None and len(value) > limit:
        raise InvalidInputError(f"{name} has at most {limit} characters")
    new: str | None = (value or "").strip()
    if not new and name != "title":
        new = None  # an empty optional field is no value, not an empty string
    return new


def update_record_fields(
    session: Session, archive_code: str, changes: Mapping[str, FieldValue], *, actor: str
) -> RecordInfo:
    """Set the given fields; an empty value clears a field (a title becomes ``""``, tags
    ``[]``). ``archive_code`` may be a former code of the record.

    The change is audited as ``record.update`` with each changed field's before and after
    values (the record's own history shows them). Nothing changed, nothing audited.

    :raises InvalidInputError: an unknown field or a value too long.
    :raises NotFoundError: no such record.
    """
    values: dict[str, str | list[str] | None] = {}
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            raise InvalidInputError(f"{name} cannot be edited here")
        if name != "tags":
            values[name] = _text(name, value)
        elif isinstance(value, str):
            raise InvalidInputError("tags are a list of words")
        else:
            values[name] = normalize_tags(value)
    row = find_record_row(session, archive_code)
    if row is None:
        raise NotFoundError("no such record")
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for name, new in values.items():
        old = getattr(row, name)
        if name == "tags":
            old = list(old) if old else None
        if old != new:
            if name == "tags":
                before[name], after[name] = old or [], new or []
            else:
                before[name], after[name] = old, new
            setattr(row, name, new)
    if after:
        session.flush()
        record_event(
            session,
            actor=actor,
            action="record.update",
            target=record_target(row.archive_code),
            detail={"record_id": row.id, "before": before, "after": after},
        )
    return get_record(session, row.archive_code)
