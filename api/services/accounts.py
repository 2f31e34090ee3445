"""Users over the API: the admin lists, adds, disables and enables them and sets passwords;
anyone changes their own password. The catalog audits every change; a new password or a
disabled account revokes the user's tokens (``api.services.auth``). Passwords are never
logged or audited."""

from __future__ import annotations

from api.services.access import require_action
from api.services.runtime import Runtime
from catalog import (
    Action,
    Role,
    UserInfo,
    authenticate,
    change_password,
    create_user,
    get_user,
    list_users,
    set_disabled,
)
from dangan.errors import InvalidInputError, NotAuthenticatedError

__all__ = ["add_user", "change_own_password", "set_user_disabled", "set_user_password", "users"]


def users(rt: Runtime, user: UserInfo) -> list[UserInfo]:
    """:raises PermissionDeniedError: ``user`` may not list users (audited)."""
    require_action(rt, user, Action.user_list)
    with rt.db.read() as session:
        return list_users(session)


def add_user(rt: Runtime, user: UserInfo, *, name: str, role: Role, password: str) -> UserInfo:
    """:raises PermissionDeniedError: not an admin (audited). :raises ConflictError: taken."""
    require_action(rt, user, Action.user_manage, f"user:{name}")
    with rt.db.write() as session:
        return create_user(session, name=name, role=role, password=password, actor=user.name)


def set_user_disabled(rt: Runtime, user: UserInfo, name: str, *, disabled: bool) -> UserInfo:
    """:raises PermissionDeniedError: not an admin (audited). :raises NotFoundError: no user."""
    require_action(rt, user, Action.user_manage, f"user:{name}")
    if disabled and name == user.name:
        raise InvalidInputError("you cannot disable your own account")
    with rt.db.write() as session:
        return set_disabled(session, name=name, disabled=disabled, actor=user.name)


def set_user_password(rt: Runtime, user: UserInfo, name: str, *, password: str) -> UserInfo:
    """:raises PermissionDeniedError: not an admin (audited). :raises NotFoundError: no user."""
    require_action(rt, user, Action.user_manage, f"user:{name}")
    with rt.db.write() as session:
        get_user(session, name)
        return change_password(session, name=name, password=password, actor=user.name)


def change_own_password(rt: Runtime, user: UserInfo, *, current: str, new: str) -> UserInfo:
    """Change one's own password, proving the current one first.

    :raises NotAuthenticatedError: the current password is wrong.
    """
    with rt.db.write() as session:
        try:
            authenticate(session, name=user.name, password=current)
        except NotAuthenticatedError:
            raise NotAuthenticatedError("the current password is wrong") from None
        return change_password(session, name=user.name, password=new, actor=user.name)
