"""Business types (业务类型): each with its retention period and default security class.

The office's list is seeded on ``dangan init`` and can be extended; a type in use is never
removed, only deactivated.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import BusinessType, Retention, SecurityClass
from dangan.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "DEFAULT_BUSINESS_TYPES",
    "BusinessTypeInfo",
    "add_business_type",
    "get_business_type",
    "list_business_types",
    "seed_business_types",
]

# (name, retention, default security class): the office's regulations.
DEFAULT_BUSINESS_TYPES: tuple[tuple[str, Retention, SecurityClass], ...] = (
    ("新生入学", Retention.permanent, SecurityClass.internal),
    ("转学", Retention.permanent, SecurityClass.internal),
    ("休学", Retention.years_30, SecurityClass.internal),
    ("复学", Retention.years_30, SecurityClass.internal),
    ("学籍变更", Retention.permanent, SecurityClass.internal),
    ("成绩单", Retention.permanent, SecurityClass.internal),
    ("毕业审核", Retention.permanent, SecurityClass.internal),
    ("处分决定", Retention.years_30, SecurityClass.internal),
    ("奖励", Retention.years_30, SecurityClass.internal),
    ("会议纪要", Retention.years_10, SecurityClass.internal),
    ("合同", Retention.years_30, SecurityClass.contract),
)

# A type name becomes part of every archive code: CJK or ASCII letters, no separators.
_MAX_NAME = 16


@dataclass(frozen=True)
class BusinessTypeInfo:
    id: int
    name: str
    retention: Retention
    default_security_class: SecurityClass
    active: bool


def _info(bt: BusinessType) -> BusinessTypeInfo:
    return BusinessTypeInfo(
        bt.id, bt.name, Retention(bt.retention), SecurityClass(bt.default_security_class), bt.active
    )


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= _MAX_NAME and all(
        ch.isalpha() and ("\u4e00" <= ch <= "\u9fff" or ch.isascii()) for ch in name
    )


def add_business_type(
    session: Session,
    *,
    name: str,
    retention: str | Retention,
    default_security_class: str | SecurityClass = SecurityClass.internal,
    actor: str,
) -> BusinessTypeInfo:
    if not _valid_name(name):
        raise InvalidInputError(
            f"a business type name is 1-{_MAX_NAME} Chinese or ASCII letters, no digits or '-'"
        )
    try:
        ret, sec = Retention(retention), SecurityClass(default_security_class)
    except ValueError:
        raise InvalidInputError(
            "retention is one of 永久, 30年, 10年; security class one of internal, contract"
        ) from None
    if session.scalar(select(BusinessType.id).where(BusinessType.name == name)) is not None:
        raise ConflictError(f"business type {name} exists already")
    bt = BusinessType(name=name, retention=ret.value, default_security_class=sec.value, active=True)
    session.add(bt)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="business_type.create",
        target=f"business_type:{name}",
        detail={"retention": ret.value, "default_security_class": sec.value},
    )
    return _info(bt)


def seed_business_types(session: Session, *, actor: str) -> list[BusinessTypeInfo]:
    """Add the office's default types that are missing; returns those added."""
    existing = set(session.scalars(select(BusinessType.name)))
    return [
        add_business_type(
            session, name=name, retention=ret, default_security_class=sec, actor=actor
        )
        for name, ret, sec in DEFAULT_BUSINESS_TYPES
        if name not in existing
    ]


def get_business_type(session: Session, name: str) -> BusinessTypeInfo:
    bt = session.scalar(select(BusinessType).where(BusinessType.name == name))
    if bt is None:
        raise NotFoundError(f"unknown business type {name!r}")
    return _info(bt)


def list_business_types(session: Session) -> list[BusinessTypeInfo]:
    return [_info(b) for b in session.scalars(select(BusinessType).order_by(BusinessType.id))]
