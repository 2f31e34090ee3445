"""The one small interface every store implements, and what the stores share.

A backend keeps opaque ciphertext under object ids: it never sees a key or plaintext and
never interprets the bytes. Every backend hashes what passes through ``put`` in the same pass
as the I/O and returns the size and SHA-256 of exactly what it stored, so a copy can be
verified later without any key. The digest is SHA-256 unless the caller names another
(``vault.suites``: SM3), which it does for an object whose suite digests with it. Errors
leave a backend only as ``dangan.errors`` types (``StoreUnavailableError``,
``NotFoundError``); an exception raised by the caller's chunk iterator passes through
untouched and aborts the write without leaving anything behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from vault.suites import DigestName, Hasher, new_hash

__all__ = [
    "Backend",
    "ObjectInfo",
    "ObjectStream",
    "StoredObject",
    "Tally",
    "read_back",
]


@dataclass(frozen=True)
class StoredObject:
    """Size and digest (hex) of the bytes of one copy, as written or as read back.

    ``sha256`` holds the digest in :attr:`algorithm`: SHA-256 unless the object's suite
    digests with SM3 (the name stays, as the catalog's column's does).
    """

    size: int
    sha256: str
    algorithm: DigestName = "sha256"


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says about one copy without reading it."""

    object_id: str
    size: int


class Tally:
    """Counts and hashes bytes as they pass (restic's ``hashing.Reader``)."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: DigestName = "sha256") -> None:
        self._hash: Hasher = new_hash(algorithm)
        self.algorithm: DigestName = algorithm
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def result(self) -> StoredObject:
        return StoredObject(self.size, self._hash.hexdigest(), self.algorithm)


class ObjectStream(Iterator[bytes]):
    """One copy's bytes as chunks of at most ``CHUNK`` bytes, open until :meth:`close`.

    Use it in a ``with`` block or close it: it holds a file or an HTTP connection.
    """

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._on_close: Callable[[], None] | None = on_close

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        """Release the file or connection; safe to call twice."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
            on_close()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Backend(Protocol):
    """A store: one directory (``fs``) or one bucket (``s3``) of immutable objects.

    Objects are written whole or not at all; a second ``put`` of the same id replaces the
    copy atomically (that is how a bad copy is repaired).
    """

    name: str
    """A short label for messages and logs, e.g. ``fs:/srv/vault-a``; never secret."""

    def put(
        self, object_id: str, chunks: Iterable[bytes], *, algorithm: DigestName = "sha256"
    ) -> StoredObject:
        """Store ``chunks`` as ``object_id``, hashing them on the way with ``algorithm``;
        atomic.

        :raises StoreUnavailableError: the store cannot be written; nothing is left behind.
        """
        ...

    def open(self, object_id: str) -> ObjectStream:
        """Open a copy for reading; the caller closes the stream.

        :raises NotFoundError: no such object in this store.
        :raises StoreUnavailableError: the store cannot be read (also while iterating).
        """
        ...

    def stat(self, object_id: str) -> ObjectInfo:
        """The copy's size as the store reports it.

        :raises NotFoundError: no such object in this store.
        :raises StoreUnavailableError: the store cannot be reached.
        """
        ...

    def delete(self, object_id: str) -> None:
        """Remove a copy; removing a missing copy is not an error.

        :raises StoreUnavailableError: the store cannot be reached.
        """
        ...

    def list(self) -> Iterator[str]:
        """Every object id in the store, in no promised order.

        :raises StoreUnavailableError: the store cannot be reached.
        """
        ...


def read_back(backend: Backend, object_id: str, algorithm: DigestName = "sha256") -> StoredObject:
    """Read one copy whole and return its size and digest: the keyless fixity check.

    :param algorithm: the digest the object's catalog entry is in (SHA-256 or SM3).

    :raises NotFoundError: the copy is missing.
    :raises StoreUnavailableError: the store cannot be read.
    """
    tally = Tally(algorithm)
    with backend.open(object_id) as stream:
        for chunk in stream:
            tally.update(chunk)
    return tally.result()
