"""One stream of bytes fed to several stores at once, each copy read back before it counts.

The writer's thread iterates the source once and hands every piece to one thread per store
through a bounded queue, so memory stays at ``QUEUE_DEPTH`` pieces per store however large
the object. A store that fails stops being fed; the others go on.

This module must never report a copy it has not read back, never buffer more than the
queues hold, and never swallow an error: each store's outcome goes back to the caller.
"""

from __future__ import annotations

import hmac
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from dangan.errors import CorruptDataError
from vault.backends.base import Backend, StoredObject, read_back
from vault.suites import DigestName

__all__ = ["QUEUE_DEPTH", "CopyOutcome", "check_copy", "write_copies"]

QUEUE_DEPTH = 4
"""Pieces (about 1 MiB each) waiting for one store."""


@dataclass(frozen=True)
class CopyOutcome:
    """One store's part of :func:`write_copies`.

    ``stored`` is the verified size and hash, or ``None`` with ``error`` saying why.
    ``written`` says whether the store's ``put`` completed, i.e. whether this write replaced
    what the store held under the id (a put that raised replaced nothing: puts are atomic).
    """

    stored: StoredObject | None
    error: BaseException | None
    written: bool


def write_copies(
    object_id: str,
    pieces: Iterable[bytes],
    backends: Mapping[str, Backend],
    *,
    algorithm: DigestName = "sha256",
) -> dict[str, CopyOutcome]:
    """Store ``pieces`` as ``object_id`` in every backend concurrently, then read each back.

    :param algorithm: the digest each store hashes with, and the copy is checked with.

    Returns, per store, the verified size and hash, or the exception that stopped it and
    whether the store's ``put`` had completed. Once every store has stopped, ``pieces`` is not
    read further.

    :raises: whatever iterating ``pieces`` raises, after every store has thrown its partial
        copy away.
    """
    copiers = [_Copier(name, backend, object_id, algorithm) for name, backend in backends.items()]
    for copier in copiers:
        copier.start()
    try:
        for piece in pieces:
            for copier in copiers:
                copier.send(piece)
            if all(c.stopped.is_set() for c in copiers):
                break  # every store failed: stop reading the source
    except BaseException:
        for copier in copiers:
            copier.send(_Abort())
        for copier in copiers:
            copier.join()
        raise
    for copier in copiers:
        copier.send(_End())
    for copier in copiers:
        copier.join()
    return {
        c.store: CopyOutcome(
            c.stored, None if c.stored is not None else c.outcome_error(), c.written
        )
        for c in copiers
    }


class _End:
    """Sent to a copier after the last piece."""


class _Abort:
    """Sent to a copier when the write is abandoned."""


class _WriteAbandoned(Exception):  # noqa: N818 - a signal inside put(), never seen outside
    """Raised inside a store's ``put`` to make it throw its partial copy away."""


class _Copier(threading.Thread):
    """Writes one copy from a bounded queue, then reads it back."""

    def __init__(self, store: str, backend: Backend, object_id: str, algorithm: DigestName) -> None:
        super().__init__(name=f"vault-copy-{store}", daemon=True)
        self.algorithm: DigestName = algorithm
        self.store = store
        self.backend = backend
        self.object_id = object_id
        self.queue: queue.Queue[bytes | _End | _Abort] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stopped = threading.Event()
        self.stored: StoredObject | None = None
        self.written = False
        self.error: BaseException | None = None

    def outcome_error(self) -> BaseException:
        if self.error is not None:
            return self.error
        return RuntimeError(f"the copier for {self.store} stopped without a result")

    def send(self, item: bytes | _End | _Abort) -> None:
        """Queue ``item`` unless this copier has stopped reading (its store failed)."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return

    def _pieces(self) -> Iterator[bytes]:
        while True:
            item = self.queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Abort):
                raise _WriteAbandoned
            yield item

    def run(self) -> None:
        try:
            stored = self.backend.put(self.object_id, self._pieces(), algorithm=self.algorithm)
            self.written = True
            self.stopped.set()
            check_copy(self.backend, self.store, self.object_id, stored)
            self.stored = stored
        except BaseException as exc:  # noqa: BLE001 - carried to the writing thread, which decides
            self.error = exc
        finally:
            self.stopped.set()


def check_copy(backend: Backend, store: str, object_id: str, expected: StoredObject) -> None:
    """Read a copy back (its size as the store states it, then every byte) and compare,
    hashing with the digest ``expected`` is in."""
    size = backend.stat(object_id).size
    if size != expected.size:
        raise CorruptDataError(
            f"object {object_id} in {store}: {size} bytes stored, {expected.size} expected"
        )
    back = read_back(backend, object_id, expected.algorithm)
    if back.size != expected.size or not hmac.compare_digest(back.sha256, expected.sha256):
        raise CorruptDataError(f"object {object_id} in {store}: the copy reads back differently")
