"""``/api/v1/users``: the admin's user management (list also for directors and auditors)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from api.deps import CurrentUser, RuntimeDep
from api.schemas import UserOut
from api.services import accounts
from catalog import Role

router = APIRouter(prefix="/users", tags=["users"])


@router.get("")
def list_users(rt: RuntimeDep, user: CurrentUser) -> list[UserOut]:
    """Every user and their role (``user.list``)."""
    return [UserOut.of(u) for u in accounts.users(rt, user)]


class NewUserIn(BaseModel):
    name: str
    role: Role
    password: str


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(rt: RuntimeDep, user: CurrentUser, body: NewUserIn) -> UserOut:
    """Add a user (``user.manage``)."""
    return UserOut.of(
        accounts.add_user(rt, user, name=body.name, role=body.role, password=body.password)
    )


@router.post("/{name}/disable")
def disable_user(rt: RuntimeDep, user: CurrentUser, name: str) -> UserOut:
    """Disable a user: they can no longer sign in, and their tokens stop working at once."""
    return UserOut.of(accounts.set_user_disabled(rt, user, name, disabled=True))


@router.post("/{name}/enable")
def enable_user(rt: RuntimeDep, user: CurrentUser, name: str) -> UserOut:
    """Enable a disabled user again."""
    return UserOut.of(accounts.set_user_disabled(rt, user, name, disabled=False))


class PasswordSetIn(BaseModel):
    password: str


@router.post("/{name}/password")
def set_password(rt: RuntimeDep, user: CurrentUser, name: str, body: PasswordSetIn) -> UserOut:
    """Set a user's password; their earlier tokens stop working."""
    return UserOut.of(accounts.set_user_password(rt, user, name, password=body.password))
