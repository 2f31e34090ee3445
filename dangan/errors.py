"""The one error hierarchy of dangan.

Every class carries a stable ``code``, the ``http_status`` the API answers with and the
``exit_code`` the CLI exits with. ``api/errors.py`` renders them; nothing else translates.
Messages must be safe to show the caller: no record text, no keys, and no hint that a
hidden record exists.

::

    DanganError (500, exit 70)
     ├── CorruptDataError (500, exit 1)
     ├── InvalidInputError (422, exit 2)
     │    └── ConfigError
     ├── StoreUnavailableError (503, exit 3)
     ├── KeyringError (500, exit 3)
     ├── DependencyMissingError (500, exit 3)
     ├── NotFoundError (404, exit 4)
     ├── NotAuthenticatedError (401, exit 5)
     ├── PermissionDeniedError (403, exit 5)
     ├── ConflictError (409, exit 6)
     └── TooManyRequestsError (429, exit 3)
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConfigError",
    "ConflictError",
    "CorruptDataError",
    "DanganError",
    "DependencyMissingError",
    "ExitCode",
    "InvalidInputError",
    "KeyringError",
    "NotAuthenticatedError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreUnavailableError",
    "TooManyRequestsError",
]


class ExitCode(IntEnum):
    """The promise the command line makes to scripts."""

    ok = 0
    check_failed = 1
    invalid_input = 2
    operational = 3
    not_found = 4
    denied = 5
    conflict = 6
    software = 70
    interrupted = 130


class DanganError(Exception):
    """Anything unexpected; a bug. The traceback goes to the log only."""

    code: str = "internal_error"
    http_status: int = 500
    exit_code: ExitCode = ExitCode.software

    def __init__(self, message: str = "internal error") -> None:
        super().__init__(message)
        self.message = message


class CorruptDataError(DanganError):
    """An AEAD tag, a checksum or the audit chain does not match."""

    code = "corrupt_data"
    exit_code = ExitCode.check_failed


class InvalidInputError(DanganError):
    """Bad archive code, bad file, bad usage: the caller can fix it."""

    code = "invalid_input"
    http_status = 422
    exit_code = ExitCode.invalid_input


class ConfigError(InvalidInputError):
    """A setting is missing or wrong; the message names the key."""

    code = "invalid_configuration"


class StoreUnavailableError(DanganError):
    """A storage backend or the database cannot be reached."""

    code = "store_unavailable"
    http_status = 503
    exit_code = ExitCode.operational


class KeyringError(DanganError):
    """A key is missing, unknown, or the keyring file is too open."""

    code = "keyring_error"
    exit_code = ExitCode.operational


class DependencyMissingError(DanganError):
    """A program or language pack dangan needs is not installed."""

    code = "dependency_missing"
    exit_code = ExitCode.operational


class NotFoundError(DanganError):
    """Missing, or hidden from this user: the two must read the same."""

    code = "not_found"
    http_status = 404
    exit_code = ExitCode.not_found


class NotAuthenticatedError(DanganError):
    """No valid credentials were given."""

    code = "not_authenticated"
    http_status = 401
    exit_code = ExitCode.denied


class PermissionDeniedError(DanganError):
    """The user is known but their role may not do this."""

    code = "permission_denied"
    http_status = 403
    exit_code = ExitCode.denied


class ConflictError(DanganError):
    """The archive's state forbids it: code taken, wrong state, a hold, a duplicate."""

    code = "conflict"
    http_status = 409
    exit_code = ExitCode.conflict


class TooManyRequestsError(DanganError):
    """Too many attempts (sign-ins) in a short time; the message says when to try again."""

    code = "too_many_requests"
    http_status = 429
    exit_code = ExitCode.operational

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after
