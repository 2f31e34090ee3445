"""Self-keyed ("sealed") objects: the wrapped data key travels in front of the object's bytes.

A sealed object is ``MAGIC_SEALED ‖ u16 length ‖ WrappedKey.to_bytes() ‖ the normal encrypted
stream`` (``docs/vault-format.md``, "Sealed objects"), so the stores plus the keyring alone
suffice to open it; dangan keeps record sidecars this way. The wrapped key is not secret
without the keyring, and it is bound to the object id, so it cannot be moved to another object.

This module only frames bytes: it never writes anywhere and never logs a key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Final

from dangan.errors import CorruptDataError
from vault.backends.base import Backend
from vault.keyring import Keyring
from vault.stream import HEADER_SIZE, WrappedKey, decrypt
from vault.suites import Suite

__all__ = ["MAGIC_SEALED", "is_sealed", "open_stored", "sealed_prefix", "stored_head_size"]

# docs/vault-format.md, "Sealed objects". Differs from a plain object's first 8 bytes
# (``DANGAN`` ‖ version 1 ‖ suite 1 to 4) at offset 6.
MAGIC_SEALED: Final = b"DANGANS1"
_LENGTH = struct.Struct(">H")


def sealed_prefix(wrapped: WrappedKey) -> bytes:
    """The bytes stored before a sealed object's encrypted stream."""
    key = wrapped.to_bytes()
    return MAGIC_SEALED + _LENGTH.pack(len(key)) + key


def stored_head_size(start: bytes | bytearray) -> int | None:
    """How many leading bytes of a copy are its head: the sealed prefix, if any, and the
    stream header (which holds the object's random nonce prefix). Two copies of one version
    of an object have the same head; two versions almost surely do not.

    :param start: the copy's first bytes; ``None`` is returned until there are enough of
        them to tell.
    """
    if len(start) < len(MAGIC_SEALED):
        return None
    if start[: len(MAGIC_SEALED)] != MAGIC_SEALED:
        return HEADER_SIZE
    if len(start) < len(MAGIC_SEALED) + _LENGTH.size:
        return None
    length: int = _LENGTH.unpack_from(start, len(MAGIC_SEALED))[0]
    return len(MAGIC_SEALED) + _LENGTH.size + length + HEADER_SIZE


def is_sealed(backend: Backend, object_id: str) -> bool:
    """Whether the copy of ``object_id`` in ``backend`` starts as a sealed object does.

    Reads only the first bytes; keyless.

    :raises NotFoundError: no such object in that store.
    :raises StoreUnavailableError: the store cannot be reached.
    """
    head = bytearray()
    with backend.open(object_id) as stream:
        for chunk in stream:
            head.extend(chunk)
            if len(head) >= len(MAGIC_SEALED):
                break
    return head[: len(MAGIC_SEALED)] == MAGIC_SEALED


def open_stored(
    object_id: str,
    source: Iterator[bytes],
    keyring: Keyring,
    *,
    wrapped_key: WrappedKey | None,
    plaintext_sha256: str | None = None,
    on_suite: Callable[[Suite], None] | None = None,
) -> Iterator[bytes]:
    """Decrypt one copy's bytes, plain or sealed, lazily (nothing is read before ``next``).

    With ``wrapped_key`` (the catalog's), a sealed object's prefix is parsed and skipped and
    the stream is opened with the given key; without it the object must be sealed and its
    own wrapped key is used.

    :raises CorruptDataError: while iterating: a malformed or truncated prefix, a wrapped
        key that is another object's or does not open, or any failure of the stream.
    :raises KeyringError: while iterating: the wrapping key is not in the keyring.
    """
    buf = bytearray()

    def fill(n: int) -> None:
        for chunk in source:
            buf.extend(chunk)
            if len(buf) >= n:
                return

    fill(len(MAGIC_SEALED))
    if buf[: len(MAGIC_SEALED)] == MAGIC_SEALED:
        head = len(MAGIC_SEALED) + _LENGTH.size
        fill(head)
        if len(buf) < head:
            raise CorruptDataError(f"object {object_id}: truncated sealed prefix")
        (length,) = _LENGTH.unpack_from(buf, len(MAGIC_SEALED))
        fill(head + length)
        if len(buf) < head + length:
            raise CorruptDataError(f"object {object_id}: truncated sealed prefix")
        embedded = WrappedKey.from_bytes(bytes(buf[head : head + length]))
        del buf[: head + length]
        if wrapped_key is None:
            wrapped_key = embedded
    elif wrapped_key is None:
        raise CorruptDataError(f"object {object_id}: not a sealed object")
    rest = bytes(buf)
    buf.clear()
    yield from decrypt(
        object_id,
        wrapped_key,
        chain([rest], source),
        keyring,
        plaintext_sha256=plaintext_sha256,
        on_suite=on_suite,
    )
