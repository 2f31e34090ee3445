"""Object ids: the one name a vault object has, in every store and in the catalog.

An id is 32 to 64 lowercase hexadecimal digits (``new_object_id`` draws 128 random bits). The
form is narrow on purpose: an id becomes a file name, an S3 key and associated data, so it
must never carry a path separator, a record's title or a student's name.
"""

from __future__ import annotations

import re
import secrets

from dangan.errors import InvalidInputError

__all__ = ["check_object_id", "is_object_id", "new_object_id"]

_OBJECT_ID = re.compile(r"[0-9a-f]{32,64}")


def new_object_id() -> str:
    """A fresh random object id (32 hex digits)."""
    return secrets.token_hex(16)


def is_object_id(name: str) -> bool:
    """Whether ``name`` is a well-formed object id (a store may hold other files too)."""
    return bool(_OBJECT_ID.fullmatch(name))


def check_object_id(object_id: str) -> str:
    """Return ``object_id`` unchanged if it is well formed.

    :raises InvalidInputError: not 32-64 lowercase hex digits.
    """
    if not isinstance(object_id, str) or not is_object_id(object_id):
        raise InvalidInputError("an object id is 32 to 64 lowercase hexadecimal digits")
    return object_id
