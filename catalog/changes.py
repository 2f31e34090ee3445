"""Change requests: how a record's key fields change once it is past intake.

The key fields are the student's number and name, the business type, the year, the archive
code and the security class. A clerk, supervisor or director files a request with a reason
(``record.request_key_change``); a director approves or rejects it with a reason
(``record.update_key_fields``). Approving applies the whole change in the caller's
transaction, audited as ``record.key_change`` with the before and after values.

A new business type or year means a new archive code (年份-业务类型-编号): the next serial is
allocated (:func:`catalog.codes.allocate_code`) unless the request names the code itself. The
old code becomes the record's alias (``record_aliases``): every lookup by code still finds the
record (:func:`catalog.records.get_record`), the code is never handed out again, and the
record's history keeps the events filed under it (:func:`history_targets`).

A request remembers the key fields as they stood when it was filed; approving one whose record
reads otherwise by then (another change came first) is refused, and the request is marked
``stale`` (:func:`mark_stale`) for a fresh one to be filed.

Whether a person may file or decide is the policy's business, asked by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.change_models import ChangeRequest, ChangeState, RecordAlias
from catalog.codes import _check_year, allocate_code, claim_code, parse_code
from catalog.models import BusinessType, Record, RecordStatus, SecurityClass, utcnow
from catalog.policy import record_target, visible_records_filter
from catalog.records import RecordInfo, find_record_row, former_codes, get_record
from catalog.users import UserInfo
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "KEY_CHANGE_FIELDS",
    "ChangeRequestInfo",
    "ChangeState",
    "KeyChange",
    "StaleChangeRequestError",
    "approve_change_request",
    "file_change_request",
    "get_change_request",
    "history_targets",
    "key_fields",
    "list_change_requests",
    "mark_stale",
    "reject_change_request",
]

# The key fields a change request may change, in the order they are shown.
KEY_CHANGE_FIELDS: Final = (
    "student_no",
    "student_name",
    "business_type",
    "year",
    "archive_code",
    "security_class",
)
_LIMITS: Final = {"student_no": 32, "student_name": 64}
_MAX_REASON: Final = 500


class StaleChangeRequestError(ConflictError):
    """The record's key fields changed after the request was filed: it can no longer apply."""

    def __init__(self, request_id: int, fields: Sequence[str]) -> None:
        super().__init__(
            f"change request {request_id} is stale: the record's {', '.join(fields)} changed "
            "after it was filed; file a new request"
        )
        self.request_id = request_id
        self.fields = tuple(fields)


@dataclass(frozen=True)
class ChangeRequestInfo:
    id: int
    record_id: int
    archive_code: str  # the record's code now
    code_at_filing: str
    security_class: SecurityClass  # the record's class now: who may see the request
    state: ChangeState
    changes: Mapping[str, Any]  # field → the value asked for
    base: Mapping[str, Any]  # the key fields when it was filed
    reason: str
    filed_by: str
    filed_by_id: int | None
    filed_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    result_code: str | None  # the record's code once approved


@dataclass(frozen=True)
class KeyChange:
    """An approved request, applied: the record as it now is, and what changed."""

    request: ChangeRequestInfo
    record: RecordInfo
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    former_code: str | None  # the code it had, when the change gave it a new one


def key_fields(session: Session, row: Record) -> dict[str, Any]:
    """The record's key fields as a request records them (``base``)."""
    name = session.scalar(select(BusinessType.name).where(BusinessType.id == row.business_type_id))
    return {
        "archive_code": row.archive_code,
        "student_no": row.student_no,
        "student_name": row.student_name,
        "business_type": name,
        "year": row.year,
        "security_class": row.security_class,
    }


def history_targets(session: Session, record: RecordInfo) -> list[str]:
    """The audit targets of the record's history: its code and every former code."""
    return [record_target(c) for c in (record.archive_code, *former_codes(session, record.id))]


def _info(session: Session, row: ChangeRequest, record: Record | None = None) -> ChangeRequestInfo:
    record = record or session.get(Record, row.record_id)
    if record is None:  # pragma: no cover - records are never deleted
        raise NotFoundError(f"no change request {row.id}")
    return ChangeRequestInfo(
        id=row.id,
        record_id=row.record_id,
        archive_code=record.archive_code,
        code_at_filing=row.code_at_filing,
        security_class=SecurityClass(record.security_class),
        state=ChangeState(row.state),
        changes=dict(row.changes),
        base=dict(row.base),
        reason=row.reason,
        filed_by=row.filed_by,
        filed_by_id=row.filed_by_id,
        filed_at=row.filed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        result_code=row.result_code,
    )


def _reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(f"{what} needs a reason")
    if len(text) > _MAX_REASON:
        raise InvalidInputError(f"a reason has at most {_MAX_REASON} characters")
    return text


def _normalized(name: str, value: Any) -> Any:
    """One asked-for value in its stored form; :raises InvalidInputError: it is malformed."""
    if name in _LIMITS:
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"{name} is text")
        text = (value or "").strip()
        if len(text) > _LIMITS[name]:
            raise InvalidInputError(f"{name} has at most {_LIMITS[name]} characters")
        return text or None
    if name == "year":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInputError("year is a number")
        try:
            year = int(value)
        except ValueError:
            raise InvalidInputError("year is a number") from None
        _check_year(year, None)
        return year
    if name == "security_class":
        try:
            return SecurityClass(str(value)).value
        except ValueError:
            names = ", ".join(c.value for c in SecurityClass)
            raise InvalidInputError(f"unknown security class; classes are {names}") from None
    if name == "business_type":
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError("business_type names a business type")
        return value.strip()
    if name == "archive_code":
        if not isinstance(value, str):
            raise InvalidInputError("archive_code is text")
        return str(parse_code(value))
    raise InvalidInputError(f"{name} is not a key field a change request changes")


def _checked(
    session: Session, row: Record, changes: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The asked-for changes that differ from the record, in stored form, and the key fields
    they would give it.

    :raises InvalidInputError: an unknown field, a malformed value, an unknown or inactive
        type, a code that does not match the type and year, a contract type with a lower
        class, or nothing that would change.
    :raises ConflictError: the code asked for is another record's (or a former code of one).
    """
    current = key_fields(session, row)
    asked = {name: _normalized(name, value) for name, value in changes.items()}
    code = parse_code(asked["archive_code"]) if "archive_code" in asked else None
    if code is not None:
        # A code carries its year and type: asking for it asks for them.
        for name, value in (("year", code.year), ("business_type", code.business_type)):
            if asked.setdefault(name, value) != value:
                raise InvalidInputError(
                    f"archive code {code} does not match the {name.replace('_', ' ')} asked for"
                )
    result = {**current, **asked}
    differ = {name: value for name, value in asked.items() if current[name] != value}
    if not differ:
        raise InvalidInputError("nothing to change: the record already reads so")
    bt = session.scalars(
        select(BusinessType).where(BusinessType.name == result["business_type"])
    ).first()
    if bt is None or (not bt.active and "business_type" in differ):
        raise InvalidInputError(f"unknown business type {result['business_type']!r}")
    if (
        bt.default_security_class == SecurityClass.contract
        and result["security_class"] != SecurityClass.contract
    ):
        # 合同类 files are the director's alone; their type cannot be filed as anything less.
        raise InvalidInputError(
            f"records of type {bt.name} are always contract-class: ask for security_class "
            "contract too"
        )
    if code is not None and str(code) != row.archive_code:
        taken_by = session.scalar(select(Record.id).where(Record.archive_code == str(code)))
        alias_of = session.scalar(
            select(RecordAlias.record_id).where(RecordAlias.archive_code == str(code))
        )
        if taken_by is not None or (alias_of is not None and alias_of != row.id):
            raise ConflictError(f"archive code {code} is taken")
    return differ, result


def file_change_request(
    session: Session,
    archive_code: str,
    changes: Mapping[str, Any],
    *,
    reason: str,
    actor: str,
    actor_id: int | None = None,
) -> ChangeRequestInfo:
    """File a request to change the record's key fields, audited as ``change_request.file``.

    :param archive_code: the record's code or a former one.
    :param changes: field (:data:`KEY_CHANGE_FIELDS`) → the value asked for; ``""`` or
        ``None`` clears the student's number or name. An archive code asked for brings its
        year and type with it.
    :raises NotFoundError: no such record.
    :raises InvalidInputError: no reason, or changes that could not apply (:func:`_checked`).
    :raises ConflictError: the record was disposed of, or the code asked for is taken.
    """
    row = find_record_row(session, archive_code)
    if row is None:
        raise NotFoundError("no such record")
    if row.status == RecordStatus.disposed:
        raise ConflictError(f"record {row.archive_code} was disposed of: nothing to correct")
    text = _reason(reason, "a change request")
    if not changes:
        raise InvalidInputError("a change request names at least one key field")
    differ, _ = _checked(session, row, changes)
    request = ChangeRequest(
        record_id=row.id,
        state=ChangeState.open.value,
        code_at_filing=row.archive_code,
        changes=differ,
        base=key_fields(session, row),
        reason=text,
        filed_by=actor,
        filed_by_id=actor_id,
        filed_at=utcnow(),
    )
    session.add(request)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="change_request.file",
        target=record_target(row.archive_code),
        detail={"record_id": row.id, "request_id": request.id, "fields": sorted(differ)},
    )
    return _info(session, request, row)


def get_change_request(session: Session, request_id: int) -> ChangeRequestInfo:
    """:raises NotFoundError: no such change request."""
    row = session.get(ChangeRequest, request_id)
    if row is None:
        raise NotFoundError(f"no change request {request_id}")
    return _info(session, row)


def list_change_requests(
    session: Session,
    who: UserInfo,
    *,
    states: Sequence[ChangeState] | None = None,
    filed_by_id: int | None = None,
    record_id: int | None = None,
    limit: int = 200,
) -> list[ChangeRequestInfo]:
    """Change requests about records ``who`` may see, oldest first.

    :param states: only these (default: every state).
    :param filed_by_id: only those this user filed.
    :param record_id: only those about this record.
    """
    stmt = (
        select(ChangeRequest, Record)
        .join(Record, Record.id == ChangeRequest.record_id)
        .where(visible_records_filter(who))
    )
    if states is not None:
        stmt = stmt.where(ChangeRequest.state.in_([s.value for s in states]))
    if filed_by_id is not None:
        stmt = stmt.where(ChangeRequest.filed_by_id == filed_by_id)
    if record_id is not None:
        stmt = stmt.where(ChangeRequest.record_id == record_id)
    rows = session.execute(stmt.order_by(ChangeRequest.id).limit(limit)).all()
    return [_info(session, req, rec) for req, rec in rows]


def _locked(session: Session, model: type[Any], key: int) -> Any:
    # Row locks on PostgreSQL, so that two decisions on one request (or two requests on one
    # record) are taken one after the other; SQLite's write transactions already are.
    return session.get(model, key, with_for_update=True, populate_existing=True)


def _open_request(session: Session, request_id: int) -> tuple[ChangeRequest, Record]:
    req = _locked(session, ChangeRequest, request_id)
    if req is None:
        raise NotFoundError(f"no change request {request_id}")
    if req.state != ChangeState.open:
        raise ConflictError(f"change request {request_id} is {req.state}, not open")
    row = _locked(session, Record, req.record_id)
    if row is None:  # pragma: no cover - records are never deleted
        raise NotFoundError(f"no change request {request_id}")
    return req, row


def _stale_fields(session: Session, req: ChangeRequest, row: Record) -> list[str]:
    now = key_fields(session, row)
    return [name for name in now if req.base.get(name) != now[name]]


def approve_change_request(
    session: Session,
    request_id: int,
    *,
    actor: str,
    reason: str,
    now: dt.datetime | None = None,
) -> KeyChange:
    """Apply an open request to its record, atomically, audited as ``record.key_change``
    with each changed field's before and after values (the archive code among them when the
    record gets a new one; the old code is kept as its alias).

    :raises NotFoundError: no such request.
    :raises ConflictError: the request is not open, its record was disposed of, the code it
        asks for was taken meanwhile; :class:`StaleChangeRequestError` when the record's key
        fields changed after it was filed (call :func:`mark_stale` in a transaction of its own).
    :raises InvalidInputError: no reason, or the change no longer applies (e.g. its business
        type was deactivated).
    """
    text = _reason(reason, "a decision")
    req, row = _open_request(session, request_id)
    if row.status == RecordStatus.disposed:
        raise ConflictError(f"record {row.archive_code} was disposed of: nothing to correct")
    stale = _stale_fields(session, req, row)
    if stale:
        raise StaleChangeRequestError(request_id, stale)
    differ, result = _checked(session, row, req.changes)
    before = {name: req.base[name] for name in differ}
    after = dict(differ)
    old = (row.archive_code, row.year, row.business_type_id, row.serial)
    bt_id = session.scalars(
        select(BusinessType.id).where(BusinessType.name == result["business_type"])
    ).one()
    code = None
    if "archive_code" in differ:
        # Back to one of its own former codes: that alias becomes its code again.
        session.execute(
            delete(RecordAlias).where(
                RecordAlias.archive_code == differ["archive_code"],
                RecordAlias.record_id == row.id,
            )
        )
        code = claim_code(session, differ["archive_code"])
    elif "business_type" in differ or "year" in differ:
        code = allocate_code(session, year=result["year"], business_type=result["business_type"])
    if code is not None:
        session.add(
            RecordAlias(
                archive_code=old[0],
                record_id=row.id,
                year=old[1],
                business_type_id=old[2],
                serial=old[3],
                change_request_id=req.id,
            )
        )
        row.archive_code, row.year, row.business_type_id, row.serial = (
            str(code),
            code.year,
            bt_id,
            code.serial,
        )
        before["archive_code"], after["archive_code"] = old[0], str(code)
    for name in ("student_no", "student_name", "security_class"):
        if name in differ:
            setattr(row, name, differ[name])
    req.state = ChangeState.approved.value
    req.decided_by, req.decided_at = actor, now or utcnow()
    req.decision_reason = text
    req.result_code = row.archive_code
    session.flush()
    record_event(
        session,
        actor=actor,
        action="record.key_change",
        target=record_target(row.archive_code),
        detail={
            "record_id": row.id,
            "request_id": req.id,
            "filed_by": req.filed_by,
            "before": before,
            "after": after,
        },
    )
    return KeyChange(
        request=_info(session, req, row),
        record=get_record(session, row.archive_code),
        before=before,
        after=after,
        former_code=old[0] if code is not None else None,
    )


def reject_change_request(
    session: Session,
    request_id: int,
    *,
    actor: str,
    reason: str,
    now: dt.datetime | None = None,
) -> ChangeRequestInfo:
    """Refuse an open request, audited as ``change_request.reject``; the record is unchanged.

    :raises NotFoundError: no such request.
    :raises ConflictError: the request is not open.
    :raises InvalidInputError: no reason.
    """
    text = _reason(reason, "a decision")
    req, row = _open_request(session, request_id)
    req.state = ChangeState.rejected.value
    req.decided_by, req.decided_at = actor, now or utcnow()
    req.decision_reason = text
    session.flush()
    record_event(
        session,
        actor=actor,
        action="change_request.reject",
        target=record_target(row.archive_code),
        detail={"record_id": row.id, "request_id": req.id},
    )
    return _info(session, req, row)


def mark_stale(
    session: Session, request_id: int, *, actor: str, now: dt.datetime | None = None
) -> ChangeRequestInfo | None:
    """Close an open request whose record's key fields changed after it was filed, audited
    as ``change_request.stale`` with the fields that changed; ``None`` (nothing done) when the
    request is not open or not stale."""
    req = _locked(session, ChangeRequest, request_id)
    if req is None or req.state != ChangeState.open:
        return None
    row = _locked(session, Record, req.record_id)
    if row is None:  # pragma: no cover - records are never deleted
        return None
    stale = _stale_fields(session, req, row)
    if not stale:
        return None
    req.state = ChangeState.stale.value
    req.decided_by, req.decided_at = actor, now or utcnow()
    req.decision_reason = f"the record's {', '.join(stale)} changed after it was filed"
    session.flush()
    record_event(
        session,
        actor=actor,
        action="change_request.stale",
        target=record_target(row.archive_code),
        detail={"record_id": row.id, "request_id": req.id, "fields": stale},
    )
    return _info(session, req, row)
