"""A record's descriptive fields: the student's class (班级) is kept at creation, corrected as
a non-key field, audited with its before and after values, and held to its column's size."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from catalog import (
    EDITABLE_FIELDS,
    KEY_FIELDS,
    Database,
    NewRecord,
    create_record,
    get_record,
    list_events,
    seed_business_types,
    update_record_fields,
)
from dangan.errors import InvalidInputError


@pytest.fixture
def seeded(database: Database) -> Database:
    with database.write() as s:
        seed_business_types(s, actor="system")
    return database


def test_a_record_keeps_the_students_class(seeded: Database) -> None:
    with seeded.write() as s:
        made = create_record(
            s, NewRecord("转学", 2023, student_name="王小明", student_class="高三(2)班"), actor="li"
        )
        plain = create_record(s, NewRecord("转学", 2023), actor="li")
    assert made.student_class == "高三(2)班"
    assert plain.student_class is None
    with seeded.read() as s:
        assert get_record(s, made.archive_code).student_class == "高三(2)班"


def test_the_class_is_a_non_key_field_corrected_with_an_audit_trail(seeded: Database) -> None:
    assert "student_class" in EDITABLE_FIELDS
    assert "student_class" not in KEY_FIELDS
    with seeded.write() as s:
        code = create_record(
            s, NewRecord("转学", 2023, student_class="高三(2)班"), actor="li"
        ).archive_code
    with seeded.write() as s:
        fixed = update_record_fields(s, code, {"student_class": " 高三(3)班 "}, actor="zhao")
    assert fixed.student_class == "高三(3)班"
    with seeded.write() as s:
        cleared = update_record_fields(s, code, {"student_class": ""}, actor="zhao")
    assert cleared.student_class is None
    with seeded.read() as s:
        updates = list_events(s, action="record.update")
    assert [(e.actor, e.detail["before"], e.detail["after"]) for e in updates] == [
        ("zhao", {"student_class": "高三(2)班"}, {"student_class": "高三(3)班"}),
        ("zhao", {"student_class": "高三(3)班"}, {"student_class": None}),
    ]


@pytest.mark.parametrize("field", ["student_class", "student_name", "paper_location", "title"])
def test_a_value_longer_than_its_column_is_refused(seeded: Database, field: str) -> None:
    too_long = "班" * (EDITABLE_FIELDS[field] + 1)
    given: dict[str, Any] = {field: too_long}
    with seeded.write() as s:
        with pytest.raises(InvalidInputError, match=f"{field} has at most"):
            create_record(s, replace(NewRecord("转学", 2023), **given), actor="li")
        code = create_record(s, NewRecord("转学", 2023), actor="li").archive_code
        with pytest.raises(InvalidInputError, match=f"{field} has at most"):
            update_record_fields(s, code, {field: too_long}, actor="zhao")
