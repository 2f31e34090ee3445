"""Users and their roles; argon2id password hashes.

Every change is audited in the same transaction. Passwords never leave this module except as
hashes, and never appear in an event's detail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import Role, User, utcnow
from dangan.errors import ConflictError, InvalidInputError, NotAuthenticatedError, NotFoundError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "UserInfo",
    "authenticate",
    "change_password",
    "create_user",
    "get_user",
    "list_users",
    "set_disabled",
]

MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,64}$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: dt.datetime
    #: The break-glass grant in force for this user when they were looked up, if any
    #: (``catalog.breakglass.with_grant``); the policy widens their reading while it is set.
    breakglass: int | None = None


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.name, Role(user.role), user.disabled, user.created_at)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def _parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInputError(f"unknown role {role!r}; roles are {names}") from None


def _load(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def create_user(
    session: Session, *, name: str, role: str | Role, password: str, actor: str
) -> UserInfo:
    """Add a user. :raises ConflictError: the name is taken."""
    if not _NAME.match(name):
        raise InvalidInputError(
            "a user name is 2-64 letters, digits, Chinese characters, '.', '_' or '-'"
        )
    parsed = _parse_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ConflictError(f"a user named {name!r} exists already")
    user = User(name=name, role=parsed.value, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    record_event(
        session, actor=actor, action="user.create", target=f"user:{name}", detail={"role": parsed}
    )
    return _info(user)


def get_user(session: Session, name: str) -> UserInfo:
    return _info(_load(session, name))


def list_users(session: Session, *, role: Role | None = None) -> list[UserInfo]:
    stmt = select(User).order_by(User.name)
    if role is not None:
        stmt = stmt.where(User.role == role.value)
    return [_info(u) for u in session.scalars(stmt)]


def set_disabled(session: Session, *, name: str, disabled: bool, actor: str) -> UserInfo:
    """Disable (or enable) a user; a disabled user cannot sign in or act."""
    user = _load(session, name)
    if user.disabled != disabled:
        user.disabled = disabled
        record_event(
            session,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            target=f"user:{name}",
        )
    return _info(user)


def change_password(session: Session, *, name: str, password: str, actor: str) -> UserInfo:
    user = _load(session, name)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = utcnow()
    record_event(session, actor=actor, action="user.passwd", target=f"user:{name}")
    return _info(user)


def authenticate(session: Session, *, name: str, password: str) -> UserInfo:
    """Check a name and password.

    :raises NotAuthenticatedError: unknown name, wrong password or disabled user, all alike.
    """
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        # Spend the same time as a real check so names cannot be probed by timing.
        _hasher.hash(password)
        raise NotAuthenticatedError("wrong user name or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise NotAuthenticatedError("wrong user name or password") from None
    if user.disabled:
        raise NotAuthenticatedError("wrong user name or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return _info(user)
