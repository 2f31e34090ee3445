"""What routes depend on, as ``Annotated`` aliases (the full-stack template's ``deps.py``):
the runtime, the signed-in user, the client's address and the sign-in throttle.

A request is signed in by a bearer token (scripts) or by the web pages' session cookie, in
which case a change must also carry the page's CSRF token (``api/session.py``). A missing or
bad token answers 401 in the one error shape; whether the user may do what they ask is the
services' business (the policy), never a route's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.services import Runtime
from api.services.auth import LoginThrottle, user_for_token
from api.session import CSRF_HEADER, SESSION_COOKIE, check_csrf
from catalog import UserInfo
from dangan.errors import NotAuthenticatedError

__all__ = ["ClientAddress", "CurrentUser", "RuntimeDep", "ThrottleDep"]

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
ThrottleDep = Annotated[LoginThrottle, Depends(_throttle)]
ClientAddress = Annotated[str, Depends(_client_address)]


def _current_user(
    request: Request, rt: RuntimeDep, token: Annotated[str | None, Depends(_bearer)]
) -> UserInfo:
    if token:
        return user_for_token(rt, token)
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        raise NotAuthenticatedError("sign in first: no bearer token was given")
    user = user_for_token(rt, session, kind="session")
    check_csrf(request, request.headers.get(CSRF_HEADER))
    return user


CurrentUser = Annotated[UserInfo, Depends(_current_user)]
