"""The web pages' session cookie and their CSRF defence, shared by the pages and the JSON API.

A signed-in browser holds two cookies, both ``HttpOnly``, ``SameSite=Strict``, ``Path=/`` and
``Secure`` when the page came over HTTPS:

- ``dangan_session``: a session token (``api.services.auth``, kind ``session``), checked
  against the user's catalog row on every request, so disabling a user or changing their
  password ends their sessions at once;
- ``dangan_csrf``: a random token the pages also put in every form (``csrf_token``) and in a
  ``<meta name="csrf-token">`` that their scripts send back as ``X-CSRF-Token``. A request
  that changes something and is authenticated by the cookie must carry the same token, and an
  ``Origin`` header, when sent, must be this server's (double submit plus origin check; with
  ``SameSite=Strict`` a cross-site page cannot even send the cookie).

Bearer tokens (scripts) need no CSRF token: a browser never attaches them by itself.
"""

from __future__ import annotations

import secrets
from typing import Final

from fastapi import Request, Response

from api.services.auth import SESSION_TTL
from dangan.errors import PermissionDeniedError

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "check_csrf",
    "clear_session",
    "csrf_token",
    "remember_csrf",
    "set_session",
]

SESSION_COOKIE: Final = "dangan_session"
CSRF_COOKIE: Final = "dangan_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_BYTES: Final = 32


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: the cookie's, or a new one that :func:`remember_csrf` then sets.

    The token is kept on ``request.state`` so a page and its response agree on it.
    """
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(_CSRF_BYTES)
        request.state.csrf_token = token
    return token


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request made a new token."""
    token = getattr(request.state, "csrf_token", None)
    if token is not None and token != request.cookies.get(CSRF_COOKIE):
        _set_cookie(request, response, CSRF_COOKIE, token, max_age=None)


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=_is_https(request),
        httponly=True,
        samesite="strict",
    )


def set_session(request: Request, response: Response, token: str) -> None:
    """Start a session: the session cookie, and a fresh CSRF token (never one from before)."""
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()))
    _set_cookie(request, response, CSRF_COOKIE, secrets.token_urlsafe(_CSRF_BYTES), max_age=None)


def clear_session(request: Request, response: Response) -> None:
    """End a session: both cookies go."""
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", secure=_is_https(request), httponly=True, samesite="strict"
        )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # old browsers and same-origin GET-initiated forms may leave it out
    expected = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return origin == expected


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a cookie-authenticated change without this browser's CSRF token.

    :param sent: the token the request carried (form field or ``X-CSRF-Token`` header).
    :raises PermissionDeniedError: no token, a wrong one, or another site's ``Origin``.
    """
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not sent or not secrets.compare_digest(cookie, sent):
        raise PermissionDeniedError("the form has expired or came from elsewhere; reload the page")
    if not _same_origin(request):
        raise PermissionDeniedError("the request came from another site")
