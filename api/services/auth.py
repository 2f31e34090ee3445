"""Signing in to the HTTP API: passwords for tokens, tokens for users, and a sign-in throttle.

An access token is a short-lived JWT (HS256) naming the user by id; a refresh token is a longer
one that can only buy new access tokens. Both carry the user's *token generation*, the moment
their password last changed, and every request checks the token against the catalog's user
row: disabling a user or changing their password revokes every token they hold, at once.

The signing secret is 32 random bytes made on first use in ``<data_dir>/api-token-secret``
(mode 0600, never logged); tokens survive a restart and die with the file. Sign-in attempts
are throttled per user name and per client address over a sliding window kept in this
process's memory (a restart forgets it; several server processes each keep their own).

What this module must never do: log or audit a token or a password, or tell an unknown user
name from a wrong password.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import jwt

from api.services.runtime import Runtime
from catalog import UserInfo, UserStamp, authenticate, record_event, user_stamp, with_grant
from dangan.errors import KeyringError, NotAuthenticatedError, TooManyRequestsError

__all__ = [
    "ACCESS_TTL",
    "REFRESH_TTL",
    "SESSION_TTL",
    "LoginThrottle",
    "TokenPair",
    "issue_tokens",
    "login",
    "refresh",
    "sign_in",
    "token_secret",
    "user_for_token",
]

ACCESS_TTL: Final = dt.timedelta(minutes=15)
REFRESH_TTL: Final = dt.timedelta(hours=8)  # one working day
SESSION_TTL: Final = dt.timedelta(hours=8)  # a web page session: one working day too
_ALGORITHM: Final = "HS256"
_ISSUER: Final = "dangan"
_SECRET_FILE: Final = "api-token-secret"  # noqa: S105 - a file name, not a secret
_SECRET_BYTES: Final = 32
_INVALID: Final = "the token is invalid or expired; sign in again"

TokenKind = Literal["access", "refresh", "session"]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives


class LoginThrottle:
    """Failed sign-ins per user name and per client address over a sliding window.

    Only failures count, so a person who types their password right is never held up by
    their own earlier successes. Thread-safe; in memory only.
    """

    def __init__(
        self,
        *,
        per_name: int = 5,
        per_address: int = 20,
        window_seconds: float = 300.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._limits = {"name": per_name, "address": per_address}
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def check(self, name: str, address: str) -> None:
        """:raises TooManyRequestsError: too many recent failures for this name or address."""
        now = self._clock()
        with self._lock:
            for kind, value in (("name", name), ("address", address)):
                times = self._recent((kind, value), now)
                if len(times) >= self._limits[kind]:
                    wait = max(1, int(times[0] + self._window - now) + 1)
                    raise TooManyRequestsError(
                        f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
                    )

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (("name", name), ("address", address)):
                self._recent(key, now).append(now)


def token_secret(rt: Runtime) -> bytes:
    """The signing secret, made (mode 0600) on first use in the data directory.

    :raises KeyringError: the file is readable by others, or not a secret dangan made.
    """
    path: Path = rt.settings.data_dir / _SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_SECRET_BYTES))
    if path.stat().st_mode & 0o077:
        raise KeyringError(f"{path} is readable by others; chmod 600 it")
    secret = path.read_bytes()
    if len(secret) != _SECRET_BYTES:
        raise KeyringError(f"{path} is not a token secret dangan made; remove it to make one")
    return secret


def _generation(stamp: UserStamp) -> int:
    # Microseconds since the epoch of the last password change: a new password, a new era.
    return int(stamp.password_changed_at.timestamp() * 1_000_000)


def _encode(rt: Runtime, stamp: UserStamp, kind: TokenKind, ttl: dt.timedelta) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": _ISSUER,
        "sub": str(stamp.user.id),
        "gen": _generation(stamp),
        "typ": kind,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, token_secret(rt), algorithm=_ALGORITHM)


def issue_tokens(rt: Runtime, stamp: UserStamp) -> TokenPair:
    return TokenPair(
        access_token=_encode(rt, stamp, "access", ACCESS_TTL),
        refresh_token=_encode(rt, stamp, "refresh", REFRESH_TTL),
        expires_in=int(ACCESS_TTL.total_seconds()),
    )


def user_for_token(rt: Runtime, token: str, *, kind: TokenKind = "access") -> UserInfo:
    """The user a token speaks for, checked against their catalog row on every call.

    :raises NotAuthenticatedError: a bad signature, an expired token, the wrong kind of token,
        a user who is gone or disabled, or a password changed since the token was issued; all
        with the same message.
    """
    try:
        claims = jwt.decode(
            token,
            token_secret(rt),
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "gen", "typ"]},
        )
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise NotAuthenticatedError(_INVALID) from None
    if claims["typ"] != kind:
        raise NotAuthenticatedError(_INVALID)
    with rt.db.read() as session:
        stamp = user_stamp(session, user_id)
        if stamp is None or stamp.user.disabled or claims["gen"] != _generation(stamp):
            raise NotAuthenticatedError(_INVALID)
        # A break-glass grant in force widens what the policy lets this user read.
        return with_grant(session, stamp.user)


def login(
    rt: Runtime, throttle: LoginThrottle, *, name: str, password: str, address: str
) -> TokenPair:
    """Check a name and password and issue API tokens.

    :raises TooManyRequestsError: too many recent failures for this name or address (audited).
    :raises NotAuthenticatedError: unknown name, wrong password or disabled user, alike.
    """
    return issue_tokens(rt, _stamp_for(rt, throttle, name=name, password=password, address=address))


def sign_in(rt: Runtime, throttle: LoginThrottle, *, name: str, password: str, address: str) -> str:
    """Check a name and password for a web page session and return its token; audited and
    throttled exactly as :func:`login`."""
    stamp = _stamp_for(rt, throttle, name=name, password=password, address=address)
    return _encode(rt, stamp, "session", SESSION_TTL)


def _stamp_for(
    rt: Runtime, throttle: LoginThrottle, *, name: str, password: str, address: str
) -> UserStamp:
    """The user behind a name and password; every attempt is audited (``auth.login``).

    :raises TooManyRequestsError: too many recent failures for this name or address (audited).
    :raises NotAuthenticatedError: unknown name, wrong password or disabled user, alike.
    """
    actor = name[:64]
    target = f"user:{name}"[:128]
    try:
        throttle.check(name, address)
    except TooManyRequestsError:
        with rt.db.write() as session:
            record_event(
                session,
                actor=actor,
                action="auth.login",
                target=target,
                outcome="denied",
                detail={"reason": "throttled", "address": address},
            )
        raise
    try:
        with rt.db.write() as session:
            user = authenticate(session, name=name, password=password)
            stamp = user_stamp(session, user.id)
            assert stamp is not None  # noqa: S101 - authenticate just read this row
            record_event(
                session,
                actor=actor,
                action="auth.login",
                target=target,
                detail={"address": address},
            )
    except NotAuthenticatedError:
        throttle.failed(name, address)
        with rt.db.write() as session:
            record_event(
                session,
                actor=actor,
                action="auth.login",
                target=target,
                outcome="denied",
                detail={"reason": "bad_credentials", "address": address},
            )
        raise
    return stamp


def refresh(rt: Runtime, refresh_token: str) -> TokenPair:
    """New tokens for a refresh token that still holds (same checks as an access token).

    :raises NotAuthenticatedError: the refresh token no longer holds.
    """
    user = user_for_token(rt, refresh_token, kind="refresh")
    with rt.db.read() as session:
        stamp = user_stamp(session, user.id)
    if stamp is None:
        raise NotAuthenticatedError(_INVALID)
    return issue_tokens(rt, stamp)
