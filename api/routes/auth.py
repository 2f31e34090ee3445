"""``/api/v1/auth``: the OAuth2 password flow, refresh, and the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import ClientAddress, CurrentUser, RuntimeDep, ThrottleDep
from api.schemas import TokenOut, UserOut
from api.services import accounts
from api.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


def _out(pair: auth_service.TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/token")
def token(
    rt: RuntimeDep,
    throttle: ThrottleDep,
    address: ClientAddress,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Sign in with a user name and password (form fields ``username``, ``password``).

    Failed attempts are throttled per user name and per client address (429); every attempt
    is audited (``auth.login``)."""
    pair = auth_service.login(
        rt, throttle, name=form.username, password=form.password, address=address
    )
    return _out(pair)


class RefreshIn(BaseModel):
    refresh_token: str


@router.post("/refresh")
def refresh(rt: RuntimeDep, body: RefreshIn) -> TokenOut:
    """New tokens for a refresh token; refused once the user is disabled or their password
    changed."""
    return _out(auth_service.refresh(rt, body.refresh_token))


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    """The signed-in user."""
    return UserOut.of(user)


class PasswordIn(BaseModel):
    current_password: str
    new_password: str


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(rt: RuntimeDep, user: CurrentUser, body: PasswordIn) -> None:
    """Change one's own password; every token issued before (this one too) stops working."""
    accounts.change_own_password(rt, user, current=body.current_password, new=body.new_password)
